-- A rerun replaces this read date's quarantine: afterwards it holds what this run found, no
-- more (an exception quarantined by an earlier attempt and resolved by an analyst since is
-- not staged again, and its old row outnumbered the run's count; outside probe 2026-11-27).
-- One index range of (read_date, exception_id); the other dates' rows of exceptions that
-- moved here are nightly_quarantine_delete_moved.sql.
DELETE FROM vee.quarantined_exception AS q
WHERE q.read_date = :read_date;
