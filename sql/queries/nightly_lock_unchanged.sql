-- Lock the shard's exceptions already at the status this run gives them (a rerun, or the
-- same decision as last night), so that their resolution row is written under the same
-- guarantee as nightly_update_status: an analyst's resolution committed before this point
-- makes the row drop out (FOR UPDATE re-reads it); one committed after it waits.
INSERT INTO nightly_locked (exception_id)
SELECT e.exception_id
FROM mdm.vee_exception AS e
JOIN nightly_result AS r ON r.exception_id = e.exception_id
WHERE e.status = (CASE r.decision WHEN 'AUTO_APPLY' THEN 'AUTO_RESOLVED' ELSE 'PENDING_REVIEW' END)
  AND NOT EXISTS (SELECT 1 FROM nightly_locked AS l WHERE l.exception_id = e.exception_id)
ORDER BY e.exception_id
FOR UPDATE OF e
