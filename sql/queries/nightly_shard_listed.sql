-- Whether validate stored this shard's id list (nightly_shard_ids_store.sql); a run validated
-- before the lists existed (migration vee/0055) has none, then nightly_shard_ids_scan.sql.
SELECT 1
FROM vee.nightly_shard_ids
WHERE dag_run_id = :dag_run_id
  AND shard = :shard;
