-- Benchmark warehouse: daily mean temperature for regions R0..R7 over [:first_day, :last_day].
INSERT INTO mdm.weather_daily (region, day, mean_temp_c)
SELECT 'R' || r, d::date, -6 + r * 0.7 + 4 * sin(extract(doy FROM d) / 7.0)
FROM generate_series(0, 7) r
CROSS JOIN generate_series(CAST(:first_day AS date), CAST(:last_day AS date), interval '1 day') d
