-- Quarantine rows, under another read date, of exceptions this run extracted that the MDMS
-- has since moved off that date: they must not stay quarantined there while decided here. A
-- copy of the id still on that date (a warehouse without the contract's key) keeps its row.
-- Run with nested loops off (vee_tasks/scoring/steps.py): nothing indexes the staged rows by
-- exception_id, so a nested loop reads the staged rows once per quarantine row (16 minutes
-- for 20,000 rows against a million staged, measured through the index the staging table
-- had until migration vee/0055); as a hash join it took 0.9 s with 120,000 quarantine rows. The NOT EXISTS names x, not q, so it
-- runs per joined row (a primary-key probe), not per quarantine row; OFFSET 0 keeps it a
-- probe rather than an anti-join that would read all of mdm.vee_exception.
DELETE FROM vee.quarantined_exception AS q
USING vee.nightly_extract AS x
WHERE x.dag_run_id = :dag_run_id
  AND x.exception_id = q.exception_id
  AND q.read_date <> :read_date
  AND NOT EXISTS (SELECT 1
                  FROM mdm.vee_exception AS e
                  WHERE e.exception_id = x.exception_id
                    AND e.read_date = q.read_date
                  OFFSET 0);
