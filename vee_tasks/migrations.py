"""Ordered SQL migrations: `vee db upgrade [--with-mdm]`.

Two tracks live in sql/migrations/: `mdm` (the MDMS's contract tables, only for dev, test,
demo and evaluation warehouses) and `vee` (this system's schema, always). Each file
`NNNN_name.sql` is applied once, in order, inside one transaction, and recorded in
`vee.schema_migration` with a checksum; a second upgrade does nothing. A changed file that was
already applied is an error, not a silent re-run.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from vee_tasks.config import SQL_DIR
from vee_tasks.warehouse import execute_sql_file, run_script, sql_text

log = logging.getLogger(__name__)

MIGRATIONS_DIR = SQL_DIR / "migrations"
TRACKS_IN_ORDER = ("mdm", "vee")
# The contract's MDMS tables (docs/warehouse-contract.md), all created by the mdm track's
# first migration: each column with its type as information_schema names it.
MDM_CONTRACT_COLUMNS = {
    "meter": {
        "meter_id": "text", "service_point_id": "text", "customer_class": "text",
        "meter_kind": "text", "multiplier": "double precision", "interval_minutes": "smallint",
        "has_der": "boolean", "region": "text", "installed_on": "date",
    },
    "weather_daily": {"region": "text", "day": "date", "mean_temp_c": "real"},
    "interval_read": {
        "meter_id": "text", "interval_start": "timestamp with time zone",
        "value_kwh": "double precision", "quality": "character",
        "received_at": "timestamp with time zone",
    },
    "vee_exception": {
        "exception_id": "bigint", "meter_id": "text", "rule_code": "text", "read_date": "date",
        "window_start": "timestamp with time zone", "window_end": "timestamp with time zone",
        "observed_value": "double precision", "expected_value": "double precision",
        "rule_version": "text", "raised_at": "timestamp with time zone", "status": "text",
        "status_changed_at": "timestamp with time zone",
    },
    "analyst_resolution": {
        "exception_id": "bigint", "resolution_code": "text", "resolved_by": "text",
        "resolved_at": "timestamp with time zone", "note": "text",
    },
}
MDM_CONTRACT_TABLES = tuple(MDM_CONTRACT_COLUMNS)
# How the ledger names a migration whose tables were found in place, not created by it.
ADOPTED_SUFFIX = " (adopted)"
_MDM_TABLES_MIGRATION = ("mdm", "0001")
# Serialises concurrent upgrades (two workers starting at once).
_ADVISORY_LOCK_KEY = 7_301_994_202

class MigrationError(RuntimeError):
    pass


# How long one statement of a migration waits for a table lock another session holds.
MIGRATION_LOCK_TIMEOUT = "60s"


class WarehouseBehind(MigrationError):
    """Schema vee lacks migrations of this release (`vee db upgrade` cures it)."""


@dataclass(frozen=True)
class Migration:
    track: str
    version: str
    name: str
    path: Path

    @property
    def script(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.script.encode()).hexdigest()


def discover(track: str) -> list[Migration]:
    found = []
    for path in sorted((MIGRATIONS_DIR / track).glob("*.sql")):
        version, _, name = path.stem.partition("_")
        if not version.isdigit():
            raise MigrationError(f"migration file {path.name} must start with a number")
        found.append(Migration(track, version, name, path))
    return found


def upgrade(engine: Engine, with_mdm: bool = False, grant_missing: bool = True) -> list[Migration]:
    """Apply pending migrations; returns what was applied (empty when up to date). With
    `grant_missing` (`vee db upgrade`; not the upgrade `vee score` and `vee train` make
    first, which may run as a least-privileged login), also the roles' missing grants."""
    tracks = [t for t in TRACKS_IN_ORDER if with_mdm or t != "mdm"]
    if _up_to_date(engine, tracks):
        # Nothing to do: no DDL at all, so a least-privilege login (vee_scoring) may call this.
        if grant_missing:
            _grant_if_missing(engine)
        return []
    applied_now: list[Migration] = []
    with engine.begin() as conn:
        # no per-statement limit for the owner's migrations (the tasks' limit on every
        # connection, warehouse.limit_statements): one index build on a large table past
        # it would roll the whole upgrade back
        execute_sql_file(conn, "queries/session_setting_set.sql",
                         {"name": "statement_timeout", "value": "0"})
        # a concurrent upgrade is waited for, however long it takes (a login's own
        # lock_timeout would end that wait with a bare error)
        execute_sql_file(conn, "queries/session_setting_set.sql",
                         {"name": "lock_timeout", "value": "0"})
        execute_sql_file(conn, "queries/migration_lock.sql", {"lock_key": _ADVISORY_LOCK_KEY})
        # after the advisory lock (a concurrent upgrade is waited for): a table lock another
        # session holds fails the upgrade instead of making it wait without end, meanwhile
        # holding the locks it already took, e.g. on the analysts' queue (upgrade probe,
        # 2026-11-29: an idle transaction of a dashboard blocked vee.exception_resolution)
        execute_sql_file(conn, "queries/session_setting_set.sql",
                         {"name": "lock_timeout", "value": MIGRATION_LOCK_TIMEOUT})
        run_script(conn, sql_text("queries/migration_bootstrap.sql"))
        rows = execute_sql_file(conn, "queries/migration_applied.sql").fetchall()
        done = {(r.track, r.version): r.checksum for r in rows}
        for track in tracks:
            for migration in discover(track):
                key = (migration.track, migration.version)
                if key in done:
                    if done[key] != migration.checksum:
                        raise MigrationError(
                            f"{track}/{migration.path.name} changed after it was applied; "
                            "write a new migration instead"
                        )
                    continue
                name = migration.name
                if key == _MDM_TABLES_MIGRATION and _mdm_tables_made_elsewhere(conn):
                    _check_adopted_columns(conn)
                    log.warning(
                        "the mdm tables already exist: kept as they are, not created "
                        "(%s/%s recorded as adopted)", track, migration.path.name,
                    )
                    name += ADOPTED_SUFFIX
                else:
                    log.info("applying %s/%s", track, migration.path.name)
                    notices = _server_notices(conn)
                    _run_migration(conn, migration)
                    _report_notices(f"{track}/{migration.path.name}", notices)
                    applied_now.append(migration)
                execute_sql_file(
                    conn,
                    "queries/migration_record.sql",
                    {
                        "track": migration.track,
                        "version": migration.version,
                        "name": name,
                        "checksum": migration.checksum,
                    },
                )
    if grant_missing:
        _grant_if_missing(engine)
    return applied_now


