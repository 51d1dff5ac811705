-- The demo's summary: the read date's resolutions by recommended code and decision.
SELECT predicted_resolution, decision, count(*) AS n
FROM vee.exception_resolution
WHERE read_date = :read_date
GROUP BY 1, 2
ORDER BY 1, 2;
