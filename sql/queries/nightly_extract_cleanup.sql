-- Drop staged rows of runs that have finished (this one included), except failed ones, which
-- an operator may resume by clearing the failed task, and of runs older than a few days
-- (killed workers, failed runs nobody resumed). Shard records stay: tiny, and audit.
DELETE FROM vee.nightly_extract AS x
USING vee.scoring_run AS r
WHERE r.dag_run_id = x.dag_run_id
  AND (x.dag_run_id = :dag_run_id
       OR (r.finished_at IS NOT NULL AND r.status <> 'FAILED')
       OR r.started_at < now() - interval '3 days');
