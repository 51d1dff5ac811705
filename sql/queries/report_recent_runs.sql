-- The latest nightly runs by when they started, whatever their read date (summary page): a
-- backfill of an old date shows here even when the window of read dates ends later.
SELECT dag_run_id, read_date, status, model_name, model_version, selected, scored, quarantined,
       auto_applied, sent_to_review, dq_outcome, dq_report_path, message, started_at, finished_at,
       CAST(dq_summary ->> 'failed_row_checks' AS integer) AS failed_row_checks,
       -- the warnings of a run that went on (an empty day, reads before a meter's install)
       coalesce(jsonb_array_length(dq_summary -> 'warnings'), 0) AS dq_warnings
FROM vee.scoring_run
ORDER BY started_at DESC, dag_run_id
LIMIT :limit;
