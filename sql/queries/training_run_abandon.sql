-- Training run records still RUNNING long after they started: their Airflow run ended without
-- telling (Airflow 3.3 runs no DAG callback when a whole run is marked failed or success
-- through the UI or API). Recorded FAILED, with what to do, by the next training run.
UPDATE vee.training_run
SET status = 'FAILED',
    message = 'abandoned: still RUNNING ' || CAST(:abandoned_hours AS text) || ' h after it started '
              || '(its Airflow run ended without finishing it, e.g. marked failed or success by '
              || 'hand); see the registry for any version it registered',
    finished_at = now()
WHERE status = 'RUNNING'
  AND run_id <> :run_id
  AND started_at < now() - make_interval(hours => CAST(:abandoned_hours AS integer))
RETURNING run_id, as_of;
