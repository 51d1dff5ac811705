-- The demo's summary: the latest nightly run of the read date.
SELECT dag_run_id, status, model_name, model_version, selected, scored, quarantined,
       auto_applied, sent_to_review, dq_outcome, dq_report_path
FROM vee.scoring_run
WHERE read_date = :read_date
ORDER BY started_at DESC
LIMIT 1;
