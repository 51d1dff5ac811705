-- Mark a run FAILED or DQ_FAILED with a one-line reason. A run already marked failed keeps
-- its first (most specific) reason.
UPDATE vee.scoring_run
SET status = :status,
    message = :message,
    finished_at = now()
WHERE dag_run_id = :dag_run_id
  AND status IN ('RUNNING', 'SUCCESS');
