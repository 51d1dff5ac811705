-- Quarantine rows, under another read date, of exceptions this run extracted that the MDMS
-- has since moved off that date: they must not stay quarantined there while decided here. A
-- copy of the id still on that date (a warehouse without the contract's key) keeps its row.
-- A join, not IN: with a million staged ids the IN list outgrows work_mem and PostgreSQL
-- falls back to a linear search per quarantine row.
DELETE FROM vee.quarantined_exception AS q
USING vee.nightly_extract AS x
WHERE x.dag_run_id = :dag_run_id
  AND x.exception_id = q.exception_id
  AND q.read_date <> :read_date
  AND NOT EXISTS (SELECT 1
                  FROM mdm.vee_exception AS e
                  WHERE e.exception_id = q.exception_id
                    AND e.read_date = q.read_date);
