-- The privileges the roles of migration vee/0040 lack on the MDMS's tables: USAGE on
-- schema mdm and SELECT on its contract tables for all three, the contract's one write
-- (UPDATE of status, status_changed_at on mdm.vee_exception) for vee_scoring. One row per
-- missing privilege; none when the roles or the tables do not exist (nothing to grant yet).
-- :tables are the contract's table names. Objects are found in the catalog and checked by
-- oid: a name lookup (to_regclass, a privilege function given a name) fails for a login
-- without USAGE on schema mdm, as a migrator the MDMS's DBA gave none (outside probe,
-- 2026-11-29).
WITH roles AS (
    SELECT rolname FROM pg_roles WHERE rolname IN ('vee_scoring', 'vee_training', 'vee_reader')
),
mdm AS (
    SELECT oid FROM pg_namespace WHERE nspname = 'mdm'
),
tables AS (
    SELECT t AS table_name, c.oid
    FROM unnest(CAST(:tables AS text[])) AS t
    JOIN pg_class AS c ON c.relname = t AND c.relnamespace = (SELECT oid FROM mdm)
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
)
SELECT r.rolname AS role, 'USAGE ON SCHEMA mdm' AS privilege
FROM roles r CROSS JOIN mdm s
WHERE NOT has_schema_privilege(r.rolname, s.oid, 'USAGE')
UNION ALL
SELECT r.rolname, 'SELECT ON mdm.' || t.table_name
FROM roles r CROSS JOIN tables t
WHERE NOT has_table_privilege(r.rolname, t.oid, 'SELECT')
UNION ALL
SELECT r.rolname, 'UPDATE (' || c.col || ') ON mdm.vee_exception'
FROM roles r
CROSS JOIN unnest(ARRAY['status', 'status_changed_at']) AS c(col)
JOIN tables t ON t.table_name = 'vee_exception'
WHERE r.rolname = 'vee_scoring'
  AND NOT has_column_privilege(r.rolname, t.oid, c.col, 'UPDATE')
UNION ALL
-- and the function of migration vee/0058 that analyzes the staged rows (its grant needs the
-- role at upgrade time; roles made later get it from the next `vee db upgrade`)
SELECT r.rolname, 'EXECUTE ON FUNCTION vee.analyze_nightly_extract()'
FROM roles r
JOIN pg_proc AS p ON p.proname = 'analyze_nightly_extract' AND p.pronargs = 0
JOIN pg_namespace AS n ON n.oid = p.pronamespace AND n.nspname = 'vee'
WHERE r.rolname = 'vee_scoring'
  AND NOT has_function_privilege(r.rolname, p.oid, 'EXECUTE')
ORDER BY 1, 2;
