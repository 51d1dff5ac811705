-- Airflow's metadata database (a test stack, vee_tasks/celery_runtime.py): has the
-- dag-processor serialized this DAG yet (runs can be created once it has)?
SELECT 1 FROM serialized_dag WHERE dag_id = :dag_id LIMIT 1;
