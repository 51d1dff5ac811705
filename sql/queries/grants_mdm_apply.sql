-- The grants of migration vee/0040 on the MDMS's schema, again: for mdm tables that came
-- after it (an upgrade without `--with-mdm`, then one with it; an MDMS that created its
-- tables later). Idempotent. Skipped with a NOTICE when the roles or schema mdm are absent,
-- or when this login may not grant on them (the MDMS owner must then run the GRANTs).
DO $$
DECLARE
    everyone text := 'vee_scoring, vee_training, vee_reader';
BEGIN
    IF (SELECT count(*) FROM pg_roles
        WHERE rolname IN ('vee_scoring', 'vee_training', 'vee_reader')) < 3 THEN
        RAISE NOTICE 'roles vee_scoring, vee_training, vee_reader missing: no grants on mdm made';
        RETURN;
    END IF;
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
