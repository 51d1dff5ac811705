-- The nightly run's statistics of its staged rows, for a login that owns nothing. Before
-- PostgreSQL 17's MAINTAIN privilege only a table's owner may ANALYZE it: the tasks' login
-- (vee_scoring, least privilege: docs/security.md) got a WARNING and no statistics, and the
-- validation and shard queries then planned the day's staged rows (a million at a large
-- utility) on whatever autovacuum had last seen (outside review, 2026-11-29). This function
-- runs as its owner, the migrator who owns vee.nightly_extract, and does that one thing.
CREATE OR REPLACE FUNCTION vee.analyze_nightly_extract() RETURNS void
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    ANALYZE vee.nightly_extract;
END
$$;

REVOKE ALL ON FUNCTION vee.analyze_nightly_extract() FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'vee_scoring') THEN
        GRANT EXECUTE ON FUNCTION vee.analyze_nightly_extract() TO vee_scoring;
    ELSE
        RAISE NOTICE 'role vee_scoring missing: a DBA must run GRANT EXECUTE ON FUNCTION '
                     'vee.analyze_nightly_extract() TO vee_scoring';
    END IF;
END
$$;
