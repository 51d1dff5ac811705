-- Benchmark warehouse: :n earlier exceptions (ids 1..:n) on the :days days before
-- :read_date, resolved by analysts a day after they were raised, so that the exception- and
-- resolution-history features have something to count.
WITH src AS (
    SELECT p,
           'BM' || lpad((p * 2 % CAST(:meters AS integer))::text, 7, '0') AS meter_id,
           (ARRAY['GAP', 'SPIKE', 'HIGH_USAGE', 'LOW_USAGE', 'ZERO_CONSUMPTION', 'FLATLINE',
                  'REVERSE_FLOW', 'STEP_CHANGE'])[1 + p % 8] AS rule,
           CAST(:read_date AS date) - 1 - CAST(p % CAST(:days AS integer) AS integer) AS rd
    FROM generate_series(1, CAST(:n AS bigint)) p
), ins AS (
    INSERT INTO mdm.vee_exception
    SELECT p, meter_id, rule, rd,
           (rd::timestamp AT TIME ZONE :tz) + interval '8 hours',
           (rd::timestamp AT TIME ZONE :tz) + interval '10 hours',
           1 + p % 9, CASE WHEN p % 3 = 0 THEN NULL ELSE 5 END,
           rule || '/1',
           (rd::timestamp AT TIME ZONE :tz) + interval '26 hours',
           'ANALYST_RESOLVED',
           (rd::timestamp AT TIME ZONE :tz) + interval '50 hours'
    FROM src
    RETURNING exception_id, rule_code, status_changed_at
)
INSERT INTO mdm.analyst_resolution (exception_id, resolution_code, resolved_by, resolved_at, note)
SELECT exception_id,
       CASE rule_code
           WHEN 'GAP' THEN (ARRAY['ESTIMATE', 'REREAD'])[1 + exception_id % 2]
           WHEN 'SPIKE' THEN 'ESTIMATE'
           WHEN 'HIGH_USAGE' THEN 'ACCEPT'
           WHEN 'LOW_USAGE' THEN 'ACCEPT'
           WHEN 'ZERO_CONSUMPTION' THEN 'FIELD_ORDER'
           WHEN 'FLATLINE' THEN 'FIELD_ORDER'
           WHEN 'REVERSE_FLOW' THEN 'ACCEPT'
           ELSE 'EDIT'
       END,
       'analyst' || exception_id % 12,
       status_changed_at,
       NULL
FROM ins