EXCESS_MARK = "must not have "


def missing_grants(engine: Engine) -> list[str]:
    """Where this system's roles' privileges differ from docs/security.md's (on schema vee,
    the MDMS's tables, the database, migration 0058's function): "vee_scoring: SELECT ON
    mdm.meter" for one a role lacks (a night fails or plans blind without it),
    "vee_scoring: must not have INSERT ON vee.warehouse_identity" for one it must not hold.
    Empty before the roles exist."""
    with engine.connect() as conn:
        rows = execute_sql_file(conn, "queries/grants_missing.sql",
                                {"tables": list(MDM_CONTRACT_TABLES)}).fetchall()
    return [f"{row.role}: {EXCESS_MARK if row.excess else ''}{row.privilege}" for row in rows]


def grant_statements(missing: list[str]) -> list[str]:
    """The statements that set what `missing_grants` names ("GRANT SELECT ON mdm.meter TO
    vee_reader;", "REVOKE INSERT ON vee.warehouse_identity FROM vee_scoring;"): what the
    owner of the objects runs when the migrator may not."""
    statements = []
    for problem in missing:
        role, _, privilege = problem.partition(": ")
        if privilege.startswith(EXCESS_MARK):
            statements.append(f"REVOKE {privilege.removeprefix(EXCESS_MARK)} FROM {role};")
        else:
            statements.append(f"GRANT {privilege} TO {role};")
    return statements


