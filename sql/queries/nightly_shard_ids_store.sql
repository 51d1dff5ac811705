-- The run's shards as id lists (vee.nightly_shard_ids, see migration vee/0055): every shard
-- of the run gets a row, an empty list when none of its rows passed validation, so a missing
-- row means "not written by a validate of this release" (vee_tasks/scoring/steps.py then
-- reads the staged rows). One sequential pass over the run's staged rows, sorted once.
-- Each list holds a meter's exceptions together (by meter, then raised_at, then id), so the
-- exceptions that share a usage context fall in one scoring chunk and their context is
-- computed once (vee_tasks/features.py), whatever order the MDMS numbered them in: in id
-- order, ids numbered rule by rule put each of a meter-day's exceptions in another chunk
-- (measured: features 4.6x slower on the bench with five exceptions a meter-day).
DELETE FROM vee.nightly_shard_ids WHERE dag_run_id = :dag_run_id;
INSERT INTO vee.nightly_shard_ids (dag_run_id, shard, exception_ids)
SELECT :dag_run_id, s.shard, coalesce(x.ids, CAST('{}' AS bigint[]))
FROM generate_series(0, CAST(:shard_count AS integer) - 1) AS s(shard)
LEFT JOIN (
    SELECT shard, array_agg(exception_id ORDER BY meter_id COLLATE "C", raised_at, exception_id) AS ids
    FROM vee.nightly_extract
    WHERE dag_run_id = :dag_run_id
      AND failed_checks IS NULL
    GROUP BY shard
) AS x ON x.shard = s.shard;
