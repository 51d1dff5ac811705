-- Whether any of the run's staged rows are left (1) or none (0).
SELECT count(*) FROM (SELECT 1 FROM vee.nightly_extract WHERE dag_run_id = :dag_run_id LIMIT 1) AS s;
