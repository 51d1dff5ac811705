-- Read dates from :since on (summary page), and from the first read date this warehouse
-- ran on successfully, that hold OPEN exceptions (no resolution row, not in quarantine) and that no
-- nightly run has started on: missed nights (the scheduler was down; catchup is off) and
-- dates left out of a backfill, including those after the latest run. See
-- nightly_unrun_earlier.sql.
SELECT e.read_date, count(*)::int AS exceptions
FROM mdm.vee_exception AS e
WHERE e.read_date >= CAST(:since AS date)
  AND e.read_date >= (SELECT min(f.read_date) FROM vee.scoring_run AS f WHERE f.status = 'SUCCESS')
  AND e.status = 'OPEN'
  AND NOT EXISTS (SELECT 1 FROM vee.scoring_run AS s WHERE s.read_date = e.read_date)
  AND NOT EXISTS (SELECT 1 FROM vee.exception_resolution AS r WHERE r.exception_id = e.exception_id)
  AND NOT EXISTS (SELECT 1 FROM vee.quarantined_exception AS q WHERE q.exception_id = e.exception_id)
GROUP BY e.read_date
ORDER BY e.read_date;
