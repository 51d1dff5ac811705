-- `vee simulate --append`: weather rows that already exist are not loaded again.
SELECT region, day FROM mdm.weather_daily WHERE day BETWEEN :first_day AND :last_day
