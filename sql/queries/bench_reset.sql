-- Undo an earlier bench run of :read_date so that every run scores from the same state.
UPDATE mdm.vee_exception
SET status = 'OPEN', status_changed_at = raised_at
WHERE read_date = :read_date AND status IN ('AUTO_RESOLVED', 'PENDING_REVIEW');
DELETE FROM vee.exception_resolution WHERE read_date = :read_date;
DELETE FROM vee.quarantined_exception WHERE read_date = :read_date;
DELETE FROM vee.nightly_extract;
DELETE FROM vee.nightly_shard_ids;
