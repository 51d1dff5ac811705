-- One writer per day: concurrent runs (backfills, a rerun) wait here, then see the day done.
SELECT pg_advisory_xact_lock(hashtext('vee.meter_daily'), CAST(:day AS date) - DATE '2000-01-01')
