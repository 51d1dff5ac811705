-- Optional hardening for the MDMS's DBA: the database itself refuses the status changes
-- this system's write-back never makes. Run once per warehouse as the owner of
-- mdm.vee_exception, after the roles of migration vee/0040 exist:
--   psql "$WAREHOUSE_URL" -v ON_ERROR_STOP=1 -f sql/optional/mdm_status_guard.sql
-- Why: the column privilege of vee_scoring lets its logins move a status and nothing else
-- of an MDMS row, but a privilege cannot say from which status to which. The write-back
-- filters on the decidable statuses (docs/nightly-scoring.md); this trigger makes the
-- server enforce it too, for logins in vee_scoring that are not superusers (the MDMS's own
-- logins, and superusers, keep every right they had):
--   a row that is not OPEN, AUTO_RESOLVED or PENDING_REVIEW (an analyst's) keeps its status;
--   no other status than those three is set (ANALYST_RESOLVED is the analysts').
-- Cost: its condition only, no function call, for the rows the write-back moves: a million
-- status updates took 3.9 s with it, 3.8 s without (2026-11-29, PostgreSQL 15).
-- Remove it with: DROP TRIGGER vee_scoring_status_guard ON mdm.vee_exception;
CREATE OR REPLACE FUNCTION mdm.vee_scoring_status_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- called only for a change the write-back never makes (the trigger's WHEN below)
    -- the role looked up, not named: with vee_scoring dropped (this system removed, the
    -- trigger left behind) a name would fail every analyst's resolution
    IF EXISTS (SELECT 1 FROM pg_roles AS g
               WHERE g.rolname = 'vee_scoring' AND pg_has_role(current_user, g.oid, 'USAGE'))
       AND NOT (SELECT r.rolsuper FROM pg_roles AS r WHERE r.rolname = current_user) THEN
        RAISE EXCEPTION 'exception %: status % -> % refused for %, a member of vee_scoring',
                        OLD.exception_id, OLD.status, NEW.status, current_user
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'this system moves only OPEN, AUTO_RESOLVED and PENDING_REVIEW '
                         'statuses (sql/optional/mdm_status_guard.sql)';
    END IF;
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS vee_scoring_status_guard ON mdm.vee_exception;
CREATE TRIGGER vee_scoring_status_guard
    BEFORE UPDATE OF status ON mdm.vee_exception
    FOR EACH ROW
    -- in the trigger's condition, not the function: the rows the write-back moves, a
    -- million a night at a large utility, call no function at all
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          AND (OLD.status NOT IN ('OPEN', 'AUTO_RESOLVED', 'PENDING_REVIEW')
               OR NEW.status IS NULL
               OR NEW.status NOT IN ('OPEN', 'AUTO_RESOLVED', 'PENDING_REVIEW')))
    EXECUTE FUNCTION mdm.vee_scoring_status_guard();
