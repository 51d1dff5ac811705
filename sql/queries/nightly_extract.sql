-- Stage the read date's exceptions this system may decide (never ANALYST_RESOLVED), with the
-- shard of their meter (a hash, so a meter's exceptions land in one shard; computed once per
-- run and stored, so it need not be stable across PostgreSQL versions),
-- whether the meter is known to mdm.meter and when it was installed.
INSERT INTO vee.nightly_extract (
    dag_run_id, stage_row, shard, exception_id, meter_id, rule_code, read_date,
    window_start, window_end, observed_value, expected_value, rule_version, raised_at,
    status, status_changed_at, meter_known, meter_installed_on, id_copies
)
SELECT :dag_run_id,
       nextval('pg_temp.nightly_stage_row'),
       mod(mod(hashtextextended(coalesce(e.meter_id, ''), 0), CAST(:shard_count AS int))
           + CAST(:shard_count AS int), CAST(:shard_count AS int)),
       e.exception_id, e.meter_id, e.rule_code, e.read_date,
       e.window_start, e.window_end, e.observed_value, e.expected_value, e.rule_version,
       e.raised_at, e.status, e.status_changed_at,
       m.meter_id IS NOT NULL,
       m.installed_on,
       coalesce(d.copies, 1)
FROM mdm.vee_exception AS e
-- a join, not a probe per row; grouped, it keeps one row per exception even in a warehouse
-- whose mdm.meter does not enforce its key (then the earliest install date)
LEFT JOIN (
    SELECT meter_id, min(installed_on) AS installed_on FROM mdm.meter GROUP BY meter_id
) AS m ON m.meter_id = e.meter_id
-- ids held by more than one row anywhere in the table; only counted when the warehouse does
-- not enforce the contract's key (:check_duplicates), else this is an empty set
LEFT JOIN (
    SELECT x.exception_id, count(*)::int AS copies
    FROM mdm.vee_exception AS x
    WHERE CAST(:check_duplicates AS boolean)
    GROUP BY x.exception_id
    HAVING count(*) > 1
) AS d ON d.exception_id = e.exception_id
WHERE e.read_date = :read_date
  AND e.status IN ('OPEN', 'AUTO_RESOLVED', 'PENDING_REVIEW');
