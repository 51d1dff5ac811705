INSERT INTO vee.meter_daily_day (day, settled_at, meters, reads, seconds)
VALUES (:day, :settled_at, :meters, :reads, :seconds)
ON CONFLICT (day) DO UPDATE
SET settled_at = EXCLUDED.settled_at, meters = EXCLUDED.meters, reads = EXCLUDED.reads,
    seconds = EXCLUDED.seconds, computed_at = now()
