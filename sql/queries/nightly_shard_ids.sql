-- The ids a shard scores, as validate stored them (nightly_shard_ids_store.sql); no row for a
-- run validated before the lists existed (then nightly_shard_ids_scan.sql).
SELECT exception_ids
FROM vee.nightly_shard_ids
WHERE dag_run_id = :dag_run_id
  AND shard = :shard;
