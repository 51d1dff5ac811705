-- Training labels: exceptions analysts resolved (never the system's own decisions) with the
-- resolution known before the run's cutoff (start of its logical date in the utility's
-- zone), within the lookback. Range predicate on analyst_resolution (resolved_at).
SELECT e.exception_id,
       e.meter_id,
       e.rule_code AS label_rule_code,
       e.read_date,
       e.raised_at,
       a.resolved_at,
       a.resolution_code
FROM mdm.analyst_resolution a
JOIN mdm.vee_exception e ON e.exception_id = a.exception_id
WHERE a.resolved_at < :cutoff
  AND a.resolved_at >= :since
  AND e.status = 'ANALYST_RESOLVED'
ORDER BY e.raised_at, e.exception_id
