-- Days in [:first_day, :last_day] without a complete rollup for their settle instant, oldest
-- first. :settle_days and :tz give each day's settled_at (see usage_rollup.py).
SELECT g.day::date AS day,
       ((g.day::date + 1 + CAST(:settle_days AS integer))::timestamp AT TIME ZONE :tz) AS settled_at
FROM generate_series(CAST(:first_day AS date), CAST(:last_day AS date), interval '1 day') AS g(day)
WHERE NOT EXISTS (
    SELECT 1 FROM vee.meter_daily_day d
    WHERE d.day = g.day::date
      AND d.settled_at = ((g.day::date + 1 + CAST(:settle_days AS integer))::timestamp AT TIME ZONE :tz)
)
ORDER BY 1
