-- Reset and record which staged rows failed which checks (NULL = passed).
UPDATE vee.nightly_extract AS x
SET failed_checks = f.failed_checks
FROM nightly_failed_rows AS f
WHERE x.dag_run_id = :dag_run_id
  AND x.stage_row = f.stage_row;
