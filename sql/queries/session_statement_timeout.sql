-- Every connection's statements are limited to the task time limit (VEE_TASK_TIMEOUT_HOURS,
-- in milliseconds): Airflow's timeout cannot interrupt a query its task waits on (the client
-- library blocks the signal until the server answers), so the server must end it. Only
-- lowered, never raised: a stricter limit the DBA set for the role or database, or the
-- connection's own options, stays.
SELECT set_config('statement_timeout', :timeout_ms, false) AS value
FROM pg_settings
WHERE name = 'statement_timeout'
  AND (setting::bigint = 0 OR setting::bigint > CAST(:timeout_ms AS bigint));
