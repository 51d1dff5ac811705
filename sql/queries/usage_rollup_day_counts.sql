SELECT count(*) AS meters, coalesce(sum(n_rows), 0) AS reads FROM vee.meter_daily WHERE day = :day
