-- Features of each usage context of the chunk (temp table vee_feature_ctx, see
-- features_prepare.sql): what its exceptions share, sent once per context and joined to the
-- exceptions by vee_tasks/features.py (ctx_id). Parameters: :tz (utility time zone),
-- :hist_days (usage lookback), :settle_days (usage_rollup.SETTLE_DAYS), :temp_days (weather
-- lookback), :customer_classes and :meter_kinds (vocabularies, see the final SELECT).
-- Point in time at the context's raised_at: reads received at or before it (for a history
-- day already settled then: received before it settled, see vee_tasks/usage_rollup.py),
-- exceptions raised before it (or, for the same meter-day, at the same instant), weather up
-- to the read date. Every range predicate is on an index prefix: interval_read (meter_id,
-- interval_start), vee.meter_daily (meter_id, day), vee_exception (meter_id, raised_at),
-- weather_daily (region, day).
WITH ctx AS (
    SELECT * FROM vee_feature_ctx
),
-- The context's meter by a key lookup (a hash join read all of mdm.meter per chunk).
ctx_meter AS (
    SELECT c.ctx_id, m.*
    FROM ctx c
    CROSS JOIN LATERAL (
        SELECT mm.meter_id, mm.customer_class, mm.meter_kind, mm.multiplier, mm.has_der,
               mm.interval_minutes, mm.installed_on, mm.region
        FROM mdm.meter mm WHERE mm.meter_id = c.meter_id
        LIMIT 1
    ) m
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
    SELECT c.ctx_id, c.meter_id, c.read_date, c.raised_at, g.day,
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
    SELECT c.ctx_id, c.read_date, md.day, md.kwh, md.n_rows, md.n_values,
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
    SELECT d.ctx_id, d.meter_id, d.read_date, d.raised_at, d.day, d.settled, d.settled_at, d.day_start,
           d.day_end
    FROM ctx_days d
    WHERE NOT (d.settled AND d.rolled)
),
raw_days AS (
    SELECT d.ctx_id, d.read_date, d.day, a.kwh, a.n_rows, a.n_values,
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
               -- for a rule window spanning the whole read date (the final SELECT): a
               -- distinct count sorts its rows, so only the read date's are counted
               count(DISTINCT r.value_kwh) FILTER (WHERE d.day = d.read_date) AS n_distinct,
               count(*) FILTER (WHERE r.value_kwh = 0) AS n_zero,
               count(*) FILTER (WHERE r.value_kwh < 0) AS n_negative
        FROM (
            -- A finite value beyond +-1e12 kWh in one interval is no measurement (an MDMS's
            -- "no data" sentinel such as the largest double): read as no value, as NULL is. Its
            -- square overflowed stddev_pop and failed the whole run (outside probe, 2026-11-28).
            -- NaN and infinities go through as before (they do not overflow).
            SELECT ri.quality,
                   CASE WHEN abs(ri.value_kwh) > 1e12 AND abs(ri.value_kwh) < 'Infinity'
                        THEN NULL ELSE ri.value_kwh END AS value_kwh
            FROM mdm.interval_read ri
            WHERE ri.meter_id = d.meter_id
              AND ri.interval_start >= d.day_start
              AND ri.interval_start < d.day_end
              AND ri.received_at <= d.raised_at
              AND (NOT d.settled OR ri.received_at < d.settled_at)
            -- in time order, as the rollup (usage_rollup_build_day.sql): the same float sums
            -- to the last bit whichever plan reads them (the key range scan's own order)
            ORDER BY ri.interval_start
        ) r
    ) a
    WHERE a.n_rows > 0
),
daily AS (
    SELECT * FROM rolled_days
    UNION ALL
    SELECT ctx_id, read_date, day, kwh, n_rows, n_values, n_nonactual, export_kwh,
           abs_kwh, max_interval, intraday_cv
    FROM raw_days
),
usage AS (
    SELECT d.ctx_id,
           count(*) FILTER (WHERE d.day < d.read_date AND d.n_values > 0) AS hist_days,
           avg(d.kwh) FILTER (WHERE d.day < d.read_date) AS hist_mean,
           stddev_samp(d.kwh) FILTER (WHERE d.day < d.read_date) AS hist_std,
           min(d.kwh) FILTER (WHERE d.day < d.read_date) AS hist_min,
           max(d.kwh) FILTER (WHERE d.day < d.read_date) AS hist_max,
           avg(d.kwh) FILTER (WHERE d.day < d.read_date
                              AND (d.read_date - d.day) % 7 = 0)
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
    -- Day by day: a sum or mean of floats depends on the order it adds in. In whatever order
    -- the rolled-up and raw days arrived, the features came out a last bit apart once a day
    -- moved into the rollup, and a retraining on the same labels gave another model (outside
    -- probe, 2026-11-28). A sorted subquery is kept as such and feeds each group in its order.
    FROM (SELECT * FROM daily ORDER BY ctx_id, day) d
    GROUP BY d.ctx_id
),
wx AS (
    SELECT k.region, k.read_date,
           max(w.mean_temp_c) FILTER (WHERE w.day = k.read_date) AS temp_day,
           avg(w.mean_temp_c ORDER BY w.day) FILTER (WHERE w.day < k.read_date) AS temp_trailing
    FROM (SELECT DISTINCT m.region, c.read_date
          FROM ctx c JOIN ctx_meter m ON m.ctx_id = c.ctx_id) k
    JOIN mdm.weather_daily w
      ON w.region = k.region
     AND w.day >= k.read_date - CAST(:temp_days AS integer)
     AND w.day <= k.read_date
    GROUP BY k.region, k.read_date
),
-- Earlier exceptions of the meter (90 days), by rule, and the exceptions of the same
-- meter-day already raised (a batch shares one raised_at; each exception then leaves itself
-- out, in vee_tasks/features.py): one key range scan of vee_exception (meter_id, raised_at)
-- per context up to raised_at inclusive, the history's counts filtered to strictly before
-- it (two scans, history then same day, took ~0.1 s more per 10,000 contexts).
hist AS (
    SELECT c.ctx_id, h.*
    FROM ctx c
    -- the windows' bounds once per context (a planner fence): written in the counts below,
    -- each timestamp - interval was computed per earlier exception ~25 times
    CROSS JOIN LATERAL (
        SELECT c.raised_at - interval '30 days' AS since30,
               c.raised_at - interval '14 days' AS since14,
               c.raised_at - interval '3 days' AS since3
        OFFSET 0
    ) b
    CROSS JOIN LATERAL (
        SELECT
               count(*) FILTER (WHERE p.raised_at < c.raised_at AND p.raised_at >= b.since30) AS exc30_total,
               count(*) FILTER (WHERE p.raised_at < c.raised_at) AS exc90_total,
               count(*) FILTER (WHERE p.raised_at < c.raised_at AND p.raised_at >= b.since30 AND p.rule_code = 'GAP') AS exc30_gap,
               count(*) FILTER (WHERE p.raised_at < c.raised_at AND p.raised_at >= b.since30 AND p.rule_code = 'SPIKE') AS exc30_spike,
               count(*) FILTER (WHERE p.raised_at < c.raised_at AND p.raised_at >= b.since30 AND p.rule_code = 'HIGH_USAGE') AS exc30_high_usage,
               count(*) FILTER (WHERE p.raised_at < c.raised_at AND p.raised_at >= b.since30 AND p.rule_code = 'LOW_USAGE') AS exc30_low_usage,
               count(*) FILTER (WHERE p.raised_at < c.raised_at AND p.raised_at >= b.since30 AND p.rule_code = 'ZERO_CONSUMPTION') AS exc30_zero_consumption,
               count(*) FILTER (WHERE p.raised_at < c.raised_at AND p.raised_at >= b.since30 AND p.rule_code = 'FLATLINE') AS exc30_flatline,
               count(*) FILTER (WHERE p.raised_at < c.raised_at AND p.raised_at >= b.since30 AND p.rule_code = 'REVERSE_FLOW') AS exc30_reverse_flow,
               count(*) FILTER (WHERE p.raised_at < c.raised_at AND p.raised_at >= b.since30 AND p.rule_code = 'STEP_CHANGE') AS exc30_step_change,
               count(*) FILTER (WHERE p.raised_at < c.raised_at AND p.rule_code = 'GAP') AS exc90_gap,
               count(*) FILTER (WHERE p.raised_at < c.raised_at AND p.rule_code = 'SPIKE') AS exc90_spike,
               count(*) FILTER (WHERE p.raised_at < c.raised_at AND p.rule_code = 'HIGH_USAGE') AS exc90_high_usage,
               count(*) FILTER (WHERE p.raised_at < c.raised_at AND p.rule_code = 'LOW_USAGE') AS exc90_low_usage,
               count(*) FILTER (WHERE p.raised_at < c.raised_at AND p.rule_code = 'ZERO_CONSUMPTION') AS exc90_zero_consumption,
               count(*) FILTER (WHERE p.raised_at < c.raised_at AND p.rule_code = 'FLATLINE') AS exc90_flatline,
               count(*) FILTER (WHERE p.raised_at < c.raised_at AND p.rule_code = 'REVERSE_FLOW') AS exc90_reverse_flow,
               count(*) FILTER (WHERE p.raised_at < c.raised_at AND p.rule_code = 'STEP_CHANGE') AS exc90_step_change,
               count(*) FILTER (WHERE p.raised_at < c.raised_at AND p.raised_at >= b.since14 AND p.rule_code = 'GAP') AS exc14_gap,
               count(*) FILTER (WHERE p.raised_at < c.raised_at AND p.raised_at >= b.since14 AND p.rule_code = 'SPIKE') AS exc14_spike,
               count(*) FILTER (WHERE p.raised_at < c.raised_at AND p.raised_at >= b.since14 AND p.rule_code = 'HIGH_USAGE') AS exc14_high_usage,
               count(*) FILTER (WHERE p.raised_at < c.raised_at AND p.raised_at >= b.since14 AND p.rule_code = 'LOW_USAGE') AS exc14_low_usage,
               count(*) FILTER (WHERE p.raised_at < c.raised_at AND p.raised_at >= b.since14 AND p.rule_code = 'ZERO_CONSUMPTION') AS exc14_zero_consumption,
               count(*) FILTER (WHERE p.raised_at < c.raised_at AND p.raised_at >= b.since14 AND p.rule_code = 'FLATLINE') AS exc14_flatline,
               count(*) FILTER (WHERE p.raised_at < c.raised_at AND p.raised_at >= b.since14 AND p.rule_code = 'REVERSE_FLOW') AS exc14_reverse_flow,
               count(*) FILTER (WHERE p.raised_at < c.raised_at AND p.raised_at >= b.since14 AND p.rule_code = 'STEP_CHANGE') AS exc14_step_change,
               -- GAP exceptions on each of the 4 read dates before (a gap streak)
               bool_or(p.rule_code = 'GAP' AND p.read_date = c.read_date - 1) FILTER (WHERE p.raised_at < c.raised_at) AS gap_d1,
               bool_or(p.rule_code = 'GAP' AND p.read_date = c.read_date - 2) FILTER (WHERE p.raised_at < c.raised_at) AS gap_d2,
               bool_or(p.rule_code = 'GAP' AND p.read_date = c.read_date - 3) FILTER (WHERE p.raised_at < c.raised_at) AS gap_d3,
               bool_or(p.rule_code = 'GAP' AND p.read_date = c.read_date - 4) FILTER (WHERE p.raised_at < c.raised_at) AS gap_d4,
               count(*) FILTER (WHERE p.raised_at >= b.since3 AND p.read_date = c.read_date) AS n_total,
               count(*) FILTER (WHERE p.raised_at >= b.since3 AND p.read_date = c.read_date AND p.rule_code = 'GAP') AS n_gap,
               count(*) FILTER (WHERE p.raised_at >= b.since3 AND p.read_date = c.read_date AND p.rule_code IN ('LOW_USAGE', 'ZERO_CONSUMPTION')) AS n_low,
               count(*) FILTER (WHERE p.raised_at >= b.since3 AND p.read_date = c.read_date AND p.rule_code IN ('HIGH_USAGE', 'SPIKE')) AS n_high,
               count(*) FILTER (WHERE p.raised_at >= b.since3 AND p.read_date = c.read_date AND p.rule_code IN ('FLATLINE', 'STEP_CHANGE', 'REVERSE_FLOW'))
                   AS n_meter
        FROM mdm.vee_exception p
        WHERE p.meter_id = c.meter_id
          AND p.raised_at <= c.raised_at
          AND p.raised_at >= c.raised_at - interval '90 days'
    ) h
),
-- One wide row per context: its meter, usage, weather, exception history and same-day
-- counts. ctx_key is the context (each part's own ctx_id column is not referenced).
ctx_all AS (
    SELECT c.ctx_id AS ctx_key, c.read_date AS ctx_read_date, m.*, u.*, wx.temp_day, wx.temp_trailing, h.*
    FROM ctx c
    LEFT JOIN ctx_meter m ON m.ctx_id = c.ctx_id
    LEFT JOIN usage u ON u.ctx_id = c.ctx_id
    LEFT JOIN wx ON wx.region = m.region AND wx.read_date = c.read_date
    LEFT JOIN hist h ON h.ctx_id = c.ctx_id
)
-- One fixed-width row per context for binary COPY (warehouse.copy_query_matrix): ctx_id,
-- then every column as a non-null float8, NULL as NaN, a categorical as its 1-based position
-- in the vocabulary bound as an array, 0 outside it, -1 for NULL. The same-day counts go
-- out whole (the client leaves each exception's own rule out), and so does the read date's
-- usage row (raw_days), which is the rule window of an exception spanning the whole day.
SELECT CAST(k.ctx_key AS bigint) AS ctx_id,
       coalesce(CAST((k.meter_id IS NOT NULL)::int AS float8), 'NaN') AS meter_known,
       CASE WHEN k.customer_class IS NULL THEN -1
            ELSE coalesce(array_position(CAST(:customer_classes AS text[]), k.customer_class), 0) END::float8
           AS customer_class,
       CASE WHEN k.meter_kind IS NULL THEN -1
            ELSE coalesce(array_position(CAST(:meter_kinds AS text[]), k.meter_kind), 0) END::float8
           AS meter_kind,
       coalesce(CAST(k.multiplier AS float8), 'NaN') AS multiplier,
       coalesce(CAST(k.has_der::int AS float8), 'NaN') AS has_der,
       coalesce(CAST(k.interval_minutes AS float8), 'NaN') AS interval_minutes,
       -- an install date of +-infinity (an MDMS's "unknown") is no age: subtracting it
       -- failed the whole shard ("cannot subtract infinite dates"; review, 2026-11-29)
       coalesce(CAST(CASE WHEN isfinite(k.installed_on) THEN k.ctx_read_date - k.installed_on END
                     AS float8), 'NaN') AS meter_age_days,
       coalesce(CAST(k.hist_days AS float8), 'NaN') AS hist_days,
       coalesce(CAST(k.hist_mean AS float8), 'NaN') AS hist_mean,
       coalesce(CAST(k.hist_std AS float8), 'NaN') AS hist_std,
       coalesce(CAST(k.hist_min AS float8), 'NaN') AS hist_min,
       coalesce(CAST(k.hist_max AS float8), 'NaN') AS hist_max,
       coalesce(CAST(k.hist_std / NULLIF(k.hist_mean, 0) AS float8), 'NaN') AS hist_cv,
       coalesce(CAST(k.same_dow_mean AS float8), 'NaN') AS same_dow_mean,
       coalesce(CAST(k.recent7_mean AS float8), 'NaN') AS recent7_mean,
       coalesce(CAST(k.prior_mean AS float8), 'NaN') AS prior_mean,
       coalesce(CAST(k.recent7_mean / NULLIF(k.prior_mean, 0) AS float8), 'NaN') AS recent_vs_prior,
       coalesce(CAST(k.hist_zero_days AS float8), 'NaN') AS hist_zero_days,
       coalesce(CAST(k.hist_nonactual_share AS float8), 'NaN') AS hist_nonactual_share,
       coalesce(CAST(k.hist_null_share AS float8), 'NaN') AS hist_null_share,
       coalesce(CAST(k.hist_export_share AS float8), 'NaN') AS hist_export_share,
       coalesce(CAST(k.hist_mean_max_interval AS float8), 'NaN') AS hist_mean_max_interval,
       coalesce(CAST(k.zero_days_7 AS float8), 'NaN') AS zero_days_7,
       coalesce(CAST(k.hist_cv_median AS float8), 'NaN') AS hist_cv_median,
       coalesce(CAST(k.day_cv AS float8), 'NaN') AS day_cv,
       coalesce(CAST(k.day_cv / NULLIF(k.hist_cv_median, 0) AS float8), 'NaN') AS cv_ratio,
       coalesce(CAST(k.day_kwh AS float8), 'NaN') AS day_kwh,
       coalesce(CAST(k.day_rows AS float8), 'NaN') AS day_rows,
       coalesce(CAST(k.day_values AS float8), 'NaN') AS day_values,
       coalesce(CAST(k.day_nonactual AS float8), 'NaN') AS day_nonactual,
       coalesce(CAST(k.day_export_kwh / NULLIF(k.day_abs_kwh, 0) AS float8), 'NaN') AS day_export_share,
       coalesce(CAST(k.day_max_interval AS float8), 'NaN') AS day_max_interval,
       coalesce(CAST(k.day_kwh / NULLIF(k.hist_mean, 0) AS float8), 'NaN') AS day_vs_hist,
       coalesce(CAST(k.day_kwh / NULLIF(k.same_dow_mean, 0) AS float8), 'NaN') AS day_vs_same_dow,
       coalesce(CAST(k.day_max_interval / NULLIF(k.hist_mean_max_interval, 0) AS float8), 'NaN') AS day_max_vs_hist,
       coalesce(CAST(k.temp_day AS float8), 'NaN') AS temp_day,
       coalesce(CAST(k.temp_trailing AS float8), 'NaN') AS temp_trailing,
       coalesce(CAST(k.temp_day - k.temp_trailing AS float8), 'NaN') AS temp_anomaly,
       coalesce(CAST(k.exc30_total AS float8), 'NaN') AS exc30_total,
       coalesce(CAST(k.exc90_total AS float8), 'NaN') AS exc90_total,
       coalesce(CAST(k.exc30_gap AS float8), 'NaN') AS exc30_gap,
       coalesce(CAST(k.exc30_spike AS float8), 'NaN') AS exc30_spike,
       coalesce(CAST(k.exc30_high_usage AS float8), 'NaN') AS exc30_high_usage,
       coalesce(CAST(k.exc30_low_usage AS float8), 'NaN') AS exc30_low_usage,
       coalesce(CAST(k.exc30_zero_consumption AS float8), 'NaN') AS exc30_zero_consumption,
       coalesce(CAST(k.exc30_flatline AS float8), 'NaN') AS exc30_flatline,
       coalesce(CAST(k.exc30_reverse_flow AS float8), 'NaN') AS exc30_reverse_flow,
       coalesce(CAST(k.exc30_step_change AS float8), 'NaN') AS exc30_step_change,
       coalesce(CAST(k.exc90_gap AS float8), 'NaN') AS exc90_gap,
       coalesce(CAST(k.exc90_spike AS float8), 'NaN') AS exc90_spike,
       coalesce(CAST(k.exc90_high_usage AS float8), 'NaN') AS exc90_high_usage,
       coalesce(CAST(k.exc90_low_usage AS float8), 'NaN') AS exc90_low_usage,
       coalesce(CAST(k.exc90_zero_consumption AS float8), 'NaN') AS exc90_zero_consumption,
       coalesce(CAST(k.exc90_flatline AS float8), 'NaN') AS exc90_flatline,
       coalesce(CAST(k.exc90_reverse_flow AS float8), 'NaN') AS exc90_reverse_flow,
       coalesce(CAST(k.exc90_step_change AS float8), 'NaN') AS exc90_step_change,
       coalesce(CAST(k.exc14_gap AS float8), 'NaN') AS exc14_gap,
       coalesce(CAST(k.exc14_spike AS float8), 'NaN') AS exc14_spike,
       coalesce(CAST(k.exc14_high_usage AS float8), 'NaN') AS exc14_high_usage,
       coalesce(CAST(k.exc14_low_usage AS float8), 'NaN') AS exc14_low_usage,
       coalesce(CAST(k.exc14_zero_consumption AS float8), 'NaN') AS exc14_zero_consumption,
       coalesce(CAST(k.exc14_flatline AS float8), 'NaN') AS exc14_flatline,
       coalesce(CAST(k.exc14_reverse_flow AS float8), 'NaN') AS exc14_reverse_flow,
       coalesce(CAST(k.exc14_step_change AS float8), 'NaN') AS exc14_step_change,
       coalesce(CAST(k.gap_d1::int AS float8), 'NaN') AS gap_d1,
       coalesce(CAST(k.gap_d2::int AS float8), 'NaN') AS gap_d2,
       coalesce(CAST(k.gap_d3::int AS float8), 'NaN') AS gap_d3,
       coalesce(CAST(k.gap_d4::int AS float8), 'NaN') AS gap_d4,
       coalesce(CAST(greatest(k.n_total - 1, 0) AS float8), 'NaN') AS sameday_total,
       coalesce(CAST(k.n_gap AS float8), 'NaN') AS sameday_n_gap,
       coalesce(CAST(k.n_low AS float8), 'NaN') AS sameday_n_low,
       coalesce(CAST(k.n_high AS float8), 'NaN') AS sameday_n_high,
       coalesce(CAST(k.n_meter AS float8), 'NaN') AS sameday_n_meter,
       CAST(coalesce(d.n_rows, 0) AS float8) AS whole_day_rows,
       CAST(coalesce(d.n_values, 0) AS float8) AS whole_day_values,
       CAST(coalesce(d.n_distinct, 0) AS float8) AS whole_day_distinct,
       CAST(coalesce(d.n_nonactual, 0) AS float8) AS whole_day_nonactual,
       CAST(coalesce(d.n_zero, 0) AS float8) AS whole_day_zero,
       CAST(coalesce(d.n_negative, 0) AS float8) AS whole_day_negative,
       coalesce(CAST(d.kwh AS float8), 'NaN') AS whole_day_kwh,
       coalesce(CAST(d.max_interval AS float8), 'NaN') AS whole_day_max
FROM ctx_all k
LEFT JOIN raw_days d ON d.ctx_id = k.ctx_key AND d.day = k.ctx_read_date
