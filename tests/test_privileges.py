"""Least privilege (migration 0040): a login granted vee_scoring can do what the nightly run
needs and nothing that the contract forbids; vee_reader only reads; vee_training cannot
touch the MDMS's statuses. Runs against a real PostgreSQL with real roles."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid

import pytest
import sqlalchemy as sa

from vee_tasks import migrations
from vee_tasks.warehouse import run_script, sql_text

INSUFFICIENT_PRIVILEGE = "42501"
T0 = dt.datetime(2026, 3, 1, 5, 0, tzinfo=dt.timezone.utc)


def _seed(engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO mdm.meter VALUES ('M1', 'SP1', 'RES', 'AMI_1PH', 1, 60, false, 'R1', "
            "'2020-01-01')"
        ))
        conn.execute(
            sa.text(
                "INSERT INTO mdm.interval_read SELECT 'M1', :t0 + make_interval(hours => h), "
                "1.0, 'A', :t0 + interval '2 days' FROM generate_series(0, 23) h"
            ),
            {"t0": T0},
        )
        for eid, status in ((1, "OPEN"), (2, "OPEN"), (3, "ANALYST_RESOLVED")):
            conn.execute(
                sa.text(
                    "INSERT INTO mdm.vee_exception VALUES (:id, 'M1', 'GAP', '2026-03-01', :t0, "
                    ":t0 + interval '1 hour', 1, NULL, 'GAP/1', :t0 + interval '1 day', "
                    ":status, :t0 + interval '1 day')"
                ),
                {"id": eid, "t0": T0, "status": status},
            )
        conn.execute(
            sa.text(
                "INSERT INTO mdm.analyst_resolution VALUES (3, 'ESTIMATE', 'a1', :t, 'ok')"
            ),
            {"t": T0 + dt.timedelta(days=2)},
        )


def _snapshot(engine) -> dict:
    """Everything the MDMS owns, to show a refused write changed nothing."""
    with engine.connect() as conn:
        return {
            table: conn.execute(sa.text(f"SELECT * FROM mdm.{table} ORDER BY 1, 2")).fetchall()
            for table in ("meter", "interval_read", "vee_exception", "analyst_resolution")
        }


@pytest.fixture(scope="module")
def priv_url(databases):
    url = databases.create("priv")
    engine = sa.create_engine(url)
    migrations.upgrade(engine, with_mdm=True)
    _seed(engine)
    engine.dispose()
    return url


class LoginRole:
    """A login role (with a password) granted one group role; dropped afterwards."""

    def __init__(self, admin_url: str, group: str):
        self.name = f"vee_t_{group}_{uuid.uuid4().hex[:8]}"
        self.password = "pw-" + secrets.token_hex(12)
        self.admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            conn.exec_driver_sql(
                f"CREATE ROLE {self.name} LOGIN PASSWORD '{self.password}' IN ROLE {group}"
            )
        self.url = sa.engine.make_url(admin_url).set(
            username=self.name, password=self.password
        ).render_as_string(hide_password=False)

    def engine(self):
        return sa.create_engine(self.url)

    def drop(self) -> None:
        from vee_tasks.warehouse import dispose_engines

        dispose_engines()
        with self.admin.connect() as conn:
            conn.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :u"),
                {"u": self.name},
            )
            conn.exec_driver_sql(f"DROP OWNED BY {self.name}")
            conn.exec_driver_sql(f"DROP ROLE {self.name}")
        self.admin.dispose()


@pytest.fixture(scope="module")
def scorer(priv_url):
    role = LoginRole(priv_url, "vee_scoring")
    yield role
    role.drop()


def _refused(engine, statement: str, params: dict | None = None) -> None:
    with pytest.raises(sa.exc.ProgrammingError) as info:
        with engine.begin() as conn:
            conn.execute(sa.text(statement), params or {})
    assert info.value.orig.pgcode == INSUFFICIENT_PRIVILEGE, info.value


def test_roles_exist_nologin(priv_url):
    engine = sa.create_engine(priv_url)
    with engine.connect() as conn:
        rows = dict(conn.execute(sa.text(
            "SELECT rolname, rolcanlogin FROM pg_roles "
            "WHERE rolname IN ('vee_scoring', 'vee_training', 'vee_reader')"
        )).fetchall())
    engine.dispose()
    assert rows == {"vee_scoring": False, "vee_training": False, "vee_reader": False}


def test_role_migration_is_idempotent(priv_url):
    """Roles already exist (cluster-wide) and grants are already made: running it again is fine."""
    engine = sa.create_engine(priv_url)
    script = sql_text("migrations/vee/0040_roles.sql")
    with engine.begin() as conn:
        run_script(conn, script)
        run_script(conn, script)
    assert migrations.upgrade(engine, with_mdm=True) == []
    engine.dispose()


def test_scoring_role_forbidden_writes_are_refused(priv_url, scorer):
    admin = sa.create_engine(priv_url)
    before = _snapshot(admin)
    engine = scorer.engine()
    _refused(engine, "UPDATE mdm.vee_exception SET rule_code = 'SPIKE' WHERE exception_id = 1")
    _refused(engine, "UPDATE mdm.vee_exception SET observed_value = 0")
    _refused(
        engine,
        "INSERT INTO mdm.analyst_resolution VALUES (1, 'ACCEPT', 'robot', now(), 'forged')",
    )
    _refused(engine, "DELETE FROM mdm.interval_read")
    _refused(engine, "UPDATE mdm.meter SET multiplier = 80")
    _refused(engine, "DELETE FROM mdm.vee_exception WHERE exception_id = 1")
    _refused(engine, "INSERT INTO mdm.weather_daily VALUES ('R1', '2026-03-01', 3)")
    _refused(engine, "TRUNCATE mdm.interval_read")
    # Schema changes and the migration ledger belong to the migrator.
    _refused(engine, "CREATE TABLE vee.sneaky (x int)")
    _refused(engine, "DROP TABLE vee.exception_resolution")
    _refused(engine, "ALTER TABLE vee.exception_resolution ADD COLUMN x int")
    _refused(
        engine,
        "INSERT INTO vee.schema_migration (track, version, name, checksum) "
        "VALUES ('vee', '9999', 'x', 'x')",
    )
    _refused(engine, "DELETE FROM vee.schema_migration")
    engine.dispose()
    assert _snapshot(admin) == before
    admin.dispose()


def test_scoring_role_allowed_writes_succeed(priv_url, scorer):
    engine = scorer.engine()
    with engine.begin() as conn:
        # The only write into mdm: status and its timestamp, locking rows first.
        conn.execute(sa.text(
            "SELECT exception_id FROM mdm.vee_exception WHERE read_date = '2026-03-01' "
            "ORDER BY exception_id FOR UPDATE"
        )).fetchall()
        changed = conn.execute(sa.text(
            "UPDATE mdm.vee_exception SET status = 'PENDING_REVIEW', status_changed_at = now() "
            "WHERE exception_id IN (1, 3) AND status IN ('OPEN', 'AUTO_RESOLVED', 'PENDING_REVIEW')"
        )).rowcount
        assert changed == 1
        # vee tables, including a bigserial sequence and upserts.
        conn.execute(sa.text(
            "INSERT INTO vee.exception_resolution VALUES (1, '2026-03-01', 'ESTIMATE', 0.7, "
            "'{\"ESTIMATE\": 0.7}', 'REVIEW', 'vee-resolution', '1', 'run1', now()) "
            "ON CONFLICT (exception_id) DO UPDATE SET confidence = excluded.confidence"
        ))
        conn.execute(sa.text(
            "INSERT INTO vee.quarantined_exception (exception_id, read_date, dag_run_id, "
            "failed_checks, payload) VALUES (2, '2026-03-01', 'run1', ARRAY['x'], '{}')"
        ))
        conn.execute(sa.text(
            "INSERT INTO vee.scoring_run (dag_run_id, read_date) VALUES ('run1', '2026-03-01')"
        ))
        conn.execute(sa.text("DELETE FROM vee.quarantined_exception WHERE dag_run_id = 'run1'"))
        # Temp tables filled with COPY (features, staging).
        conn.exec_driver_sql("CREATE TEMP TABLE ids (exception_id bigint) ON COMMIT DROP")
        import io

        raw = conn.connection.driver_connection
        with raw.cursor() as cur:
            cur.copy_expert("COPY ids FROM STDIN", io.StringIO("1\n2\n"))
        assert conn.exec_driver_sql("SELECT count(*) FROM ids").scalar() == 2
    engine.dispose()
    admin = sa.create_engine(priv_url)
    with admin.connect() as conn:
        statuses = dict(conn.execute(sa.text(
            "SELECT exception_id, status FROM mdm.vee_exception"
        )).fetchall())
    admin.dispose()
    assert statuses == {1: "PENDING_REVIEW", 2: "OPEN", 3: "ANALYST_RESOLVED"}


def test_future_vee_tables_are_covered_by_default_privileges(priv_url, scorer):
    admin = sa.create_engine(priv_url)
    with admin.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE IF NOT EXISTS vee.later_table (id bigserial PRIMARY KEY, x int)"
        )
    engine = scorer.engine()
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO vee.later_table (x) VALUES (1)")
    engine.dispose()
    with admin.begin() as conn:
        conn.exec_driver_sql("DROP TABLE vee.later_table")
    admin.dispose()


def test_reader_only_reads_and_training_cannot_touch_statuses(priv_url):
    reader = LoginRole(priv_url, "vee_reader")
    trainer = LoginRole(priv_url, "vee_training")
    try:
        engine = reader.engine()
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM mdm.vee_exception").scalar() == 3
            conn.exec_driver_sql("SELECT count(*) FROM vee.exception_resolution").scalar()
        _refused(engine, "DELETE FROM vee.exception_resolution")
        _refused(engine, "UPDATE mdm.vee_exception SET status = 'OPEN'")
        engine.dispose()
        engine = trainer.engine()
        _refused(engine, "UPDATE mdm.vee_exception SET status = 'OPEN'")
        with engine.begin() as conn:
            conn.exec_driver_sql("SELECT count(*) FROM mdm.analyst_resolution").scalar()
            conn.exec_driver_sql("CREATE TEMP TABLE t (x int)")
        engine.dispose()
    finally:
        reader.drop()
        trainer.drop()
