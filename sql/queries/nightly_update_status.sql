-- The contract's status write-back, and the shard's row locks in the same pass: set the
-- status of the shard's exceptions that this system may still decide and whose status
-- changes, and note them in nightly_locked. An analyst's resolution committed before this
-- point makes its row drop out (UPDATE re-checks the WHERE on the row's newest version);
-- one committed after it waits for this transaction, then wins. Rows already at their
-- target status (a rerun) keep status_changed_at and are locked by nightly_lock_unchanged.
WITH updated AS (
    UPDATE mdm.vee_exception AS e
    SET status = CASE r.decision WHEN 'AUTO_APPLY' THEN 'AUTO_RESOLVED' ELSE 'PENDING_REVIEW' END,
        status_changed_at = now()
    FROM nightly_result AS r
    WHERE e.exception_id = r.exception_id
      AND e.status IN ('OPEN', 'AUTO_RESOLVED', 'PENDING_REVIEW')
      AND e.status <> (CASE r.decision WHEN 'AUTO_APPLY' THEN 'AUTO_RESOLVED' ELSE 'PENDING_REVIEW' END)
    RETURNING e.exception_id
)
INSERT INTO nightly_locked (exception_id)
SELECT exception_id FROM updated
