-- Roll up one settled day for every meter: reads of :day (local) received before :settled_at.
-- LATERAL: one primary-key range scan per meter of mdm.meter (the key leads with meter_id),
-- ~24 reads each; a hash join would scan the whole read history instead. The aggregates are
-- those of the features' usage history (features_context_rows.sql, CTE raw_days). A plain
-- INSERT: the caller holds the day's lock and has just cleared the day.
INSERT INTO vee.meter_daily (meter_id, day, settled_at, n_rows, n_values, n_nonactual, kwh,
                             export_kwh, abs_kwh, max_interval, intraday_cv)
SELECT m.meter_id, CAST(:day AS date), CAST(:settled_at AS timestamptz),
       a.n_rows, a.n_values, a.n_nonactual, a.kwh, a.export_kwh, a.abs_kwh, a.max_interval,
       a.intraday_cv
FROM mdm.meter m
CROSS JOIN LATERAL (
    SELECT count(*) AS n_rows,
           count(r.value_kwh) AS n_values,
           count(*) FILTER (WHERE r.quality <> 'A') AS n_nonactual,
           sum(r.value_kwh) AS kwh,
           coalesce(sum(-r.value_kwh) FILTER (WHERE r.value_kwh < 0), 0) AS export_kwh,
           sum(abs(r.value_kwh)) AS abs_kwh,
           max(r.value_kwh) AS max_interval,
           stddev_pop(r.value_kwh) / NULLIF(avg(r.value_kwh), 0) AS intraday_cv
    FROM (
        -- beyond +-1e12 kWh: no value, as in features_context_rows.sql (raw_days)
        SELECT ri.quality,
               CASE WHEN abs(ri.value_kwh) > 1e12 AND abs(ri.value_kwh) < 'Infinity'
                    THEN NULL ELSE ri.value_kwh END AS value_kwh
        FROM mdm.interval_read ri
        WHERE ri.meter_id = m.meter_id
          AND ri.interval_start >= (CAST(:day AS date)::timestamp AT TIME ZONE :tz)
          AND ri.interval_start < ((CAST(:day AS date) + 1)::timestamp AT TIME ZONE :tz)
          AND ri.received_at < CAST(:settled_at AS timestamptz)
        -- in time order, as the features' raw days: the same float sums to the last bit
        ORDER BY ri.interval_start
    ) r
) a
WHERE a.n_rows > 0
