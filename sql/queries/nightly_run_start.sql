-- Open (or reopen, for a retried / cleared run) the run record of one nightly run.
INSERT INTO vee.scoring_run AS r (dag_run_id, read_date, status, started_at)
VALUES (:dag_run_id, :read_date, 'RUNNING', now())
ON CONFLICT (dag_run_id) DO UPDATE
SET read_date = EXCLUDED.read_date,
    status = 'RUNNING',
    model_name = NULL,
    model_version = NULL,
    selected = NULL,
    scored = NULL,
    quarantined = NULL,
    auto_applied = NULL,
    sent_to_review = NULL,
    skipped_analyst = NULL,
    dq_outcome = NULL,
    dq_report_path = NULL,
    dq_summary = NULL,
    summary = NULL,
    step_seconds = '{}'::jsonb,
    message = NULL,
    started_at = now(),
    finished_at = NULL,
    staged_rows = NULL;
