SELECT 1 FROM vee.meter_daily_day WHERE day = :day AND settled_at = :settled_at
