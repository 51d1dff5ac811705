-- Where the privileges of migration vee/0040's roles differ from what docs/security.md sets:
-- one row per privilege a role lacks (excess false) or must not have (excess true); none
-- unless all three roles exist (grants_apply.sql grants to all three or none).
--   this database : TEMPORARY for the writers (feature id lists, staging for COPY; a
--                   hardened cluster revokes it from PUBLIC). Not CONNECT: a DBA isolating
--                   warehouses on one server revokes it from the group roles on purpose
--                   (docs/security.md), and 0040 grants it once.
--   schema vee    : USAGE for all three; on each table of this system (owned by the
--                   schema's owner, no extension's) SELECT for all three and INSERT,
--                   UPDATE, DELETE for the writers, but on the migration ledger and the
--                   warehouse's identity (migrations 0040, 0054), which nobody but the
--                   owner may change, and no write at all for vee_reader; USAGE on its
--                   sequences for the writers
--   schema mdm    : USAGE and SELECT on the contract tables for all three, the contract's
--                   one write (UPDATE of status, status_changed_at on mdm.vee_exception)
--                   for vee_scoring
--   vee.analyze_nightly_extract() (migration 0058): EXECUTE for vee_scoring
-- Roles made after the first upgrade got nothing on schema vee (0040 ran once, without
-- them) and `vee db status` said ready (outside review, 2026-11-29). :tables are the
-- contract's mdm table names. Objects are found in the catalog and checked by oid: a name
-- lookup (to_regclass, a privilege function given a name) fails for a login without USAGE
-- on schema mdm, as a migrator the MDMS's DBA gave none (outside probe, 2026-11-29).
WITH roles AS (
    SELECT rolname, rolname IN ('vee_scoring', 'vee_training') AS writer
    FROM pg_roles WHERE rolname IN ('vee_scoring', 'vee_training', 'vee_reader')
      AND (SELECT count(*) FROM pg_roles
           WHERE rolname IN ('vee_scoring', 'vee_training', 'vee_reader')) = 3
),
this_database AS (
    SELECT oid, quote_ident(datname) AS name FROM pg_database WHERE datname = current_database()
),
mdm AS (
    SELECT oid FROM pg_namespace WHERE nspname = 'mdm'
),
vee AS (
    SELECT oid, nspowner FROM pg_namespace WHERE nspname = 'vee'
),
tables AS (
    SELECT t AS table_name, c.oid
    FROM unnest(CAST(:tables AS text[])) AS t
    JOIN pg_class AS c ON c.relname = t AND c.relnamespace = (SELECT oid FROM mdm)
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
),
-- this system's tables and sequences: the schema owner's (a DBA's copy made as another
-- login is not one), no extension's
vee_objects AS (
    SELECT format('%I.%I', 'vee', c.relname) AS name, c.oid, c.relkind,
           c.relname IN ('schema_migration', 'warehouse_identity') AS read_only
    FROM pg_class AS c
    JOIN vee ON c.relnamespace = vee.oid AND c.relowner = vee.nspowner
    WHERE c.relkind IN ('r', 'p', 'S')
      AND NOT EXISTS (SELECT 1 FROM pg_depend AS d
                      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                        AND d.deptype = 'e')
),
vee_tables AS (
    SELECT name AS table_name, oid, read_only FROM vee_objects WHERE relkind IN ('r', 'p')
),
vee_sequences AS (
    SELECT name AS sequence_name, oid FROM vee_objects WHERE relkind = 'S'
),
writes AS (
    SELECT unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) AS privilege
)
SELECT r.rolname AS role, 'TEMPORARY ON DATABASE ' || d.name AS privilege, false AS excess
FROM roles r CROSS JOIN this_database d
WHERE r.writer AND NOT has_database_privilege(r.rolname, d.oid, 'TEMPORARY')
UNION ALL
SELECT r.rolname, 'USAGE ON SCHEMA vee', false
FROM roles r CROSS JOIN vee s
WHERE NOT has_schema_privilege(r.rolname, s.oid, 'USAGE')
UNION ALL
SELECT r.rolname, 'SELECT ON ' || t.table_name, false
FROM roles r CROSS JOIN vee_tables t
WHERE NOT has_table_privilege(r.rolname, t.oid, 'SELECT')
UNION ALL
SELECT r.rolname, w.privilege || ' ON ' || t.table_name, false
FROM roles r CROSS JOIN vee_tables t CROSS JOIN writes w
WHERE r.writer AND NOT t.read_only AND w.privilege <> 'TRUNCATE'
  AND NOT has_table_privilege(r.rolname, t.oid, w.privilege)
UNION ALL
SELECT r.rolname, w.privilege || ' ON ' || t.table_name, true
FROM roles r CROSS JOIN vee_tables t CROSS JOIN writes w
WHERE (t.read_only OR NOT r.writer)
  AND has_table_privilege(r.rolname, t.oid, w.privilege)
UNION ALL
SELECT r.rolname, 'USAGE ON SEQUENCE ' || q.sequence_name, false
FROM roles r CROSS JOIN vee_sequences q
WHERE r.writer AND NOT has_sequence_privilege(r.rolname, q.oid, 'USAGE')
UNION ALL
SELECT r.rolname, 'USAGE ON SCHEMA mdm', false
FROM roles r CROSS JOIN mdm s
WHERE NOT has_schema_privilege(r.rolname, s.oid, 'USAGE')
UNION ALL
SELECT r.rolname, 'SELECT ON mdm.' || t.table_name, false
FROM roles r CROSS JOIN tables t
WHERE NOT has_table_privilege(r.rolname, t.oid, 'SELECT')
UNION ALL
SELECT r.rolname, 'UPDATE (' || c.col || ') ON mdm.vee_exception', false
FROM roles r
CROSS JOIN unnest(ARRAY['status', 'status_changed_at']) AS c(col)
JOIN tables t ON t.table_name = 'vee_exception'
WHERE r.rolname = 'vee_scoring'
  AND NOT has_column_privilege(r.rolname, t.oid, c.col, 'UPDATE')
UNION ALL
-- the function of migration vee/0058 that analyzes the staged rows (its grant needs the
-- role at upgrade time; roles made later get it from the next `vee db upgrade`)
SELECT r.rolname, 'EXECUTE ON FUNCTION vee.analyze_nightly_extract()', false
FROM roles r
JOIN pg_proc AS p ON p.proname = 'analyze_nightly_extract' AND p.pronargs = 0
JOIN pg_namespace AS n ON n.oid = p.pronamespace AND n.nspname = 'vee'
WHERE r.rolname = 'vee_scoring'
  AND NOT has_function_privilege(r.rolname, p.oid, 'EXECUTE')
ORDER BY 3, 1, 2;
