-- Which of the contract's mdm tables (:tables, bare names) exist already: a warehouse whose
-- MDMS tables were made by someone else before `vee db upgrade --with-mdm` (see
-- vee_tasks/migrations.py, adopt_existing_mdm).
SELECT t.name
FROM unnest(CAST(:tables AS text[])) AS t(name)
WHERE to_regclass(format('mdm.%I', t.name)) IS NOT NULL
ORDER BY t.name;
