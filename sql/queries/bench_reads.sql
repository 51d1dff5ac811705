-- Benchmark warehouse: hourly reads of meters [:lo, :hi) for :hours hours from :first_start
-- (local midnight of the first history day; the bench picks dates without a DST change, so
-- hour k of the series is local hour k % 24). Mostly actual reads with a daily shape and
-- per-meter noise, solar export on DER meters at midday, a few estimated and null intervals.
-- Received two hours after the interval, i.e. before the exceptions are raised. Per-row work
-- is integer arithmetic and an array lookup: this statement writes ~10^8 rows.
INSERT INTO mdm.interval_read (meter_id, interval_start, value_kwh, quality, received_at)
SELECT m.meter_id,
       CAST(:first_start AS timestamptz) + k * interval '1 hour',
       CASE
           WHEN (m.i * 7 + k) % 97 = 0 THEN NULL
           WHEN m.der AND k % 24 BETWEEN 11 AND 14 THEN -0.4 * m.base
           ELSE m.base * ((ARRAY[0.42, 0.36, 0.33, 0.31, 0.32, 0.38, 0.55, 0.78, 0.86, 0.74,
                                 0.66, 0.62, 0.61, 0.60, 0.62, 0.68, 0.82, 1.00, 1.10, 1.06,
                                 0.96, 0.84, 0.68, 0.52])[k % 24 + 1]
                          + ((m.i * 31 + k * 17) % 100) * 0.0025)
       END,
       CASE WHEN (m.i * 7 + k) % 97 = 0 THEN 'N' WHEN (m.i + k) % 211 = 0 THEN 'E' ELSE 'A' END,
       CAST(:first_start AS timestamptz) + (k + 2) * interval '1 hour'
FROM (
    SELECT i, 'BM' || lpad(i::text, 7, '0') AS meter_id, i % 10 = 0 AS der,
           CASE WHEN i % 100 < 85 THEN 0.3 + (i * 7919 % 1000) / 800.0
                WHEN i % 100 < 97 THEN 4 + (i * 7919 % 1000) / 60.0
                ELSE 0.5 + (i * 7919 % 1000) / 500.0 END::float8 AS base
    FROM generate_series(CAST(:lo AS integer), CAST(:hi AS integer) - 1) i
) m
CROSS JOIN generate_series(0, CAST(:hours AS integer) - 1) k
