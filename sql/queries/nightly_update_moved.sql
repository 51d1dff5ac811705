-- The rows nightly_lock_unchanged locked at the other decided status than this run's
-- (another run of the same read date set it meanwhile): this run's status, as
-- nightly_update_status gives it. They are locked by this transaction, so nothing else moves them in between.
UPDATE mdm.vee_exception AS e
SET status = CASE r.decision WHEN 'AUTO_APPLY' THEN 'AUTO_RESOLVED' ELSE 'PENDING_REVIEW' END,
    status_changed_at = now()
FROM nightly_locked AS l
JOIN nightly_result AS r ON r.exception_id = l.exception_id
WHERE l.moved
  AND e.exception_id = l.exception_id;
