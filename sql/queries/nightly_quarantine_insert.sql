-- Quarantine the rows that failed a row-level check, with the row as it was read.
INSERT INTO vee.quarantined_exception (
    exception_id, read_date, dag_run_id, failed_checks, payload, quarantined_at
)
SELECT x.exception_id,
       :read_date,
       x.dag_run_id,
       x.failed_checks,
       jsonb_build_object(
           'exception_id', x.exception_id,
           'meter_id', x.meter_id,
           'rule_code', x.rule_code,
           'read_date', x.read_date,
           'window_start', x.window_start,
           'window_end', x.window_end,
           'observed_value', x.observed_value,
           'expected_value', x.expected_value,
           'rule_version', x.rule_version,
           'raised_at', x.raised_at,
           'status', x.status,
           'status_changed_at', x.status_changed_at,
           'meter_known', x.meter_known
       ),
       now()
FROM vee.nightly_extract AS x
WHERE x.dag_run_id = :dag_run_id
  AND x.failed_checks IS NOT NULL
ORDER BY x.stage_row;
