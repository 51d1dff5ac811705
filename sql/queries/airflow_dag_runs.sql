-- Airflow's metadata database (a test stack, vee_tasks/celery_runtime.py): a DAG's runs.
SELECT run_id, run_type, state, logical_date, backfill_id, start_date, end_date
FROM dag_run
WHERE dag_id = :dag_id
ORDER BY logical_date;
