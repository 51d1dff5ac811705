-- How many exceptions of the read date this system may decide (sizes the run's shards).
SELECT count(*)
FROM mdm.vee_exception
WHERE read_date = :read_date
  AND status IN ('OPEN', 'AUTO_RESOLVED', 'PENDING_REVIEW')
