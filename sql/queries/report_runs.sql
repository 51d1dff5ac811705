-- Nightly runs whose read date falls in [:since, :until], newest first (summary page, `vee reports`).
SELECT dag_run_id,
       read_date,
       status,
       model_name,
       model_version,
       selected,
       scored,
       quarantined,
       auto_applied,
       sent_to_review,
       dq_outcome,
       dq_report_path,
       message,
       started_at,
       finished_at,
       -- a run stopped by a batch check: its rows that failed row checks (none quarantined)
       CAST(dq_summary ->> 'failed_row_checks' AS integer) AS failed_row_checks,
       -- the warnings of a run that went on (an empty day, reads before a meter's install)
       coalesce(jsonb_array_length(dq_summary -> 'warnings'), 0) AS dq_warnings
FROM vee.scoring_run
WHERE read_date BETWEEN :since AND :until
ORDER BY read_date DESC, started_at DESC;
