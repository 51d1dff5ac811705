-- Forget the per-row outcome of an earlier validation attempt of this run.
UPDATE vee.nightly_extract
SET failed_checks = NULL
WHERE dag_run_id = :dag_run_id
  AND failed_checks IS NOT NULL;
