-- Run records still RUNNING long after they started: their Airflow run ended without telling
-- (Airflow 3.3 runs no DAG callback when a whole run is marked failed or success through the
-- UI or API, so no task recorded the end). Recorded FAILED, with what to do, by the next run.
-- The date in ISO form whatever the session's DateStyle (psycopg2 sets ISO on connect;
-- another driver might not: 04/03/2026 under 'SQL, DMY').
UPDATE vee.scoring_run
SET status = 'FAILED',
    message = 'abandoned: still RUNNING ' || CAST(:abandoned_hours AS text) || ' h after it started '
              || '(its Airflow run ended without finishing it, e.g. marked failed or success by '
              || 'hand); rerun read date ' || to_char(read_date, 'YYYY-MM-DD') || ' to score it',
    finished_at = now()
WHERE status = 'RUNNING'
  AND dag_run_id <> :dag_run_id
  AND started_at < now() - make_interval(hours => CAST(:abandoned_hours AS integer))
RETURNING dag_run_id, read_date;
