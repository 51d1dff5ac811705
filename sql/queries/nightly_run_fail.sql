-- Mark a run FAILED or DQ_FAILED with a one-line reason. A run already marked failed keeps
-- its first (most specific) reason, unless this failure comes from an attempt that started
-- after that one was recorded (:attempt_started, a resumed shard failing for a new reason):
-- the record then says why the latest attempt failed.
UPDATE vee.scoring_run
SET status = :status,
    message = :message,
    finished_at = now()
WHERE dag_run_id = :dag_run_id
  AND (status IN ('RUNNING', 'SUCCESS')
       OR (status = 'FAILED' AND :status = 'FAILED'
           AND CAST(:attempt_started AS timestamptz) IS NOT NULL
           AND finished_at < CAST(:attempt_started AS timestamptz)));
