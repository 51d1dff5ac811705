-- Every nightly run that recorded a data-quality report path (to match report folders on disk).
SELECT dag_run_id, read_date, status, dq_outcome, quarantined, dq_report_path, started_at,
       -- the warnings of a run that went on (validation's summary writes a list)
       coalesce(jsonb_array_length(dq_summary -> 'warnings'), 0) AS dq_warnings
FROM vee.scoring_run
WHERE dq_report_path IS NOT NULL
ORDER BY read_date, started_at;
