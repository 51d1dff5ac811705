-- The auto-apply audit (vee.exception_resolution.audit): confident decisions sent to the
-- analysts instead, and of those the analysts have resolved, how many they resolved as the
-- model predicted: the live precision of auto-apply, measured on decisions no one saw applied.
SELECT count(*) AS audited,
       count(a.exception_id) AS resolved,
       count(a.exception_id) FILTER (WHERE a.resolution_code = r.predicted_resolution) AS agreed
FROM vee.exception_resolution AS r
LEFT JOIN mdm.analyst_resolution AS a ON a.exception_id = r.exception_id
WHERE r.audit
  AND r.read_date BETWEEN :since AND :until;
