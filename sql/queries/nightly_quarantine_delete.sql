-- A rerun replaces this read date's quarantine rows for the exceptions it extracted (and the
-- rows without an id, which only a run of this date can have produced). One index range of
-- (read_date, exception_id); the other dates' rows are nightly_quarantine_delete_moved.sql.
DELETE FROM vee.quarantined_exception AS q
WHERE q.read_date = :read_date
  AND (q.exception_id IS NULL
       OR q.exception_id IN (SELECT x.exception_id
                             FROM vee.nightly_extract AS x
                             WHERE x.dag_run_id = :dag_run_id
                               AND x.exception_id IS NOT NULL));
