-- The next chunk of a shard's exceptions that passed validation (keyset pagination).
SELECT exception_id
FROM vee.nightly_extract
WHERE dag_run_id = :dag_run_id
  AND shard = :shard
  AND failed_checks IS NULL
  AND exception_id > :after
ORDER BY exception_id
LIMIT :chunk_rows;
