-- A training run record still RUNNING after its Airflow run ended (vee_tasks/training/
-- pipeline.py, reconcile_with_airflow): recorded FAILED with why. Only a record that started
-- before the Airflow run ended (:ended_at, NULL when unknown): a record started later belongs
-- to an attempt an operator has cleared since.
UPDATE vee.training_run
SET status = 'FAILED', message = :message, finished_at = now()
WHERE run_id = :run_id
  AND status = 'RUNNING'
  AND (CAST(:ended_at AS timestamptz) IS NULL OR started_at <= CAST(:ended_at AS timestamptz))
RETURNING run_id;
