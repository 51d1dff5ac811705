-- Regions whose weather for the read date has not arrived (no row, or no temperature) and
-- that hold exceptions of that date a run decided: those were scored with the temperature
-- features unknown. The fleet's regions first (one scan of mdm.meter); the exceptions are
-- counted (LATERAL: once per such region, never planned first) only for a region without
-- weather, so a normal night counts nothing (a join planned the other way round read the
-- day's million exceptions on the bench: 2.4 s).
WITH missing AS MATERIALIZED (
    SELECT DISTINCT m.region FROM mdm.meter AS m
    EXCEPT
    SELECT w.region FROM mdm.weather_daily AS w
    WHERE w.day = :read_date AND w.mean_temp_c IS NOT NULL
)
SELECT mi.region, c.exceptions
FROM missing AS mi
CROSS JOIN LATERAL (
    SELECT count(*)::int AS exceptions
    FROM mdm.meter AS m
    JOIN mdm.vee_exception AS e ON e.meter_id = m.meter_id
    WHERE m.region = mi.region
      AND e.read_date = :read_date
      AND e.status IN ('AUTO_RESOLVED', 'PENDING_REVIEW')  -- decided by a run: scored without it
) AS c
WHERE c.exceptions > 0
ORDER BY c.exceptions DESC, mi.region;
