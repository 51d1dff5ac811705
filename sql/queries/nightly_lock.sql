-- Lock the shard's exceptions that this system may still decide. An analyst's resolution
-- committed before this point makes its row drop out here (FOR UPDATE re-reads the row);
-- one committed after it waits for this transaction. Either way the analyst wins.
INSERT INTO nightly_locked (exception_id)
SELECT e.exception_id
FROM mdm.vee_exception AS e
WHERE e.exception_id IN (SELECT exception_id FROM nightly_result)
  AND e.status IN ('OPEN', 'AUTO_RESOLVED', 'PENDING_REVIEW')
ORDER BY e.exception_id
FOR UPDATE OF e;
