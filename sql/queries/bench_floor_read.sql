-- I/O floor, read side: the contract columns of the read date's decidable exceptions.
SELECT exception_id, meter_id, rule_code, read_date, window_start, window_end, observed_value,
       expected_value, rule_version, raised_at, status, status_changed_at
FROM mdm.vee_exception
WHERE read_date = :read_date
  AND status IN ('OPEN', 'AUTO_RESOLVED', 'PENDING_REVIEW')
