-- Of the read date's reads on the meters of a sample of its decided exceptions, how many
-- arrived after their exception was raised: the features see a read only if it was received
-- by raised_at (the same point in time as in training), so a warehouse whose received_at is
-- the time of a later bulk load, not of the head-end's delivery, is scored blind to the
-- day's usage with nothing else saying so (outside probe, 2026-11-28). A sample (the
-- (read_date, status) index, then key range scans of interval_read): a few milliseconds, on
-- any night. Parameters: :read_date, :tz (utility time zone), :sample_size.
WITH sample AS (
    SELECT e.meter_id, e.raised_at
    FROM mdm.vee_exception AS e
    WHERE e.read_date = :read_date
      AND e.status IN ('AUTO_RESOLVED', 'PENDING_REVIEW')
    LIMIT :sample_size
),
day AS (
    SELECT (CAST(:read_date AS date)::timestamp AT TIME ZONE :tz) AS day_start,
           ((CAST(:read_date AS date) + 1)::timestamp AT TIME ZONE :tz) AS day_end
)
SELECT count(DISTINCT s.meter_id) AS meters,
       count(r.received_at) AS reads,
       count(r.received_at) FILTER (WHERE r.received_at > s.raised_at) AS received_after_raise
FROM sample AS s
CROSS JOIN day AS d
CROSS JOIN LATERAL (
    SELECT ri.received_at
    FROM mdm.interval_read AS ri
    WHERE ri.meter_id = s.meter_id
      AND ri.interval_start >= d.day_start
      AND ri.interval_start < d.day_end
) AS r;
