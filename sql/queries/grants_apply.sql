-- The grants of migration vee/0040, again, wherever grants_missing.sql finds them missing
-- or exceeded: on schema vee for roles a DBA made after the first upgrade (0040 ran once,
-- without them, outside review 2026-11-29) and for tables a later migration's login did not
-- cover by default privileges; writes on the ledger and the warehouse's identity taken back
-- (a rerun of 0040's grants on all tables gave them back); on the MDMS's schema for mdm
-- tables that came after it (an upgrade without `--with-mdm`, then one with it; an MDMS
-- that created its tables later). Idempotent. Skipped with a NOTICE when the roles are
-- absent, or when this login may not grant (the owner must then run the GRANTs that
-- `vee db status` prints).
DO $$
DECLARE
    everyone text := 'vee_scoring, vee_training, vee_reader';
    writers text := 'vee_scoring, vee_training';
BEGIN
    IF (SELECT count(*) FROM pg_roles
        WHERE rolname IN ('vee_scoring', 'vee_training', 'vee_reader')) < 3 THEN
        RAISE NOTICE 'roles vee_scoring, vee_training, vee_reader missing: no grants made';
        RETURN;
    END IF;
    -- schema vee: this system's own tables (this login owns them when it ran the migrations)
    BEGIN
        EXECUTE 'GRANT USAGE ON SCHEMA vee TO ' || everyone;
        EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA vee TO ' || writers;
        EXECUTE 'GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA vee TO ' || writers;
        EXECUTE 'GRANT SELECT ON ALL TABLES IN SCHEMA vee TO vee_reader';
        EXECUTE 'GRANT SELECT ON ALL SEQUENCES IN SCHEMA vee TO vee_reader';
        EXECUTE 'REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON vee.schema_migration FROM ' || writers;
        IF to_regclass('vee.warehouse_identity') IS NOT NULL THEN
            EXECUTE 'REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON vee.warehouse_identity FROM '
                    || writers;
        END IF;
        -- tables and sequences this login's later migrations create
        EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA vee GRANT SELECT, INSERT, UPDATE, DELETE '
                'ON TABLES TO ' || writers;
        EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA vee GRANT USAGE, SELECT, UPDATE '
                'ON SEQUENCES TO ' || writers;
        EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA vee GRANT SELECT ON TABLES TO vee_reader';
        EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA vee GRANT SELECT ON SEQUENCES TO vee_reader';
        -- a login that does not own the database is warned, not refused: then the DBA's
        -- lines in docs/security.md, which `vee db status` names
        EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO ' || writers, current_database());
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO vee_reader', current_database());
    EXCEPTION
        WHEN insufficient_privilege THEN
            RAISE NOTICE 'not allowed to grant on schema vee: its owner (the login that ran '
                'the migrations) must run `vee db upgrade`';
    END;
    -- the function of migration vee/0058 (this login owns it when it ran the migrations)
    IF to_regprocedure('vee.analyze_nightly_extract()') IS NOT NULL THEN
        BEGIN
            EXECUTE 'GRANT EXECUTE ON FUNCTION vee.analyze_nightly_extract() TO vee_scoring';
        EXCEPTION
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'not allowed to grant on vee.analyze_nightly_extract(): its owner '
                    'must run GRANT EXECUTE ON FUNCTION vee.analyze_nightly_extract() TO vee_scoring';
        END;
    END IF;
    IF to_regnamespace('mdm') IS NULL THEN
        RETURN;
    END IF;
    BEGIN
        EXECUTE 'GRANT USAGE ON SCHEMA mdm TO ' || everyone;
        EXECUTE 'GRANT SELECT ON ALL TABLES IN SCHEMA mdm TO ' || everyone;
        IF to_regclass('mdm.vee_exception') IS NOT NULL THEN
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
