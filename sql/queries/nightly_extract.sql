-- Stage the read date's exceptions this system may decide (never ANALYST_RESOLVED), with the
-- shard of their meter (a stable hash, so a meter's exceptions always land in one shard) and
-- whether the meter is known to mdm.meter.
INSERT INTO vee.nightly_extract (
    dag_run_id, stage_row, shard, exception_id, meter_id, rule_code, read_date,
    window_start, window_end, observed_value, expected_value, rule_version, raised_at,
    status, status_changed_at, meter_known
)
SELECT :dag_run_id,
       row_number() OVER (ORDER BY e.exception_id, e.ctid),
       mod(('x' || left(md5(coalesce(e.meter_id, '')), 7))::bit(28)::int, CAST(:shard_count AS int)),
       e.exception_id, e.meter_id, e.rule_code, e.read_date,
       e.window_start, e.window_end, e.observed_value, e.expected_value, e.rule_version,
       e.raised_at, e.status, e.status_changed_at,
       EXISTS (SELECT 1 FROM mdm.meter AS m WHERE m.meter_id = e.meter_id)
FROM mdm.vee_exception AS e
WHERE e.read_date = :read_date
  AND e.status IN ('OPEN', 'AUTO_RESOLVED', 'PENDING_REVIEW');
