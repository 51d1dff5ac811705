-- `vee simulate` (replace mode): empty the MDMS tables in one statement, keys and all.
TRUNCATE mdm.analyst_resolution, mdm.vee_exception, mdm.interval_read, mdm.weather_daily, mdm.meter
