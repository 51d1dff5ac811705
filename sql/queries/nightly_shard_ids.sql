-- The ids a shard scores, a meter's together, as validate stored them
-- (nightly_shard_ids_store.sql), one row each, read through a server-side cursor chunk by
-- chunk.
SELECT unnest(exception_ids) AS exception_id
FROM vee.nightly_shard_ids
WHERE dag_run_id = :dag_run_id
  AND shard = :shard;
