-- Regions whose weather for the read date has not arrived (no row, or no temperature) and
-- that hold meters with exceptions of that date: their exceptions were scored with the
-- temperature features unknown. The regions of the fleet first (one scan of mdm.meter), the
-- exceptions counted only for a region without weather: nothing to count on a normal night.
WITH missing AS (
    SELECT DISTINCT m.region FROM mdm.meter AS m
    EXCEPT
    SELECT w.region FROM mdm.weather_daily AS w
    WHERE w.day = :read_date AND w.mean_temp_c IS NOT NULL
)
SELECT mi.region, count(*)::int AS exceptions
FROM missing AS mi
JOIN mdm.meter AS m ON m.region = mi.region
JOIN mdm.vee_exception AS e ON e.meter_id = m.meter_id AND e.read_date = :read_date
    AND e.status IN ('AUTO_RESOLVED', 'PENDING_REVIEW')  -- decided by a run: scored without it
GROUP BY mi.region
ORDER BY exceptions DESC, mi.region;
