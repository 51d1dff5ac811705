-- Benchmark warehouse: :n OPEN exceptions on :read_date, ids from :id_base, spread over
-- :meters meters, all raised together at 02:00 local the next day like an MDMS batch. A
-- meter's exceptions have consecutive ids (the MDMS validates a meter-day at once) and
-- distinct rules: exception n belongs to meter n * :meters / :n.
INSERT INTO mdm.vee_exception (exception_id, meter_id, rule_code, read_date, window_start,
                               window_end, observed_value, expected_value, rule_version,
                               raised_at, status, status_changed_at)
SELECT CAST(:id_base AS bigint) + n,
       'BM' || lpad(y.meter::text, 7, '0'),
       x.rule,
       CAST(:read_date AS date),
       CASE WHEN x.hourly THEN x.day_start + (n * 13 % 20) * interval '1 hour' ELSE x.day_start END,
       CASE WHEN x.hourly THEN x.day_start + (n * 13 % 20 + 1 + n % 4) * interval '1 hour'
            ELSE x.day_start + interval '1 day' END,
       CASE x.rule
           WHEN 'GAP' THEN 1 + n % 4
           WHEN 'SPIKE' THEN 3 + n % 20
           WHEN 'HIGH_USAGE' THEN 40 + n % 30
           WHEN 'LOW_USAGE' THEN 1 + n % 5
           WHEN 'ZERO_CONSUMPTION' THEN 0
           WHEN 'FLATLINE' THEN 6 + n % 10
           WHEN 'REVERSE_FLOW' THEN -(1 + n % 7)
           ELSE 2 + (n % 7) * 0.5
       END,
       CASE WHEN x.rule IN ('GAP', 'ZERO_CONSUMPTION', 'REVERSE_FLOW', 'FLATLINE') THEN NULL
            ELSE 10 + n % 13 END,
       x.rule || '/1',
       x.day_start + interval '26 hours',
       'OPEN',
       x.day_start + interval '26 hours'
FROM generate_series(0, CAST(:n AS bigint) - 1) n
CROSS JOIN LATERAL (
    SELECT m.meter,
           (ARRAY['GAP', 'SPIKE', 'HIGH_USAGE', 'LOW_USAGE', 'ZERO_CONSUMPTION', 'FLATLINE',
                  'REVERSE_FLOW', 'STEP_CHANGE'])[1 + (n + m.meter) % 8] AS rule,
           (CAST(:read_date AS date)::timestamp AT TIME ZONE :tz) AS day_start
    FROM (SELECT (n * CAST(:meters AS bigint) / CAST(:n AS bigint))::int AS meter) m
) y
CROSS JOIN LATERAL (
    SELECT y.meter, y.rule, y.day_start, y.rule IN ('GAP', 'SPIKE', 'FLATLINE', 'REVERSE_FLOW') AS hourly
) x
