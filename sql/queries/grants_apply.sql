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
    obj record;
BEGIN
    IF (SELECT count(*) FROM pg_roles
        WHERE rolname IN ('vee_scoring', 'vee_training', 'vee_reader')) < 3 THEN
        RAISE NOTICE 'roles vee_scoring, vee_training, vee_reader missing: no grants made';
        RETURN;
    END IF;
    -- schema vee: this system's own tables and sequences (those of grants_missing.sql),
    -- one at a time: a table this login may not grant on (another login's) is named and
    -- skipped, not the end of every other grant
    BEGIN
        EXECUTE 'GRANT USAGE ON SCHEMA vee TO ' || everyone;
    EXCEPTION
        WHEN insufficient_privilege THEN
            RAISE NOTICE 'not allowed to grant on schema vee: its owner must run GRANT USAGE '
                'ON SCHEMA vee TO %', everyone;
    END;
    FOR obj IN
        SELECT format('%I.%I', 'vee', c.relname) AS name, c.relkind,
               c.relname IN ('schema_migration', 'warehouse_identity') AS read_only
        FROM pg_class AS c
        JOIN pg_namespace AS n ON n.oid = c.relnamespace AND n.nspname = 'vee'
        WHERE c.relkind IN ('r', 'p', 'S') AND c.relowner = n.nspowner
          AND NOT EXISTS (SELECT 1 FROM pg_depend AS d
                          WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                            AND d.deptype = 'e')
        ORDER BY 1
    LOOP
        BEGIN
            IF obj.relkind = 'S' THEN
                EXECUTE format('GRANT USAGE, SELECT, UPDATE ON SEQUENCE %s TO %s', obj.name, writers);
                EXECUTE format('GRANT SELECT ON SEQUENCE %s TO vee_reader', obj.name);
            ELSIF obj.read_only THEN
                -- the ledger and the warehouse's identity: the owner's to change, nobody else's
                EXECUTE format('GRANT SELECT ON TABLE %s TO %s', obj.name, everyone);
                EXECUTE format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON TABLE %s FROM %s',
                               obj.name, everyone);
            ELSE
                EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE %s TO %s',
                               obj.name, writers);
                EXECUTE format('GRANT SELECT ON TABLE %s TO vee_reader', obj.name);
                EXECUTE format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON TABLE %s FROM vee_reader',
                               obj.name);
            END IF;
        EXCEPTION
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'not allowed to grant on %: its owner must run `vee db upgrade`',
                    obj.name;
        END;
    END LOOP;
    -- tables and sequences this login's later migrations create
    EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA vee GRANT SELECT, INSERT, UPDATE, DELETE '
            'ON TABLES TO ' || writers;
    EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA vee GRANT USAGE, SELECT, UPDATE '
            'ON SEQUENCES TO ' || writers;
    EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA vee GRANT SELECT ON TABLES TO vee_reader';
    EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA vee GRANT SELECT ON SEQUENCES TO vee_reader';
    -- temp tables; a login that does not own the database is warned, not refused: then the
    -- DBA's lines in docs/security.md, which `vee db status` names. Not CONNECT: 0040 grants
    -- it once, and a DBA isolating warehouses revokes it from the group roles on purpose.
    BEGIN
        EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO ' || writers, current_database());
    EXCEPTION
        WHEN insufficient_privilege THEN
            RAISE NOTICE 'not allowed to grant on database %: its owner must run GRANT '
                'TEMPORARY ON DATABASE % TO %', current_database(), current_database(), writers;
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
