-- Drop the staged rows and shard id lists of runs that have finished (this one included),
-- except failed ones, which an operator may resume by clearing the failed task, and of runs
-- older than a few days (killed workers, failed runs nobody resumed). Shard records stay:
-- tiny, and audit.
WITH done AS (
    SELECT r.dag_run_id
    FROM vee.scoring_run AS r
    WHERE r.dag_run_id = :dag_run_id
       OR (r.finished_at IS NOT NULL AND r.status <> 'FAILED')
       OR r.started_at < now() - interval '3 days'
),
dropped_lists AS (
    DELETE FROM vee.nightly_shard_ids AS s
    USING done AS d
    WHERE s.dag_run_id = d.dag_run_id
)
DELETE FROM vee.nightly_extract AS x
USING done AS d
WHERE x.dag_run_id = d.dag_run_id;
