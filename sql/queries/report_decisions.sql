-- Scored exceptions per read date and model version, with how many were auto-applied.
SELECT read_date,
       model_name,
       model_version,
       count(*) AS scored,
       count(*) FILTER (WHERE decision = 'AUTO_APPLY') AS auto_applied
FROM vee.exception_resolution
WHERE read_date BETWEEN :since AND :until
GROUP BY read_date, model_name, model_version
ORDER BY read_date, model_name, model_version;
