-- Read dates from :since, and before :before when given, that hold OPEN exceptions (no
-- resolution row, not in quarantine) and that no nightly run has ever started on: a night
-- the scheduler missed (it was down; catchup is off), a date left out of a backfill. Their
-- exceptions wait silently until the date is run. For the next run's summary (the days
-- before it) and the summary page (from its first day on, including dates after the latest
-- run). Only dates from the first read date this warehouse ran on successfully: what the
-- MDMS held before the system started is not a gap. "Started" means a run record
-- (start_run_record): an Airflow run that failed before it, or one still queued (a backfill
-- under way), counts as none. Dates whose runs failed are reported by their own failure;
-- dates with a successful run, by nightly_unscored_earlier.sql.
SELECT e.read_date, count(*)::int AS exceptions
FROM mdm.vee_exception AS e
WHERE e.read_date >= CAST(:since AS date)
  AND (CAST(:before AS date) IS NULL OR e.read_date < CAST(:before AS date))
  AND e.read_date >= (SELECT min(f.read_date) FROM vee.scoring_run AS f WHERE f.status = 'SUCCESS')
  AND e.status = 'OPEN'
  AND NOT EXISTS (SELECT 1 FROM vee.scoring_run AS s WHERE s.read_date = e.read_date)
  AND NOT EXISTS (SELECT 1 FROM vee.exception_resolution AS r WHERE r.exception_id = e.exception_id)
  AND NOT EXISTS (SELECT 1 FROM vee.quarantined_exception AS q WHERE q.exception_id = e.exception_id)
GROUP BY e.read_date
ORDER BY e.read_date;