def _grant_if_missing(engine: Engine) -> None:
    """Migration vee/0040 grants once, to the roles that exist then and on the mdm tables
    that exist then: roles a DBA made afterwards got nothing on schema vee, tables that came
    later (`vee db upgrade`, then `--with-mdm`; an MDMS creating its tables after) nothing on
    mdm, and nothing said so (outside probe 2026-11-27, outside review 2026-11-29). Each
    upgrade sets what differs; one that may not says what the owner must run."""
    if not missing_grants(engine):
        return
    with engine.begin() as conn:
        # one granter at a time: concurrent GRANTs on one object fail ("tuple concurrently
        # updated")
        execute_sql_file(conn, "queries/migration_lock.sql", {"lock_key": _ADVISORY_LOCK_KEY})
        notices = _server_notices(conn)
        run_script(conn, sql_text("queries/grants_apply.sql"))
        _report_notices("grants", notices)
    for problem in missing_grants(engine):
        log.warning("still differing after the grants: %s", problem)


def _run_migration(conn, migration: Migration) -> None:
    """Run one migration's script; the server's refusal becomes a one-line MigrationError."""
    import psycopg2

    try:
        run_script(conn, migration.script)
    except psycopg2.Error as exc:
        reason = ((exc.pgerror or str(exc)).strip().splitlines() or [type(exc).__name__])[0]
        if exc.pgcode == "55P03":  # lock_not_available: MIGRATION_LOCK_TIMEOUT ran out
            reason += (f" (waited {MIGRATION_LOCK_TIMEOUT} for a lock another session holds: "
                       "a running nightly or weekly task, a transaction left open, an "
                       "autovacuum, which pg_stat_activity names; rerun when it is gone, "
                       "between nights)")
        raise MigrationError(
            f"{migration.track}/{migration.path.name} failed, nothing was applied: {reason}"
        ) from None


def contract_column_problems(table: str, actual: dict[str, str]) -> list[str]:
    """How an mdm table's columns ({name: information_schema data_type}) differ from the
    contract's: a missing or retyped column (more columns are fine)."""
    problems = []
    for column, data_type in MDM_CONTRACT_COLUMNS[table].items():
        found = actual.get(column)
        if found is None:
            problems.append(f"mdm.{table}.{column} is missing")
        elif found != data_type:
            problems.append(f"mdm.{table}.{column} is {found}, not {data_type}")
    return problems


def _check_adopted_columns(conn) -> None:
    """Tables found in place hold every contract column with its type (more columns are
    fine): a missing or retyped one would otherwise fail later, in a grant or a night's run,
    far from the cause."""
    found: dict[str, dict[str, str]] = {}
    for row in execute_sql_file(conn, "queries/migration_mdm_columns.sql",
                                {"tables": list(MDM_CONTRACT_TABLES)}):
        found.setdefault(row.table_name, {})[row.column_name] = row.data_type
    problems = [problem for table in MDM_CONTRACT_TABLES
                for problem in contract_column_problems(table, found.get(table, {}))]
    if problems:
        raise MigrationError(
            "the mdm tables already there do not match docs/warehouse-contract.md: "
            + "; ".join(problems) + ". Nothing was applied"
        )


def missing_mdm_tables(conn) -> list[str]:
    """The contract's mdm tables this warehouse lacks (qualified names): until the MDMS
    provides them, no run can start."""
    present = {
        row.name for row in execute_sql_file(
            conn, "queries/migration_mdm_tables_present.sql", {"tables": list(MDM_CONTRACT_TABLES)}
        )
    }
    return [f"mdm.{name}" for name in MDM_CONTRACT_TABLES if name not in present]


def missing_mdm_tables_message(conn) -> str | None:
    """What a run says when the warehouse lacks some of the contract's mdm tables (None when
    all five are there): one line naming them, before any step trips over one of them."""
    missing = missing_mdm_tables(conn)
    if not missing:
        return None
    return ("the warehouse lacks the contract's table(s) " + ", ".join(missing) + ": no nightly "
            "or weekly run can start until the MDMS provides them (docs/warehouse-contract.md; "
            "a dev or test warehouse gets all five with `vee db upgrade --with-mdm`)")


