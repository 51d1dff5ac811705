-- Training labels: exceptions analysts resolved (never the system's own decisions) with the
-- resolution known before the run's cutoff (start of its logical date in the utility's
-- zone), within the lookback. Range predicate on analyst_resolution (resolved_at). :tz is
-- the utility's time zone.
SELECT e.exception_id,
       e.meter_id,
       e.rule_code AS label_rule_code,
       e.read_date,
       e.raised_at,
       a.resolved_at,
       a.resolution_code
FROM mdm.analyst_resolution a
JOIN mdm.vee_exception e ON e.exception_id = a.exception_id
WHERE a.resolved_at < :cutoff
  AND a.resolved_at >= :since
  AND e.status = 'ANALYST_RESOLVED'
  -- rows the nightly run would quarantine for their timestamps (checks raised_at_plausible,
  -- window_ordered, window_overlaps_day, window_length_plausible): infinite ones fail the
  -- features' arithmetic, a raise before the read date starts (locally, or at its UTC
  -- midnight when that is earlier) has point-in-time features that saw none of its reads,
  -- and a window must share time with its read date and last at most :max_window_days
  -- raised before the cutoff too: a resolution stamped before its exception was raised (an
  -- MDMS clock problem) would otherwise bring in an exception, and features, from after it
  AND e.raised_at < :cutoff
  AND isfinite(e.raised_at) AND isfinite(e.window_start) AND isfinite(e.window_end)
  AND e.raised_at >= least(e.read_date::timestamp AT TIME ZONE :tz,
                           e.read_date::timestamp AT TIME ZONE 'UTC')
  AND e.window_start < e.window_end
  AND e.window_start < (e.read_date + 1)::timestamp AT TIME ZONE :tz
  AND e.window_end > e.read_date::timestamp AT TIME ZONE :tz
  AND e.window_end - e.window_start <= make_interval(days => CAST(:max_window_days AS integer))
  -- and for their values (checks observed_value_finite, expected_value_finite): the model
  -- never scores such a row, so it does not learn from one either (outside probe,
  -- 2026-11-27: 640 labels with a NULL observed value). NaN sorts above every number in
  -- PostgreSQL, so `abs(v) <= :max_abs_value` also leaves out NaN and infinities.
  AND abs(e.observed_value) <= :max_abs_value
  AND (e.observed_value = 0 OR abs(e.observed_value) >= :min_abs_nonzero)
  AND (e.expected_value IS NULL
       OR (abs(e.expected_value) <= :max_abs_value
           AND (e.expected_value = 0 OR abs(e.expected_value) >= :min_abs_nonzero)))
ORDER BY e.raised_at, e.exception_id
