-- Roll up one settled day for every meter: reads of :day (local) received before :settled_at.
-- One primary-key range scan per meter of mdm.meter (the key leads with meter_id). The
-- aggregates are those of the features' usage history (features.sql, CTE raw_days).
INSERT INTO vee.meter_daily (meter_id, day, settled_at, n_rows, n_values, n_nonactual, kwh,
                             export_kwh, abs_kwh, max_interval, intraday_cv)
SELECT m.meter_id,
       CAST(:day AS date),
       CAST(:settled_at AS timestamptz),
       count(*),
       count(r.value_kwh),
       count(*) FILTER (WHERE r.quality <> 'A'),
       sum(r.value_kwh),
       coalesce(sum(-r.value_kwh) FILTER (WHERE r.value_kwh < 0), 0),
       sum(abs(r.value_kwh)),
       max(r.value_kwh),
       stddev_pop(r.value_kwh) / NULLIF(avg(r.value_kwh), 0)
FROM mdm.meter m
JOIN mdm.interval_read r
  ON r.meter_id = m.meter_id
 AND r.interval_start >= (CAST(:day AS date)::timestamp AT TIME ZONE :tz)
 AND r.interval_start < ((CAST(:day AS date) + 1)::timestamp AT TIME ZONE :tz)
 AND r.received_at < CAST(:settled_at AS timestamptz)
GROUP BY m.meter_id
ON CONFLICT (meter_id, day) DO UPDATE
SET settled_at = EXCLUDED.settled_at, n_rows = EXCLUDED.n_rows, n_values = EXCLUDED.n_values,
    n_nonactual = EXCLUDED.n_nonactual, kwh = EXCLUDED.kwh, export_kwh = EXCLUDED.export_kwh,
    abs_kwh = EXCLUDED.abs_kwh, max_interval = EXCLUDED.max_interval,
    intraday_cv = EXCLUDED.intraday_cv
