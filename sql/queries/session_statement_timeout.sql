-- Every connection's statements are limited to the task time limit (VEE_TASK_TIMEOUT_HOURS,
-- in milliseconds): Airflow's timeout cannot interrupt a query its task waits on (the client
-- library blocks the signal until the server answers), so the server must end it.
SELECT set_config('statement_timeout', :timeout_ms, false) AS value;
