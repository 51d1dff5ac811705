-- The validation outcome (PASSED or FAILED), its figures and the Data Docs location.
UPDATE vee.scoring_run
SET dq_outcome = :dq_outcome,
    dq_report_path = :dq_report_path,
    dq_summary = CAST(:dq_summary AS jsonb),
    selected = :selected,
    quarantined = :quarantined
WHERE dag_run_id = :dag_run_id;