def _mdm_tables_made_elsewhere(conn) -> bool:
    """Whether `--with-mdm` meets contract tables made by someone else (an evaluation
    harness, a restored dump). All five: they are kept and the migration that would create
    them is recorded as done. Some of them: an error, since creating the rest would fail
    halfway and guessing their shape could be wrong."""
    present = [
        row.name for row in execute_sql_file(
            conn, "queries/migration_mdm_tables_present.sql", {"tables": list(MDM_CONTRACT_TABLES)}
        )
    ]
    if not present:
        return False
    if len(present) == len(MDM_CONTRACT_TABLES):
        return True
    missing = sorted(set(MDM_CONTRACT_TABLES) - set(present))
    raise MigrationError(
        "schema mdm is partly there: "
        + ", ".join(f"mdm.{name}" for name in present)
        + (" exists" if len(present) == 1 else " exist") + " but "
        + ", ".join(f"mdm.{name}" for name in missing)
        + (" does not. " if len(missing) == 1 else " do not. ")
        + "`--with-mdm` creates all five contract tables together: create the missing ones "
        "as docs/warehouse-contract.md says, or drop the others, then upgrade again"
    )


def _server_notices(conn) -> list[str]:
    """The driver's list of the server's NOTICE and WARNING messages on this connection,
    emptied: it then holds what the next statements say (psycopg2 keeps the last 50)."""
    raw = conn.connection.dbapi_connection
    notices = getattr(raw, "notices", None)
    if not isinstance(notices, list):
        return []
    notices.clear()
    return notices


# PostgreSQL's own notices for IF [NOT] EXISTS: expected on every fresh database, not news.
_ROUTINE_NOTICE = ("already exists, skipping", "does not exist, skipping")


def _report_notices(source: str, notices: list[str]) -> None:
    """What a migration said: a grant the migrator may not make, a role it cannot create.
    The DBA must act on these (docs/security.md), so they are logged as warnings."""
    for notice in notices:
        text = " ".join(notice.split())
        if text and not any(part in text for part in _ROUTINE_NOTICE):
            log.warning("%s: %s", source, text)


def _ledger(engine: Engine) -> dict[tuple[str, str], str]:
    """Read-only: (track, version) -> checksum of every migration applied; empty before the
    first upgrade."""
    with engine.connect() as conn:
        if not execute_sql_file(conn, "queries/migration_ledger_exists.sql").scalar():
            return {}
        rows = execute_sql_file(conn, "queries/migration_applied.sql").fetchall()
    return {(r.track, r.version): r.checksum for r in rows}


def _up_to_date(engine: Engine, tracks: list[str]) -> bool:
    """Read-only check: every migration of these tracks applied with the same checksum."""
    done = _ledger(engine)
    return all(
        done.get((m.track, m.version)) == m.checksum for t in tracks for m in discover(t)
    )


def not_applied(engine: Engine, tracks: list[str]) -> list[str]:
    """Read-only: this release's migrations of these tracks the warehouse has not applied
    ("vee/0058_analyze_nightly_extract"), in order; all of them before the first upgrade."""
    done = _ledger(engine)
    return [f"{m.track}/{m.version}_{m.name}" for t in tracks for m in discover(t)
            if (m.track, m.version) not in done]


def require_upgraded(engine: Engine) -> None:
    """Fail at once, naming the cure, when schema vee is behind this release: the DAGs'
    tasks do not migrate (they may run as a least-privileged login), and a task meeting a
    missing table or column mid-run failed with the bare SQL error and left no run record
    (outside review, 2026-11-29)."""
    missing = not_applied(engine, ["vee"])
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise WarehouseBehind(
            f"the warehouse's schema vee is behind this release: {len(missing)} migration(s) "
            f"not applied ({shown}); run `vee db upgrade` as the owner of schema vee "
            "(docs/security.md), then rerun")


def applied(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        if not execute_sql_file(conn, "queries/migration_ledger_exists.sql").scalar():
            return []
        rows = execute_sql_file(conn, "queries/migration_applied.sql").fetchall()
    return [(r.track, r.version, r.name) for r in rows]
