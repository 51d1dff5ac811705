-- A day settled under another SETTLE_DAYS (or left half-written by hand): rebuilt whole.
DELETE FROM vee.meter_daily WHERE day = :day
