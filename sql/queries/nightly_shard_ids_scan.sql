-- The ids a shard scores, read from the staged rows: for a run validated before validate
-- stored them as lists (migration vee/0055), one sequential pass over the staged rows.
SELECT exception_id
FROM vee.nightly_extract
WHERE dag_run_id = :dag_run_id
  AND shard = :shard
  AND failed_checks IS NULL
ORDER BY meter_id COLLATE "C", raised_at, exception_id;  -- as nightly_shard_ids_store.sql
