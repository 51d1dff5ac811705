-- A quarantined exception is not decided by this system: the contract keeps it OPEN. An
-- earlier run of this read date may have decided it before its data changed in the MDMS;
-- that decision is withdrawn: its status goes back to OPEN and its resolution row is
-- deleted. Only rows still decidable: an analyst's resolution wins. The UPDATE re-checks the
-- status on a row's newest version, and FOR UPDATE re-checks it for the rows already OPEN,
-- so a row an analyst resolved meanwhile drops out of both (and keeps its resolution row).
-- The rows in the two parts are disjoint: a row is either OPEN or not in the snapshot.
WITH quarantined AS (
    SELECT DISTINCT x.exception_id
    FROM vee.nightly_extract AS x
    WHERE x.dag_run_id = :dag_run_id
      AND x.failed_checks IS NOT NULL
      AND x.exception_id IS NOT NULL
),
reopened AS (
    UPDATE mdm.vee_exception AS e
    SET status = 'OPEN',
        status_changed_at = now()
    FROM quarantined AS q
    WHERE e.exception_id = q.exception_id
      AND e.status IN ('AUTO_RESOLVED', 'PENDING_REVIEW')
    RETURNING e.exception_id
),
still_open AS (
    SELECT e.exception_id
    FROM mdm.vee_exception AS e
    JOIN quarantined AS q ON q.exception_id = e.exception_id
    WHERE e.status = 'OPEN'
    FOR UPDATE OF e
),
withdrawn AS (
    DELETE FROM vee.exception_resolution AS r
    WHERE r.exception_id IN (SELECT exception_id FROM reopened
                             UNION
                             SELECT exception_id FROM still_open)
    RETURNING r.exception_id
)
SELECT (SELECT count(*) FROM reopened)::int AS reopened,
       (SELECT count(*) FROM withdrawn)::int AS withdrawn;
