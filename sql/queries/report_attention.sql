-- Read dates whose latest run (by start time) did not succeed, among runs started in the
-- lookback (days), whatever the read date (summary page): what still needs an operator.
-- A run started after one inside the lookback is inside it too, so "latest" is the latest.
SELECT dag_run_id, read_date, status, model_name, model_version, selected, scored, quarantined,
       auto_applied, sent_to_review, dq_outcome, dq_report_path, message, started_at, finished_at,
       CAST(dq_summary ->> 'failed_row_checks' AS integer) AS failed_row_checks
FROM (
    SELECT DISTINCT ON (read_date) *
    FROM vee.scoring_run
    WHERE started_at >= now() - make_interval(days => :lookback_days)
    ORDER BY read_date, started_at DESC, dag_run_id DESC
) AS latest
WHERE status <> 'SUCCESS'
ORDER BY read_date DESC;
