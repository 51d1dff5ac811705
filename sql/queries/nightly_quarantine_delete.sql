-- A rerun replaces the quarantine rows of the exceptions it extracted, whatever read date
-- they were quarantined under (the MDMS may have moved an exception to another read date:
-- it must not stay quarantined there while scored here), and this read date's rows without
-- an id, which only a run of this date can have produced.
DELETE FROM vee.quarantined_exception AS q
WHERE (q.read_date = :read_date AND q.exception_id IS NULL)
   OR q.exception_id IN (SELECT x.exception_id
                         FROM vee.nightly_extract AS x
                         WHERE x.dag_run_id = :dag_run_id
                           AND x.exception_id IS NOT NULL);
