-- Exceptions of the read dates before this run's, within :lookback_days, whose date has had
-- a successful run that did not decide them: still OPEN, with no resolution row and not in
-- quarantine. The MDMS raised them after that run had selected its rows (late reads, a late
-- VEE batch); only a rerun of their date scores them (the run for D scores exactly read
-- date D). A date no run has finished yet is a gap for a backfill, not counted here.
SELECT e.read_date, count(*)::int AS exceptions
FROM mdm.vee_exception AS e
WHERE e.read_date >= CAST(:read_date AS date) - CAST(:lookback_days AS integer)
  AND e.read_date < CAST(:read_date AS date)
  AND e.status = 'OPEN'
  AND EXISTS (SELECT 1 FROM vee.scoring_run AS s
              WHERE s.read_date = e.read_date AND s.status = 'SUCCESS')
  AND NOT EXISTS (SELECT 1 FROM vee.exception_resolution AS r WHERE r.exception_id = e.exception_id)
  AND NOT EXISTS (SELECT 1 FROM vee.quarantined_exception AS q WHERE q.exception_id = e.exception_id)
GROUP BY e.read_date
ORDER BY e.read_date;
