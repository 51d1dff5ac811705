-- Least privilege: three NOLOGIN group roles; an operator's login user is granted one of
-- them (docs/security.md). Roles are cluster-wide, so every step is idempotent and tolerates
-- a concurrent upgrade of another database on the same server, and a migrator that may not
-- create roles or grant on the MDMS's tables (then a NOTICE says what a DBA must run).
--   vee_scoring  : read mdm; UPDATE (status, status_changed_at) only on mdm.vee_exception;
--                  read/write vee tables and sequences; temp tables in this database.
--   vee_training : read mdm; read/write vee tables and sequences; temp tables.
--   vee_reader   : read mdm and vee (reports, analysts).
-- Nobody but the owner (the migrator) may create, alter or drop objects, or write
-- vee.schema_migration.

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['vee_scoring', 'vee_training', 'vee_reader'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION
                WHEN duplicate_object OR unique_violation THEN
                    NULL;  -- created meanwhile by a concurrent upgrade of another database
                WHEN insufficient_privilege THEN
                    RAISE NOTICE 'cannot create role %: a DBA must run CREATE ROLE % NOLOGIN', r, r;
            END;
        END IF;
    END LOOP;
END
$$;

DO $$
DECLARE
    have_scoring  boolean := EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'vee_scoring');
    have_training boolean := EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'vee_training');
    have_reader   boolean := EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'vee_reader');
    writers text;
    everyone text;
BEGIN
    IF NOT (have_scoring AND have_training AND have_reader) THEN
        RAISE NOTICE 'roles vee_scoring, vee_training, vee_reader missing: no grants made';
        RETURN;
    END IF;
    writers := 'vee_scoring, vee_training';
    everyone := 'vee_scoring, vee_training, vee_reader';

    -- Schema vee: this system's own tables.
    EXECUTE 'REVOKE CREATE ON SCHEMA vee FROM PUBLIC';
    EXECUTE 'GRANT USAGE ON SCHEMA vee TO ' || everyone;
    EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA vee TO ' || writers;
    EXECUTE 'GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA vee TO ' || writers;
    EXECUTE 'GRANT SELECT ON ALL TABLES IN SCHEMA vee TO vee_reader';
    EXECUTE 'GRANT SELECT ON ALL SEQUENCES IN SCHEMA vee TO vee_reader';
    -- The migration ledger is the migrator's alone.
    EXECUTE 'REVOKE INSERT, UPDATE, DELETE ON vee.schema_migration FROM ' || writers;
    -- Tables and sequences later migrations create (as this same migrator) are covered too.
    EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA vee GRANT SELECT, INSERT, UPDATE, DELETE '
            'ON TABLES TO ' || writers;
    EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA vee GRANT USAGE, SELECT, UPDATE '
            'ON SEQUENCES TO ' || writers;
    EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA vee GRANT SELECT ON TABLES TO vee_reader';
    EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA vee GRANT SELECT ON SEQUENCES TO vee_reader';

    -- Temporary tables (feature id lists, staging for COPY) and connecting.
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO ' || writers, current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO vee_reader', current_database());

    -- Schema mdm: the MDMS's tables (owned by the MDMS in production, by the migrator in
    -- dev/test/demo warehouses). Skipped with a NOTICE when absent or not ours to grant.
    IF to_regnamespace('mdm') IS NULL THEN
        RAISE NOTICE 'schema mdm absent: no grants on it (rerun of the grants needed later)';
        RETURN;
    END IF;
    BEGIN
        EXECUTE 'GRANT USAGE ON SCHEMA mdm TO ' || everyone;
        EXECUTE 'GRANT SELECT ON ALL TABLES IN SCHEMA mdm TO ' || everyone;
        IF to_regclass('mdm.vee_exception') IS NOT NULL THEN
            -- The only write into mdm the contract allows (column-level privilege).
            EXECUTE 'GRANT UPDATE (status, status_changed_at) ON mdm.vee_exception TO vee_scoring';
        END IF;
        EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA mdm GRANT SELECT ON TABLES TO ' || everyone;
    EXCEPTION
        WHEN insufficient_privilege THEN
            RAISE NOTICE 'not allowed to grant on schema mdm: the MDMS owner must run '
                'GRANT USAGE ON SCHEMA mdm TO %; GRANT SELECT ON ALL TABLES IN SCHEMA mdm TO %; '
                'GRANT UPDATE (status, status_changed_at) ON mdm.vee_exception TO vee_scoring',
                everyone, everyone;
    END;
END
$$;
