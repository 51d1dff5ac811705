-- What this shard decided: scored (locked and written), split by decision, and skipped
-- (no longer decidable at write time: an analyst resolved it meanwhile; a row another run
-- of the date moved is locked and written, see nightly_lock_unchanged.sql).
SELECT count(l.exception_id)::int AS scored,
       count(l.exception_id) FILTER (WHERE r.decision = 'AUTO_APPLY')::int AS auto_applied,
       count(l.exception_id) FILTER (WHERE r.decision = 'REVIEW')::int AS sent_to_review,
       (count(*) - count(l.exception_id))::int AS skipped_analyst
FROM nightly_result AS r
LEFT JOIN nightly_locked AS l ON l.exception_id = r.exception_id;
