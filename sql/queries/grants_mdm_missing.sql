-- The privileges on the MDMS's tables that the roles of migration vee/0040 lack: USAGE on
-- schema mdm and SELECT on its contract tables for all three, the contract's one write
-- (UPDATE of status, status_changed_at on mdm.vee_exception) for vee_scoring. One row per
-- missing privilege; none when the roles or the tables do not exist (nothing to grant yet).
-- :tables are the contract's table names.
WITH roles AS (
    SELECT rolname FROM pg_roles WHERE rolname IN ('vee_scoring', 'vee_training', 'vee_reader')
),
tables AS (
    SELECT t AS table_name, to_regclass('mdm.' || quote_ident(t)) AS oid
    FROM unnest(CAST(:tables AS text[])) AS t
)
SELECT r.rolname AS role, 'USAGE ON SCHEMA mdm' AS privilege
FROM roles r
WHERE to_regnamespace('mdm') IS NOT NULL
  AND NOT has_schema_privilege(r.rolname, 'mdm', 'USAGE')
UNION ALL
SELECT r.rolname, 'SELECT ON mdm.' || t.table_name
FROM roles r CROSS JOIN tables t
WHERE t.oid IS NOT NULL AND NOT has_table_privilege(r.rolname, t.oid, 'SELECT')
UNION ALL
SELECT r.rolname, 'UPDATE (' || c.col || ') ON mdm.vee_exception'
FROM roles r
CROSS JOIN unnest(ARRAY['status', 'status_changed_at']) AS c(col)
WHERE r.rolname = 'vee_scoring'
  AND to_regclass('mdm.vee_exception') IS NOT NULL
  AND NOT has_column_privilege(r.rolname, 'mdm.vee_exception', c.col, 'UPDATE')
ORDER BY 1, 2;
