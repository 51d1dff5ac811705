-- Undo the rollup from :day on, so that every bench starts where the nights before its
-- first read date left it.
DELETE FROM vee.meter_daily WHERE day >= :day;
DELETE FROM vee.meter_daily_day WHERE day >= :day;
