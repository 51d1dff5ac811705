-- Airflow's metadata database (a test stack, vee_tasks/celery_runtime.py): where and when
-- each task of a run ran.
SELECT task_id, map_index, state, hostname, try_number, start_date, end_date
FROM task_instance
WHERE dag_id = :dag_id AND run_id = :run_id
ORDER BY start_date, task_id, map_index;
