-- Features of the exceptions listed in temp table vee_feature_ids, point in time at each
-- exception's raised_at: reads received at or before raised_at (for a history day already
-- settled then: received before it settled, see vee_tasks/usage_rollup.py), exceptions raised
-- before it (or, for the same meter-day, at the same instant), analyst resolutions strictly
-- before it, weather up to the read date. Parameters: :tz (utility time zone), :hist_days
-- (usage lookback), :settle_days (usage_rollup.SETTLE_DAYS), :temp_days (weather lookback),
-- :res_days (resolution lookback).
-- Every range predicate is on an index prefix: interval_read (meter_id, interval_start),
-- vee.meter_daily (meter_id, day), vee_exception (meter_id, raised_at), weather_daily
-- (region, day).
WITH ex AS (
    -- LATERAL: one primary-key lookup per id. A merge join would walk vee_exception's key
    -- index from its first (oldest) id up to the day's ids: seconds on a large table.
    SELECT e.exception_id, e.meter_id, e.rule_code, e.read_date, e.window_start, e.window_end,
           e.observed_value, e.expected_value, e.raised_at
    FROM vee_feature_ids f
    CROSS JOIN LATERAL (
        SELECT * FROM mdm.vee_exception v WHERE v.exception_id = f.exception_id
        OFFSET 0  -- a planner fence: keeps the lookup from being flattened into a merge join
    ) e
),
-- Exceptions of one meter-day raised together share their usage context.
ctx AS (
    SELECT DISTINCT meter_id, read_date, raised_at FROM ex
),
-- The calendar of the chunk's usage days, each with its local bounds and settle instant
-- (time zone arithmetic once per day, not once per meter-day), and whether its rollup is
-- complete.
day_bounds AS (
    SELECT g.day, g.settled_at, g.day_start, g.day_end, (rd.day IS NOT NULL) AS rolled
    FROM (
        SELECT s.day::date AS day,
               ((s.day::date + 1 + CAST(:settle_days AS integer))::timestamp AT TIME ZONE :tz)
                   AS settled_at,
               (s.day::date::timestamp AT TIME ZONE :tz) AS day_start,
               ((s.day::date + 1)::timestamp AT TIME ZONE :tz) AS day_end
        FROM generate_series((SELECT min(read_date) FROM ctx) - CAST(:hist_days AS integer),
                             (SELECT max(read_date) FROM ctx), interval '1 day') AS s(day)
    ) g
    LEFT JOIN vee.meter_daily_day rd ON rd.day = g.day AND rd.settled_at = g.settled_at
),
-- Each context's usage days: the HIST_DAYS before the read date and the read date itself.
-- A history day settled by raised_at (vee_tasks/usage_rollup.py) counts the reads received
-- before it settled; any other day, the reads received by raised_at.
ctx_days AS (
    SELECT c.meter_id, c.read_date, c.raised_at, g.day,
           (g.day < c.read_date AND g.settled_at <= c.raised_at) AS settled,
           g.settled_at, g.rolled, g.day_start, g.day_end
    FROM ctx c
    JOIN day_bounds g
      ON g.day >= c.read_date - CAST(:hist_days AS integer)
     AND g.day <= c.read_date
),
-- Settled days with a complete rollup: one row per meter-day (a meter without reads that
-- day has no row, as it has no group below).
rolled_days AS (
    SELECT c.meter_id, c.read_date, c.raised_at, md.day, md.kwh, md.n_rows, md.n_values,
           md.n_nonactual, md.export_kwh, md.abs_kwh, md.max_interval, md.intraday_cv
    FROM ctx c
    CROSS JOIN LATERAL (
        SELECT m.* FROM vee.meter_daily m
        WHERE m.meter_id = c.meter_id
          AND m.day >= c.read_date - CAST(:hist_days AS integer)
          AND m.day < c.read_date
        OFFSET 0  -- a planner fence: one key range scan per context, never a table scan
    ) md
    JOIN day_bounds g ON g.day = md.day AND g.rolled AND g.settled_at = md.settled_at
    WHERE md.settled_at <= c.raised_at
),
-- Every other day from the interval reads (the same aggregates as usage_rollup_build_day).
-- An aggregate in a LATERAL subquery runs once per meter-day: one key range scan of ~24
-- reads each. A join here was planned as a scan of the whole read table, or of each meter's
-- whole read history.
raw_needed AS MATERIALIZED (
    SELECT d.meter_id, d.read_date, d.raised_at, d.day, d.settled, d.settled_at, d.day_start,
           d.day_end
    FROM ctx_days d
    WHERE NOT (d.settled AND d.rolled)
),
raw_days AS (
    SELECT d.meter_id, d.read_date, d.raised_at, d.day, a.kwh, a.n_rows, a.n_values,
           a.n_nonactual, a.export_kwh, a.abs_kwh, a.max_interval, a.intraday_cv,
           a.n_distinct, a.n_zero, a.n_negative
    FROM raw_needed d
    CROSS JOIN LATERAL (
        SELECT sum(r.value_kwh) AS kwh,
               count(*) AS n_rows,
               count(r.value_kwh) AS n_values,
               count(*) FILTER (WHERE r.quality <> 'A') AS n_nonactual,
               coalesce(sum(-r.value_kwh) FILTER (WHERE r.value_kwh < 0), 0) AS export_kwh,
               sum(abs(r.value_kwh)) AS abs_kwh,
               max(r.value_kwh) AS max_interval,
               stddev_pop(r.value_kwh) / NULLIF(avg(r.value_kwh), 0) AS intraday_cv,
               -- for a rule window spanning the whole read date (CTE win)
               count(DISTINCT r.value_kwh) AS n_distinct,
               count(*) FILTER (WHERE r.value_kwh = 0) AS n_zero,
               count(*) FILTER (WHERE r.value_kwh < 0) AS n_negative
        FROM mdm.interval_read r
        WHERE r.meter_id = d.meter_id
          AND r.interval_start >= d.day_start
          AND r.interval_start < d.day_end
          AND r.received_at <= d.raised_at
          AND (NOT d.settled OR r.received_at < d.settled_at)
    ) a
    WHERE a.n_rows > 0
),
daily AS (
    SELECT * FROM rolled_days
    UNION ALL
    SELECT meter_id, read_date, raised_at, day, kwh, n_rows, n_values, n_nonactual, export_kwh,
           abs_kwh, max_interval, intraday_cv
    FROM raw_days
),
usage AS (
    SELECT d.meter_id, d.read_date, d.raised_at,
           count(*) FILTER (WHERE d.day < d.read_date AND d.n_values > 0) AS hist_days,
           avg(d.kwh) FILTER (WHERE d.day < d.read_date) AS hist_mean,
           stddev_samp(d.kwh) FILTER (WHERE d.day < d.read_date) AS hist_std,
           min(d.kwh) FILTER (WHERE d.day < d.read_date) AS hist_min,
           max(d.kwh) FILTER (WHERE d.day < d.read_date) AS hist_max,
           avg(d.kwh) FILTER (WHERE d.day < d.read_date
                              AND extract(isodow FROM d.day) = extract(isodow FROM d.read_date))
               AS same_dow_mean,
           avg(d.kwh) FILTER (WHERE d.day >= d.read_date - 7 AND d.day < d.read_date) AS recent7_mean,
           avg(d.kwh) FILTER (WHERE d.day < d.read_date - 7) AS prior_mean,
           count(*) FILTER (WHERE d.day < d.read_date AND d.n_values > 0 AND d.kwh = 0)
               AS hist_zero_days,
           sum(d.n_nonactual) FILTER (WHERE d.day < d.read_date)::float8
               / NULLIF(sum(d.n_rows) FILTER (WHERE d.day < d.read_date), 0) AS hist_nonactual_share,
           1 - sum(d.n_values) FILTER (WHERE d.day < d.read_date)::float8
               / NULLIF(sum(d.n_rows) FILTER (WHERE d.day < d.read_date), 0) AS hist_null_share,
           sum(d.export_kwh) FILTER (WHERE d.day < d.read_date)
               / NULLIF(sum(d.abs_kwh) FILTER (WHERE d.day < d.read_date), 0) AS hist_export_share,
           avg(d.max_interval) FILTER (WHERE d.day < d.read_date) AS hist_mean_max_interval,
           count(*) FILTER (WHERE d.day >= d.read_date - 7 AND d.day < d.read_date
                            AND d.n_values > 0 AND d.kwh = 0) AS zero_days_7,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY d.intraday_cv)
               FILTER (WHERE d.day >= d.read_date - 14 AND d.day < d.read_date) AS hist_cv_median,
           max(d.intraday_cv) FILTER (WHERE d.day = d.read_date) AS day_cv,
           max(d.kwh) FILTER (WHERE d.day = d.read_date) AS day_kwh,
           max(d.n_rows) FILTER (WHERE d.day = d.read_date) AS day_rows,
           max(d.n_values) FILTER (WHERE d.day = d.read_date) AS day_values,
           max(d.n_nonactual) FILTER (WHERE d.day = d.read_date) AS day_nonactual,
           max(d.export_kwh) FILTER (WHERE d.day = d.read_date) AS day_export_kwh,
           max(d.abs_kwh) FILTER (WHERE d.day = d.read_date) AS day_abs_kwh,
           max(d.max_interval) FILTER (WHERE d.day = d.read_date) AS day_max_interval
    FROM daily d
    GROUP BY d.meter_id, d.read_date, d.raised_at
),
-- The intervals the rule looked at, as received by raised_at. A window spanning the whole
-- read date is that day's usage row (raw_days); any other window is read here.
ex_window AS (
    SELECT x.*,
           (x.window_start = (x.read_date::timestamp AT TIME ZONE :tz)
            AND x.window_end = ((x.read_date + 1)::timestamp AT TIME ZONE :tz)) IS TRUE AS whole_day
    FROM ex x
),
win AS (
    SELECT x.exception_id, w.win_rows, w.win_values, w.win_distinct, w.win_nonactual,
           w.win_zero, w.win_negative, w.win_kwh, w.win_max
    FROM ex_window x
    CROSS JOIN LATERAL (
        SELECT count(*) AS win_rows,
               count(r.value_kwh) AS win_values,
               count(DISTINCT r.value_kwh) AS win_distinct,
               count(*) FILTER (WHERE r.quality <> 'A') AS win_nonactual,
               count(*) FILTER (WHERE r.value_kwh = 0) AS win_zero,
               count(*) FILTER (WHERE r.value_kwh < 0) AS win_negative,
               sum(r.value_kwh) AS win_kwh,
               max(r.value_kwh) AS win_max
        FROM mdm.interval_read r
        WHERE r.meter_id = x.meter_id
          AND r.interval_start >= x.window_start
          AND r.interval_start < x.window_end
          AND r.received_at <= x.raised_at
    ) w
    WHERE NOT x.whole_day
    UNION ALL
    SELECT x.exception_id,
           coalesce(d.n_rows, 0), coalesce(d.n_values, 0), coalesce(d.n_distinct, 0),
           coalesce(d.n_nonactual, 0), coalesce(d.n_zero, 0), coalesce(d.n_negative, 0),
           d.kwh, d.max_interval
    FROM ex_window x
    LEFT JOIN raw_days d
      ON d.meter_id = x.meter_id AND d.read_date = x.read_date AND d.raised_at = x.raised_at
     AND d.day = x.read_date
    WHERE x.whole_day
),
wx AS (
    SELECT k.region, k.read_date,
           max(w.mean_temp_c) FILTER (WHERE w.day = k.read_date) AS temp_day,
           avg(w.mean_temp_c) FILTER (WHERE w.day < k.read_date) AS temp_trailing
    -- the meters' regions by key lookups (a hash join read all of mdm.meter per chunk)
    FROM (SELECT DISTINCT m.region, x.read_date
          FROM (SELECT DISTINCT meter_id, read_date FROM ex) x
          CROSS JOIN LATERAL (
              SELECT mm.region FROM mdm.meter mm WHERE mm.meter_id = x.meter_id OFFSET 0
          ) m) k
    JOIN mdm.weather_daily w
      ON w.region = k.region
     AND w.day >= k.read_date - CAST(:temp_days AS integer)
     AND w.day <= k.read_date
    GROUP BY k.region, k.read_date
),
-- Earlier exceptions of the meter (90 days), by rule.
hist AS (
    SELECT c.meter_id, c.raised_at, c.read_date, h.*
    FROM (SELECT DISTINCT meter_id, raised_at, read_date FROM ex) c
    -- an aggregate per context: one key range scan of vee_exception (meter_id, raised_at)
    CROSS JOIN LATERAL (
        SELECT
               count(*) FILTER (WHERE p.raised_at >= c.raised_at - interval '30 days') AS exc30_total,
               count(*) AS exc90_total,
               count(*) FILTER (WHERE p.raised_at >= c.raised_at - interval '30 days' AND p.rule_code = 'GAP') AS exc30_gap,
               count(*) FILTER (WHERE p.raised_at >= c.raised_at - interval '30 days' AND p.rule_code = 'SPIKE') AS exc30_spike,
               count(*) FILTER (WHERE p.raised_at >= c.raised_at - interval '30 days' AND p.rule_code = 'HIGH_USAGE') AS exc30_high_usage,
               count(*) FILTER (WHERE p.raised_at >= c.raised_at - interval '30 days' AND p.rule_code = 'LOW_USAGE') AS exc30_low_usage,
               count(*) FILTER (WHERE p.raised_at >= c.raised_at - interval '30 days' AND p.rule_code = 'ZERO_CONSUMPTION') AS exc30_zero_consumption,
               count(*) FILTER (WHERE p.raised_at >= c.raised_at - interval '30 days' AND p.rule_code = 'FLATLINE') AS exc30_flatline,
               count(*) FILTER (WHERE p.raised_at >= c.raised_at - interval '30 days' AND p.rule_code = 'REVERSE_FLOW') AS exc30_reverse_flow,
               count(*) FILTER (WHERE p.raised_at >= c.raised_at - interval '30 days' AND p.rule_code = 'STEP_CHANGE') AS exc30_step_change,
               count(*) FILTER (WHERE p.rule_code = 'GAP') AS exc90_gap,
               count(*) FILTER (WHERE p.rule_code = 'SPIKE') AS exc90_spike,
               count(*) FILTER (WHERE p.rule_code = 'HIGH_USAGE') AS exc90_high_usage,
               count(*) FILTER (WHERE p.rule_code = 'LOW_USAGE') AS exc90_low_usage,
               count(*) FILTER (WHERE p.rule_code = 'ZERO_CONSUMPTION') AS exc90_zero_consumption,
               count(*) FILTER (WHERE p.rule_code = 'FLATLINE') AS exc90_flatline,
               count(*) FILTER (WHERE p.rule_code = 'REVERSE_FLOW') AS exc90_reverse_flow,
               count(*) FILTER (WHERE p.rule_code = 'STEP_CHANGE') AS exc90_step_change,
               count(*) FILTER (WHERE p.raised_at >= c.raised_at - interval '14 days' AND p.rule_code = 'GAP') AS exc14_gap,
               count(*) FILTER (WHERE p.raised_at >= c.raised_at - interval '14 days' AND p.rule_code = 'SPIKE') AS exc14_spike,
               count(*) FILTER (WHERE p.raised_at >= c.raised_at - interval '14 days' AND p.rule_code = 'HIGH_USAGE') AS exc14_high_usage,
               count(*) FILTER (WHERE p.raised_at >= c.raised_at - interval '14 days' AND p.rule_code = 'LOW_USAGE') AS exc14_low_usage,
               count(*) FILTER (WHERE p.raised_at >= c.raised_at - interval '14 days' AND p.rule_code = 'ZERO_CONSUMPTION') AS exc14_zero_consumption,
               count(*) FILTER (WHERE p.raised_at >= c.raised_at - interval '14 days' AND p.rule_code = 'FLATLINE') AS exc14_flatline,
               count(*) FILTER (WHERE p.raised_at >= c.raised_at - interval '14 days' AND p.rule_code = 'REVERSE_FLOW') AS exc14_reverse_flow,
               count(*) FILTER (WHERE p.raised_at >= c.raised_at - interval '14 days' AND p.rule_code = 'STEP_CHANGE') AS exc14_step_change,
               -- GAP exceptions on each of the 4 read dates before (a gap streak)
               bool_or(p.rule_code = 'GAP' AND p.read_date = c.read_date - 1) AS gap_d1,
               bool_or(p.rule_code = 'GAP' AND p.read_date = c.read_date - 2) AS gap_d2,
               bool_or(p.rule_code = 'GAP' AND p.read_date = c.read_date - 3) AS gap_d3,
               bool_or(p.rule_code = 'GAP' AND p.read_date = c.read_date - 4) AS gap_d4
        FROM mdm.vee_exception p
        WHERE p.meter_id = c.meter_id
          AND p.raised_at < c.raised_at
          AND p.raised_at >= c.raised_at - interval '90 days'
    ) h
),
-- Exceptions of the same meter-day already raised (a batch shares one raised_at), counted
-- once per context by key range scans; each exception then leaves itself out below.
sameday AS (
    SELECT c.meter_id, c.read_date, c.raised_at, s.n_total, s.n_gap, s.n_low, s.n_high, s.n_meter
    FROM ctx c
    CROSS JOIN LATERAL (
        SELECT count(*) AS n_total,
               count(*) FILTER (WHERE p.rule_code = 'GAP') AS n_gap,
               count(*) FILTER (WHERE p.rule_code IN ('LOW_USAGE', 'ZERO_CONSUMPTION')) AS n_low,
               count(*) FILTER (WHERE p.rule_code IN ('HIGH_USAGE', 'SPIKE')) AS n_high,
               count(*) FILTER (WHERE p.rule_code IN ('FLATLINE', 'STEP_CHANGE', 'REVERSE_FLOW'))
                   AS n_meter
        FROM mdm.vee_exception p
        WHERE p.meter_id = c.meter_id
          AND p.raised_at <= c.raised_at
          AND p.raised_at >= c.raised_at - interval '3 days'
          AND p.read_date = c.read_date
    ) s
),
-- Analyst resolutions of the meter's earlier exceptions, known strictly before raised_at.
res AS (
    SELECT c.meter_id, c.raised_at, c.rule_code, c.read_date, r.*
    FROM (SELECT DISTINCT meter_id, raised_at, rule_code, read_date FROM ex) c
    -- an aggregate per context: key range scans only (vee_exception by meter and time,
    -- analyst_resolution by exception id), whatever the tables' sizes
    CROSS JOIN LATERAL (
        SELECT
               count(*) AS res_total,
               count(*) FILTER (WHERE a.resolution_code = 'ACCEPT') AS res_accept,
               count(*) FILTER (WHERE a.resolution_code = 'ESTIMATE') AS res_estimate,
               count(*) FILTER (WHERE a.resolution_code = 'EDIT') AS res_edit,
               count(*) FILTER (WHERE a.resolution_code = 'REREAD') AS res_reread,
               count(*) FILTER (WHERE a.resolution_code = 'FIELD_ORDER') AS res_field_order,
               count(*) FILTER (WHERE p.rule_code = c.rule_code) AS res_same_rule_total,
               (array_agg(a.resolution_code ORDER BY a.resolved_at DESC, a.exception_id DESC))[1]
                   AS last_resolution,
               (array_agg(a.resolution_code ORDER BY a.resolved_at DESC, a.exception_id DESC)
                   FILTER (WHERE p.rule_code = c.rule_code))[1] AS last_resolution_same_rule,
               extract(epoch FROM c.raised_at - max(a.resolved_at)) / 86400.0 AS days_since_resolution,
               -- read dates since the meter's last exception resolved with each code (any rule,
               -- then the same rule), and since a low/zero-usage day was accepted (a vacancy)
               c.read_date - max(p.read_date) FILTER (WHERE a.resolution_code = 'ACCEPT') AS ds_accept,
               c.read_date - max(p.read_date) FILTER (WHERE a.resolution_code = 'ESTIMATE') AS ds_estimate,
               c.read_date - max(p.read_date) FILTER (WHERE a.resolution_code = 'EDIT') AS ds_edit,
               c.read_date - max(p.read_date) FILTER (WHERE a.resolution_code = 'REREAD') AS ds_reread,
               c.read_date - max(p.read_date) FILTER (WHERE a.resolution_code = 'FIELD_ORDER') AS ds_field_order,
               c.read_date - max(p.read_date) FILTER (WHERE a.resolution_code = 'ACCEPT' AND p.rule_code = c.rule_code) AS ds_same_accept,
               c.read_date - max(p.read_date) FILTER (WHERE a.resolution_code = 'ESTIMATE' AND p.rule_code = c.rule_code) AS ds_same_estimate,
               c.read_date - max(p.read_date) FILTER (WHERE a.resolution_code = 'EDIT' AND p.rule_code = c.rule_code) AS ds_same_edit,
               c.read_date - max(p.read_date) FILTER (WHERE a.resolution_code = 'REREAD' AND p.rule_code = c.rule_code) AS ds_same_reread,
               c.read_date - max(p.read_date) FILTER (WHERE a.resolution_code = 'FIELD_ORDER' AND p.rule_code = c.rule_code) AS ds_same_field_order,
               c.read_date - max(p.read_date) FILTER (WHERE a.resolution_code = 'ACCEPT'
                   AND p.rule_code IN ('LOW_USAGE', 'ZERO_CONSUMPTION')) AS ds_vacancy_accept
        FROM mdm.vee_exception p
        CROSS JOIN LATERAL (
            SELECT ar.resolution_code, ar.resolved_at, ar.exception_id
            FROM mdm.analyst_resolution ar
            WHERE ar.exception_id = p.exception_id AND ar.resolved_at < c.raised_at
            OFFSET 0
        ) a
        WHERE p.meter_id = c.meter_id
          AND p.raised_at < c.raised_at
          AND p.raised_at >= c.raised_at - make_interval(days => CAST(:res_days AS integer))
    ) r
)
SELECT x.exception_id,
       x.rule_code,
       x.read_date,
       x.observed_value,
       x.expected_value,
       x.observed_value / NULLIF(x.expected_value, 0) AS obs_exp_ratio,
       extract(epoch FROM x.window_end - x.window_start) / 3600.0 AS window_hours,
       extract(hour FROM x.window_start AT TIME ZONE :tz)
           + extract(minute FROM x.window_start AT TIME ZONE :tz) / 60.0 AS window_start_hour,
       extract(isodow FROM x.read_date) AS read_dow,
       (x.window_start = (x.read_date::timestamp AT TIME ZONE :tz)
        OR x.window_end = ((x.read_date + 1)::timestamp AT TIME ZONE :tz))::int AS window_at_day_edge,
       extract(epoch FROM x.raised_at - ((x.read_date + 1)::timestamp AT TIME ZONE :tz)) / 3600.0
           AS raise_lag_hours,
       (m.meter_id IS NOT NULL)::int AS meter_known,
       m.customer_class,
       m.meter_kind,
       m.multiplier,
       m.has_der::int AS has_der,
       m.interval_minutes,
       (x.read_date - m.installed_on) AS meter_age_days,
       w.win_rows, w.win_values, w.win_distinct, w.win_nonactual, w.win_zero, w.win_negative,
       w.win_kwh, w.win_max,
       u.hist_days, u.hist_mean, u.hist_std, u.hist_min, u.hist_max,
       u.hist_std / NULLIF(u.hist_mean, 0) AS hist_cv,
       u.same_dow_mean, u.recent7_mean, u.prior_mean,
       u.recent7_mean / NULLIF(u.prior_mean, 0) AS recent_vs_prior,
       u.hist_zero_days, u.hist_nonactual_share, u.hist_null_share, u.hist_export_share,
       u.hist_mean_max_interval,
       u.zero_days_7, u.hist_cv_median, u.day_cv,
       u.day_cv / NULLIF(u.hist_cv_median, 0) AS cv_ratio,
       u.day_kwh, u.day_rows, u.day_values, u.day_nonactual,
       u.day_export_kwh / NULLIF(u.day_abs_kwh, 0) AS day_export_share,
       u.day_max_interval,
       u.day_kwh / NULLIF(u.hist_mean, 0) AS day_vs_hist,
       u.day_kwh / NULLIF(u.same_dow_mean, 0) AS day_vs_same_dow,
       u.day_max_interval / NULLIF(u.hist_mean_max_interval, 0) AS day_max_vs_hist,
       wx.temp_day, wx.temp_trailing,
       wx.temp_day - wx.temp_trailing AS temp_anomaly,
       h.exc30_total, h.exc90_total,
       h.exc30_gap, h.exc30_spike, h.exc30_high_usage, h.exc30_low_usage,
       h.exc30_zero_consumption, h.exc30_flatline, h.exc30_reverse_flow, h.exc30_step_change,
       h.exc90_gap, h.exc90_spike, h.exc90_high_usage, h.exc90_low_usage,
       h.exc90_zero_consumption, h.exc90_flatline, h.exc90_reverse_flow, h.exc90_step_change,
       h.exc14_gap, h.exc14_spike, h.exc14_high_usage, h.exc14_low_usage,
       h.exc14_zero_consumption, h.exc14_flatline, h.exc14_reverse_flow, h.exc14_step_change,
       h.gap_d1::int AS gap_d1, h.gap_d2::int AS gap_d2, h.gap_d3::int AS gap_d3,
       h.gap_d4::int AS gap_d4,
       greatest(s.n_total - 1, 0) AS sameday_total,
       greatest(s.n_gap - (x.rule_code = 'GAP')::int, 0) AS sameday_gap,
       greatest(s.n_low - (x.rule_code IN ('LOW_USAGE', 'ZERO_CONSUMPTION'))::int, 0) AS sameday_low,
       greatest(s.n_high - (x.rule_code IN ('HIGH_USAGE', 'SPIKE'))::int, 0) AS sameday_high,
       greatest(s.n_meter - (x.rule_code IN ('FLATLINE', 'STEP_CHANGE', 'REVERSE_FLOW'))::int, 0)
           AS sameday_meter,
       r.res_total, r.res_accept, r.res_estimate, r.res_edit, r.res_reread, r.res_field_order,
       r.res_same_rule_total, r.last_resolution, r.last_resolution_same_rule,
       r.days_since_resolution,
       r.ds_accept, r.ds_estimate, r.ds_edit, r.ds_reread, r.ds_field_order,
       r.ds_same_accept, r.ds_same_estimate, r.ds_same_edit, r.ds_same_reread,
       r.ds_same_field_order, r.ds_vacancy_accept
FROM ex x
LEFT JOIN mdm.meter m ON m.meter_id = x.meter_id
LEFT JOIN win w ON w.exception_id = x.exception_id
LEFT JOIN usage u ON u.meter_id = x.meter_id AND u.read_date = x.read_date AND u.raised_at = x.raised_at
LEFT JOIN wx ON wx.region = m.region AND wx.read_date = x.read_date
LEFT JOIN hist h ON h.meter_id = x.meter_id AND h.raised_at = x.raised_at AND h.read_date = x.read_date
LEFT JOIN sameday s ON s.meter_id = x.meter_id AND s.read_date = x.read_date AND s.raised_at = x.raised_at
LEFT JOIN res r ON r.meter_id = x.meter_id AND r.raised_at = x.raised_at AND r.rule_code = x.rule_code
                AND r.read_date = x.read_date
ORDER BY x.exception_id
