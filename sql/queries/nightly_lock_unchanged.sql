-- Lock the shard's exceptions already at the status this run gives them (a rerun, or the
-- same decision as last night), so that their resolution row is written under the same
-- guarantee as nightly_update_status: an analyst's resolution committed before this point
-- makes the row drop out (FOR UPDATE re-reads it); one committed after it waits.
-- The shard's rows not locked yet are found among the temp tables first: on a first run
-- none are left, and mdm.vee_exception is not read at all.
INSERT INTO nightly_locked (exception_id)
SELECT e.exception_id
FROM (
    SELECT r.exception_id, r.decision
    FROM nightly_result AS r
    WHERE NOT EXISTS (SELECT 1 FROM nightly_locked AS l WHERE l.exception_id = r.exception_id)
) AS r
JOIN mdm.vee_exception AS e ON e.exception_id = r.exception_id
WHERE e.status = (CASE r.decision WHEN 'AUTO_APPLY' THEN 'AUTO_RESOLVED' ELSE 'PENDING_REVIEW' END)
ORDER BY e.exception_id
FOR UPDATE OF e
