-- A failed run whose data quality passed is resumed (an operator cleared a failed shard):
-- back to RUNNING until finish_run closes it.
UPDATE vee.scoring_run
SET status = 'RUNNING', message = NULL, finished_at = NULL
WHERE dag_run_id = :dag_run_id
  AND status = 'FAILED'
  AND dq_outcome = 'PASSED';
