-- Lock the shard's exceptions that nightly_update_status left: those already at the status
-- this run gives them (a rerun, or the same decision as last night), so that their
-- resolution row is written under the same guarantee; an analyst's resolution committed
-- before this point makes the row drop out (FOR UPDATE re-reads it and re-checks the
-- status); one committed after it waits.
-- Either decided status counts, not only this run's: another run of the same read date (a
-- scheduled run and an operator's at once, models apart) may have moved a row from this
-- run's status to the other one after nightly_update_status read it. Such a row was
-- dropped here and counted as resolved by an analyst, though none had touched it (outside
-- probe, 2026-11-29); it is locked now and flagged `moved`, and nightly_update_moved.sql
-- gives it this run's status: the run that writes last decides, status and resolution row
-- alike. A row back at OPEN is left alone, as before: another run quarantined it (its
-- data changed in the MDMS) or the MDMS reopened it, and a quarantined exception stays
-- OPEN (contract). Returns how many rows were moved.
-- The shard's rows not locked yet are found among the temp tables first: on a first run
-- none are left, and mdm.vee_exception is not read at all.
WITH locked AS (
    INSERT INTO nightly_locked (exception_id, moved)
    SELECT e.exception_id,
           e.status <> (CASE r.decision WHEN 'AUTO_APPLY' THEN 'AUTO_RESOLVED' ELSE 'PENDING_REVIEW' END)
    FROM (
        SELECT r.exception_id, r.decision
        FROM nightly_result AS r
        WHERE NOT EXISTS (SELECT 1 FROM nightly_locked AS l WHERE l.exception_id = r.exception_id)
    ) AS r
    JOIN mdm.vee_exception AS e ON e.exception_id = r.exception_id
    WHERE e.status IN ('AUTO_RESOLVED', 'PENDING_REVIEW')
    ORDER BY e.exception_id
    FOR UPDATE OF e
    RETURNING moved
)
SELECT count(*) FILTER (WHERE moved)::int AS moved FROM locked;
