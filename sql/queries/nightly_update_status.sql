-- The contract's status write-back, only on the rows locked above, and only where the
-- status changes (so a rerun leaves status_changed_at alone).
UPDATE mdm.vee_exception AS e
SET status = CASE r.decision WHEN 'AUTO_APPLY' THEN 'AUTO_RESOLVED' ELSE 'PENDING_REVIEW' END,
    status_changed_at = now()
FROM nightly_result AS r
JOIN nightly_locked AS l ON l.exception_id = r.exception_id
WHERE e.exception_id = r.exception_id
  AND e.status IS DISTINCT FROM
      (CASE r.decision WHEN 'AUTO_APPLY' THEN 'AUTO_RESOLVED' ELSE 'PENDING_REVIEW' END);
