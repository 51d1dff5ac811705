-- The extract of a run that failed (an operator cleared it after fixing the cause): the run is
-- open again and starts its data afresh, so the earlier attempt's validation is forgotten.
UPDATE vee.scoring_run
SET status = 'RUNNING', message = NULL, finished_at = NULL, dq_outcome = NULL,
    dq_report_path = NULL, dq_summary = NULL, selected = NULL, quarantined = NULL,
    staged_rows = NULL
WHERE dag_run_id = :dag_run_id
  AND status IN ('FAILED', 'DQ_FAILED');
