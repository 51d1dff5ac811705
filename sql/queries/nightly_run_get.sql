-- One run record.
SELECT dag_run_id, read_date, status, model_name, model_version, selected, scored, quarantined,
       auto_applied, sent_to_review, skipped_analyst, dq_outcome, dq_report_path, dq_summary,
       summary, step_seconds, message, started_at, finished_at, shard_count, staged_rows
FROM vee.scoring_run
WHERE dag_run_id = :dag_run_id;
