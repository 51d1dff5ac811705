-- Which of the contract's mdm tables (:tables, bare names) exist already: a warehouse whose
-- MDMS tables were made by someone else before `vee db upgrade --with-mdm` (see
-- vee_tasks/migrations.py, adopt_existing_mdm), and `vee db status`. Read from the catalog:
-- to_regclass('mdm.x') fails for a login without USAGE on schema mdm (a migrator the MDMS's
-- DBA gave none: outside probe, 2026-11-29). Tables, partitioned tables, views, materialized
-- views and foreign tables count.
SELECT t.name
FROM unnest(CAST(:tables AS text[])) AS t(name)
WHERE EXISTS (
    SELECT 1
    FROM pg_class AS c
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname = 'mdm'
      AND c.relname = t.name
      AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
)
ORDER BY t.name;
