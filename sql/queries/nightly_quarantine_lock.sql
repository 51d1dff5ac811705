-- One quarantine writer per read date: two runs of the same date at once (a scheduled run
-- and an operator's) each deleted the date's quarantine rows of their exceptions, then
-- inserted their own, and neither DELETE saw the other's uncommitted INSERT: both sets
-- stayed, two rows per quarantined exception (outside probe, 2026-11-29). Held to the end
-- of the transaction; the statements after it see what the other run committed.
SELECT pg_advisory_xact_lock(hashtext('vee.quarantined_exception'),
                             CAST(:read_date AS date) - DATE '2000-01-01');
