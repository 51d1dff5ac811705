ANALYZE mdm.meter, mdm.weather_daily, mdm.interval_read, mdm.vee_exception, mdm.analyst_resolution
