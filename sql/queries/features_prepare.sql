-- The chunk's exceptions (ids in temp table vee_feature_ids) with their usage context, and
-- the contexts, for features_context_rows.sql and features_exception_rows.sql: looked up
-- once per chunk, read by both. Temp tables, dropped by vee_tasks/features.py when done.
-- Exceptions of one meter-day raised together share their usage context, numbered ctx_id
-- (numbered in place, not joined back: the planner then knows there are as many rows as ids).
DROP TABLE IF EXISTS pg_temp.vee_feature_exc;
DROP TABLE IF EXISTS pg_temp.vee_feature_ctx;
CREATE TEMP TABLE vee_feature_exc AS
SELECT x.*,
       dense_rank() OVER (ORDER BY x.meter_id COLLATE "C", x.read_date, x.raised_at) AS ctx_id
FROM (
    -- LATERAL: one primary-key lookup per id. A merge join would walk vee_exception's key
    -- index from its first (oldest) id up to the day's ids: seconds on a large table.
    SELECT e.exception_id, e.meter_id, e.rule_code, e.read_date, e.window_start, e.window_end,
           e.observed_value, e.expected_value, e.raised_at
    FROM vee_feature_ids f
    CROSS JOIN LATERAL (
        SELECT * FROM mdm.vee_exception v WHERE v.exception_id = f.exception_id
        OFFSET 0  -- a planner fence: keeps the lookup from being flattened into a merge join
    ) e
) x;
CREATE TEMP TABLE vee_feature_ctx AS
SELECT DISTINCT ctx_id, meter_id, read_date, raised_at FROM vee_feature_exc;
