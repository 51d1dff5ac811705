-- Features of each exception of the chunk (temp table vee_feature_exc, see
-- features_prepare.sql) that are its own: the rule's measures, its window's intervals, the
-- meter's analyst resolutions (all rules, and the exception's rule). vee_tasks/features.py
-- joins them to their context's row (features_context_rows.sql) by ctx_id. Parameters: :tz
-- (utility time zone), :res_days (resolution lookback), :rule_codes and :resolution_codes
-- (vocabularies, see the final SELECT).
-- Point in time at each exception's raised_at: its window's reads received at or before it,
-- analyst resolutions strictly before it. Every range predicate is on an index prefix:
-- interval_read (meter_id, interval_start), vee_exception (meter_id, raised_at),
-- analyst_resolution (exception_id).
WITH exc AS (
    SELECT * FROM vee_feature_exc
),
ctx AS (
    SELECT * FROM vee_feature_ctx
),
-- The intervals the rule looked at, as received by raised_at. A window spanning the whole
-- read date is that day's usage row, sent with the context (features_context_rows.sql);
-- any other window is read here.
-- Time zone arithmetic is ~0.3 us a call: each read date's local bounds once per date, and
-- the window's local start once per exception, not once per use.
read_days AS (
    SELECT d.read_date,
           (d.read_date::timestamp AT TIME ZONE :tz) AS day_start,
           ((d.read_date + 1)::timestamp AT TIME ZONE :tz) AS day_end
    FROM (SELECT DISTINCT read_date FROM vee_feature_ctx) AS d
),
ex_window AS (
    SELECT x.*, b.day_start, b.day_end,
           x.window_start AT TIME ZONE :tz AS window_start_local,
           (x.window_start = b.day_start AND x.window_end = b.day_end) IS TRUE AS whole_day
    FROM exc x
    LEFT JOIN read_days b ON b.read_date = x.read_date
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
        FROM (
            -- beyond +-1e12 kWh: no value, as in features_context_rows.sql (raw_days)
            SELECT ri.quality,
                   CASE WHEN abs(ri.value_kwh) > 1e12 AND abs(ri.value_kwh) < 'Infinity'
                        THEN NULL ELSE ri.value_kwh END AS value_kwh
            FROM mdm.interval_read ri
            WHERE ri.meter_id = x.meter_id
              AND ri.interval_start >= x.window_start
              AND ri.interval_start < x.window_end
              AND ri.received_at <= x.raised_at
            ORDER BY ri.interval_start  -- the same sums whichever plan (as in raw_days)
        ) r
    ) w
    WHERE NOT x.whole_day
),
-- Analyst resolutions of the meter's earlier exceptions, known strictly before raised_at:
-- found once per context (key range scans only: vee_exception by meter and time,
-- analyst_resolution by exception id), then counted for the context and for each of its
-- rules.
prior_res AS MATERIALIZED (
    SELECT c.ctx_id, c.read_date AS ctx_read_date, c.raised_at AS ctx_raised_at,
           p.rule_code, p.read_date, a.resolution_code, a.resolved_at, a.exception_id
    FROM ctx c
    CROSS JOIN LATERAL (
        SELECT p.exception_id, p.rule_code, p.read_date
        FROM mdm.vee_exception p
        WHERE p.meter_id = c.meter_id
          AND p.raised_at < c.raised_at
          AND p.raised_at >= c.raised_at - make_interval(days => CAST(:res_days AS integer))
        OFFSET 0
    ) p
    CROSS JOIN LATERAL (
        SELECT ar.resolution_code, ar.resolved_at, ar.exception_id
        FROM mdm.analyst_resolution ar
        WHERE ar.exception_id = p.exception_id AND ar.resolved_at < c.raised_at
        OFFSET 0
    ) a
),
res_any AS (
    SELECT r.ctx_id,
           count(*) AS res_total,
           count(*) FILTER (WHERE r.resolution_code = 'ACCEPT') AS res_accept,
           count(*) FILTER (WHERE r.resolution_code = 'ESTIMATE') AS res_estimate,
           count(*) FILTER (WHERE r.resolution_code = 'EDIT') AS res_edit,
           count(*) FILTER (WHERE r.resolution_code = 'REREAD') AS res_reread,
           count(*) FILTER (WHERE r.resolution_code = 'FIELD_ORDER') AS res_field_order,
           (array_agg(r.resolution_code ORDER BY r.resolved_at DESC, r.exception_id DESC))[1]
               AS last_resolution,
           extract(epoch FROM r.ctx_raised_at - max(r.resolved_at)) / 86400.0 AS days_since_resolution,
           r.ctx_read_date - max(r.read_date) FILTER (WHERE r.resolution_code = 'ACCEPT') AS ds_accept,
           r.ctx_read_date - max(r.read_date) FILTER (WHERE r.resolution_code = 'ESTIMATE') AS ds_estimate,
           r.ctx_read_date - max(r.read_date) FILTER (WHERE r.resolution_code = 'EDIT') AS ds_edit,
           r.ctx_read_date - max(r.read_date) FILTER (WHERE r.resolution_code = 'REREAD') AS ds_reread,
           r.ctx_read_date - max(r.read_date) FILTER (WHERE r.resolution_code = 'FIELD_ORDER') AS ds_field_order,
           r.ctx_read_date - max(r.read_date) FILTER (WHERE r.resolution_code = 'ACCEPT'
               AND r.rule_code IN ('LOW_USAGE', 'ZERO_CONSUMPTION')) AS ds_vacancy_accept
    FROM prior_res r
    GROUP BY r.ctx_id, r.ctx_read_date, r.ctx_raised_at
),
res_rule AS (
    SELECT r.ctx_id, r.rule_code,
           count(*) AS res_same_rule_total,
           (array_agg(r.resolution_code ORDER BY r.resolved_at DESC, r.exception_id DESC))[1]
               AS last_resolution_same_rule,
           r.ctx_read_date - max(r.read_date) FILTER (WHERE r.resolution_code = 'ACCEPT') AS ds_same_accept,
           r.ctx_read_date - max(r.read_date) FILTER (WHERE r.resolution_code = 'ESTIMATE') AS ds_same_estimate,
           r.ctx_read_date - max(r.read_date) FILTER (WHERE r.resolution_code = 'EDIT') AS ds_same_edit,
           r.ctx_read_date - max(r.read_date) FILTER (WHERE r.resolution_code = 'REREAD') AS ds_same_reread,
           r.ctx_read_date - max(r.read_date) FILTER (WHERE r.resolution_code = 'FIELD_ORDER') AS ds_same_field_order
    FROM prior_res r
    GROUP BY r.ctx_id, r.ctx_read_date, r.rule_code
)
-- One fixed-width row per exception for binary COPY (warehouse.copy_query_matrix): the id,
-- its context and whether its window spans the whole read date, then every column as a
-- non-null float8. NULL travels as NaN (the client fills both alike); a categorical as its
-- 1-based position in the vocabulary bound as an array (:rule_codes, :resolution_codes), 0
-- for a value outside it, -1 for NULL; the read date as days since 1970-01-01. No ORDER BY:
-- the client orders by id. Quotients of times stay in numeric (extract), as the models were
-- trained on: date_part's double precision is ~4x cheaper but rounds twice, 1 ulp off in a
-- quarter of the values with sub-second times. The weekday is an exact integer either way.
SELECT x.exception_id,
       CAST(x.ctx_id AS float8) AS ctx_id,
       CAST(x.whole_day::int AS float8) AS whole_day,
       CASE WHEN x.rule_code IS NULL THEN -1
            ELSE coalesce(array_position(CAST(:rule_codes AS text[]), x.rule_code), 0) END::float8
           AS rule_code,
       coalesce(CAST(x.read_date - DATE '1970-01-01' AS float8), 'NaN') AS read_date,
       coalesce(CAST(x.observed_value AS float8), 'NaN') AS observed_value,
       coalesce(CAST(x.expected_value AS float8), 'NaN') AS expected_value,
       coalesce(CAST(x.observed_value / NULLIF(x.expected_value, 0) AS float8), 'NaN') AS obs_exp_ratio,
       coalesce(CAST(extract(epoch FROM x.window_end - x.window_start) / 3600.0 AS float8), 'NaN') AS window_hours,
       coalesce(CAST(extract(hour FROM x.window_start_local) + extract(minute FROM x.window_start_local) / 60.0 AS float8), 'NaN') AS window_start_hour,
       coalesce(CAST(date_part('isodow', CAST(x.read_date AS timestamp)) AS float8), 'NaN') AS read_dow,
       coalesce(CAST((x.window_start = x.day_start OR x.window_end = x.day_end)::int AS float8), 'NaN') AS window_at_day_edge,
       coalesce(CAST(extract(epoch FROM x.raised_at - x.day_end) / 3600.0 AS float8), 'NaN') AS raise_lag_hours,
       coalesce(CAST(w.win_rows AS float8), 'NaN') AS win_rows,
       coalesce(CAST(w.win_values AS float8), 'NaN') AS win_values,
       coalesce(CAST(w.win_distinct AS float8), 'NaN') AS win_distinct,
       coalesce(CAST(w.win_nonactual AS float8), 'NaN') AS win_nonactual,
       coalesce(CAST(w.win_zero AS float8), 'NaN') AS win_zero,
       coalesce(CAST(w.win_negative AS float8), 'NaN') AS win_negative,
       coalesce(CAST(w.win_kwh AS float8), 'NaN') AS win_kwh,
       coalesce(CAST(w.win_max AS float8), 'NaN') AS win_max,
       CAST(coalesce(ra.res_total, 0) AS float8) AS res_total,
       CAST(coalesce(ra.res_accept, 0) AS float8) AS res_accept,
       CAST(coalesce(ra.res_estimate, 0) AS float8) AS res_estimate,
       CAST(coalesce(ra.res_edit, 0) AS float8) AS res_edit,
       CAST(coalesce(ra.res_reread, 0) AS float8) AS res_reread,
       CAST(coalesce(ra.res_field_order, 0) AS float8) AS res_field_order,
       CAST(coalesce(rr.res_same_rule_total, 0) AS float8) AS res_same_rule_total,
       CASE WHEN ra.last_resolution IS NULL THEN -1
            ELSE coalesce(array_position(CAST(:resolution_codes AS text[]), ra.last_resolution), 0) END::float8
           AS last_resolution,
       CASE WHEN rr.last_resolution_same_rule IS NULL THEN -1
            ELSE coalesce(array_position(CAST(:resolution_codes AS text[]), rr.last_resolution_same_rule), 0) END::float8
           AS last_resolution_same_rule,
       coalesce(CAST(ra.days_since_resolution AS float8), 'NaN') AS days_since_resolution,
       coalesce(CAST(ra.ds_accept AS float8), 'NaN') AS ds_accept,
       coalesce(CAST(ra.ds_estimate AS float8), 'NaN') AS ds_estimate,
       coalesce(CAST(ra.ds_edit AS float8), 'NaN') AS ds_edit,
       coalesce(CAST(ra.ds_reread AS float8), 'NaN') AS ds_reread,
       coalesce(CAST(ra.ds_field_order AS float8), 'NaN') AS ds_field_order,
       coalesce(CAST(rr.ds_same_accept AS float8), 'NaN') AS ds_same_accept,
       coalesce(CAST(rr.ds_same_estimate AS float8), 'NaN') AS ds_same_estimate,
       coalesce(CAST(rr.ds_same_edit AS float8), 'NaN') AS ds_same_edit,
       coalesce(CAST(rr.ds_same_reread AS float8), 'NaN') AS ds_same_reread,
       coalesce(CAST(rr.ds_same_field_order AS float8), 'NaN') AS ds_same_field_order,
       coalesce(CAST(ra.ds_vacancy_accept AS float8), 'NaN') AS ds_vacancy_accept
FROM ex_window x
LEFT JOIN win w ON w.exception_id = x.exception_id
LEFT JOIN res_any ra ON ra.ctx_id = x.ctx_id
LEFT JOIN res_rule rr ON rr.ctx_id = x.ctx_id AND rr.rule_code = x.rule_code
