-- Undo the rollup of one day, so that every bench run rolls up the day a nightly run would.
DELETE FROM vee.meter_daily WHERE day = :day;
DELETE FROM vee.meter_daily_day WHERE day = :day;
