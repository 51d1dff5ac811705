"""Least privilege (migration 0040): a login granted vee_scoring can do what the nightly run
needs and nothing that the contract forbids; vee_reader only reads; vee_training cannot
touch the MDMS's statuses. Runs against a real PostgreSQL with real roles: the whole nightly
scoring runs as such a login, and the nightly DAG runs with a password-protected one whose
password must appear in no log."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from robustness_support import LoginRole, clone_database
from scoring_fixtures import _apply_env
from vee_tasks import migrations
from vee_tasks.config import NIGHTLY_DAG_ID, reset_settings_cache
from vee_tasks.warehouse import execute_sql_file, run_script, sql_text

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


def test_mdm_tables_added_after_the_vee_schema_get_their_grants(databases):
    """`vee db upgrade`, then `--with-mdm`: the roles were made before the mdm tables, whose
    grants (migration 0040) were then skipped for good, and the scoring login could not
    read them (outside probe, 2026-11-27). Each upgrade grants what is missing, and
    `missing_grants` (shown by `vee db status`) names what still is."""
    url = databases.create("grants_later")
    engine = sa.create_engine(url)
    migrations.upgrade(engine)
    migrations.upgrade(engine, with_mdm=True)
    assert migrations.missing_grants(engine) == []
    _seed(engine)
    scorer = LoginRole(url, "vee_scoring")
    try:
        with scorer.engine().begin() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM mdm.vee_exception")).scalar() == 3
            conn.execute(sa.text("UPDATE mdm.vee_exception SET status = 'PENDING_REVIEW', "
                                 "status_changed_at = now() WHERE exception_id = 1"))
        # a grant revoked by hand is named, and the next upgrade (up to date) makes it again
        with engine.begin() as conn:
            conn.exec_driver_sql("REVOKE SELECT ON mdm.weather_daily FROM vee_reader")
        assert migrations.missing_grants(engine) == ["vee_reader: SELECT ON mdm.weather_daily"]
        # the upgrade `vee score` makes first (maybe as a least-privileged login) grants nothing
        assert migrations.upgrade(engine, with_mdm=True, grant_missing=False) == []
        assert migrations.missing_grants(engine) == ["vee_reader: SELECT ON mdm.weather_daily"]
        assert migrations.upgrade(engine, with_mdm=True) == []
        assert migrations.missing_grants(engine) == []
    finally:
        scorer.drop()
        engine.dispose()


class _PlainLogin:
    """A login of no group role (an MDMS owner, a migrator), dropped with what it owns."""

    def __init__(self, url: str, label: str, options: str = ""):
        import uuid

        self.name = f"vee_t_{label}_{uuid.uuid4().hex[:8]}"
        self.admin_url = url
        admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE ROLE {self.name} LOGIN {options}")
        admin.dispose()
        self.url = sa.engine.make_url(url).set(username=self.name).render_as_string(
            hide_password=False)

    def drop(self) -> None:
        from vee_tasks.warehouse import dispose_engines

        dispose_engines()
        admin = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE usename = :u"), {"u": self.name})
            conn.exec_driver_sql(f"DROP OWNED BY {self.name}")
            conn.exec_driver_sql(f"DROP ROLE {self.name}")
        admin.dispose()


def _vee_db_status(url: str, tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "VEE_WAREHOUSE_URL": url, "VEE_DATA_DIR": str(tmp_path)}
    env.pop("AIRFLOW_CONN_VEE_WAREHOUSE", None)
    return subprocess.run([sys.executable, "-m", "vee_tasks.cli", "db", "status"],
                          capture_output=True, text=True, env=env, timeout=120)


def test_a_migrator_with_nothing_on_mdm_upgrades_and_status_names_the_dbas_grants(databases, tmp_path):
    """Production as docs/security.md sets it up: the MDMS owns schema mdm, a migrator with
    CREATE on the database (nothing on mdm, no superuser) runs `vee db upgrade`. Its checks
    looked the mdm tables up by name and failed ("permission denied for schema mdm") after
    the migrations, and every later `vee db status` with them; the advice named `vee db
    upgrade` as the mdm owner, who may not touch schema vee, and the exit code was 0 while
    the scoring login could not read mdm (outside probe, 2026-11-29)."""
    url = databases.create("mdms_owned")
    mdms = _PlainLogin(url, "mdms")
    migrator = _PlainLogin(url, "migr")
    try:
        admin = sa.create_engine(url)
        with admin.begin() as conn:
            database = conn.exec_driver_sql("SELECT current_database()").scalar()
            conn.exec_driver_sql(f'GRANT CREATE ON DATABASE "{database}" TO {mdms.name}, {migrator.name}')
        admin.dispose()
        owner = sa.create_engine(mdms.url)
        with owner.begin() as conn:
            run_script(conn, sql_text("migrations/mdm/0001_mdm_contract_tables.sql"))
        owner.dispose()

        engine = sa.create_engine(migrator.url)
        assert migrations.upgrade(engine) != []  # as `vee db upgrade`: no error
        with engine.connect() as conn:
            assert migrations.missing_mdm_tables(conn) == []  # found without USAGE on mdm
        missing = migrations.missing_grants(engine)
        engine.dispose()
        assert "vee_scoring: UPDATE (status) ON mdm.vee_exception" in missing
        assert "vee_reader: USAGE ON SCHEMA mdm" in missing

        done = _vee_db_status(migrator.url, tmp_path)
        assert done.returncode == 1, done.stderr
        assert "GRANT UPDATE (status) ON mdm.vee_exception TO vee_scoring;" in done.stderr
        assert "the MDMS's DBA" in done.stderr and "permission denied" not in done.stderr

        # the statements it printed, run by the MDMS owner, make the warehouse ready
        owner = sa.create_engine(mdms.url)
        with owner.begin() as conn:
            for statement in migrations.grant_statements(missing):
                conn.exec_driver_sql(statement)
        owner.dispose()
        done = _vee_db_status(migrator.url, tmp_path)
        assert done.returncode == 0, done.stderr
        assert "privileges are not what" not in done.stderr
    finally:
        migrator.drop()
        mdms.drop()


def test_roles_exist_nologin(priv_url):
    engine = sa.create_engine(priv_url)
    with engine.connect() as conn:
        rows = dict(conn.execute(sa.text(
            "SELECT rolname, rolcanlogin FROM pg_roles "
            "WHERE rolname IN ('vee_scoring', 'vee_training', 'vee_reader')"
        )).fetchall())
    engine.dispose()
    assert rows == {"vee_scoring": False, "vee_training": False, "vee_reader": False}


def test_role_migration_is_idempotent_and_its_rerun_gives_back_no_forbidden_write(priv_url, scorer):
    """Roles already exist (cluster-wide) and grants are already made: running it again is
    fine, except that its grants on all of vee's tables gave the writers back the writes on
    the warehouse's identity that migration 0054 took (outside review, 2026-11-29: the id
    that keeps another warehouse's champion from scoring this one). `vee db status` names
    that, and the next `vee db upgrade` takes it back."""
    engine = sa.create_engine(priv_url)
    script = sql_text("migrations/vee/0040_roles.sql")
    with engine.begin() as conn:
        run_script(conn, script)
        run_script(conn, script)
    differing = migrations.missing_grants(engine)
    assert "vee_scoring: must not have UPDATE ON vee.warehouse_identity" in differing
    assert "REVOKE UPDATE ON vee.warehouse_identity FROM vee_scoring;" in \
        migrations.grant_statements(differing)
    assert migrations.upgrade(engine, with_mdm=True, grant_missing=False) == []
    assert migrations.missing_grants(engine) == differing  # as `vee score` upgrades: no grants
    assert migrations.upgrade(engine, with_mdm=True) == []
    assert migrations.missing_grants(engine) == []
    _refused(scorer.engine(), "UPDATE vee.warehouse_identity SET warehouse_id = gen_random_uuid()")
    engine.dispose()


def test_roles_a_dba_creates_after_the_first_upgrade_get_their_grants_on_vee(databases, tmp_path):
    """A migrator that may not create roles: migration 0040 makes no grant at all and says
    so; the DBA creates the roles and reruns `vee db upgrade`, which applied nothing (0040
    had run) and `vee db status` said ready while the scoring login could not read schema
    vee (outside review, 2026-11-29). Here the roles exist already (they are cluster-wide),
    so their grants in this database are taken away, which is where such roles stand."""
    url = databases.create("roles_later")
    engine = sa.create_engine(url)
    migrations.upgrade(engine, with_mdm=True)
    _seed(engine)
    with engine.begin() as conn:
        database = conn.exec_driver_sql("SELECT current_database()").scalar()
        conn.exec_driver_sql("REVOKE ALL ON ALL TABLES IN SCHEMA vee FROM vee_scoring, vee_training, vee_reader")
        conn.exec_driver_sql("REVOKE ALL ON ALL SEQUENCES IN SCHEMA vee FROM vee_scoring, vee_training, vee_reader")
        conn.exec_driver_sql("REVOKE ALL ON SCHEMA vee FROM vee_scoring, vee_training, vee_reader")
        conn.exec_driver_sql(f'REVOKE ALL ON DATABASE "{database}" FROM vee_scoring, vee_training, vee_reader')
        conn.exec_driver_sql(f'REVOKE TEMPORARY ON DATABASE "{database}" FROM PUBLIC')
    scorer = LoginRole(url, "vee_scoring")
    try:
        missing = migrations.missing_grants(engine)
        for expected in ("vee_scoring: USAGE ON SCHEMA vee", "vee_reader: USAGE ON SCHEMA vee",
                         "vee_scoring: INSERT ON vee.exception_resolution",
                         "vee_training: UPDATE ON vee.training_run",
                         "vee_reader: SELECT ON vee.scoring_run",
                         f"vee_scoring: TEMPORARY ON DATABASE {database}",
                         "vee_scoring: USAGE ON SEQUENCE vee.quarantined_exception_quarantine_id_seq"):
            assert expected in missing, (expected, missing)
        assert not any("vee_reader: INSERT" in m or "TEMPORARY" in m and "vee_reader" in m
                       for m in missing)
        _refused(scorer.engine(), "SELECT count(*) FROM vee.scoring_run")
        done = _vee_db_status(url, tmp_path)
        assert done.returncode == 1, done.stderr
        assert "vee_scoring: USAGE ON SCHEMA vee" in done.stderr
        assert "GRANT USAGE ON SCHEMA vee TO vee_scoring;" in done.stderr

        assert migrations.upgrade(engine, with_mdm=True) == []  # as the DBA reruns it
        assert migrations.missing_grants(engine) == []
        assert _vee_db_status(url, tmp_path).returncode == 0
        with scorer.engine().begin() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM vee.scoring_run")).scalar() == 0
            conn.exec_driver_sql("CREATE TEMP TABLE vee_t_ids (id bigint)")
        _refused(scorer.engine(), "DELETE FROM vee.schema_migration")
        _refused(scorer.engine(), "DELETE FROM vee.warehouse_identity")
    finally:
        scorer.drop()
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


def test_scoring_role_gets_statistics_of_the_staged_rows(priv_url, scorer):
    """The nightly's ANALYZE of its staged rows works for a login that owns nothing: a
    non-owner's ANALYZE only warned and skipped the table (before PostgreSQL 17), so the
    validation and shard queries planned a day's staged rows on stale statistics. Migration
    0058's function, owned by the migrator, analyzes it for the scoring role."""
    admin = sa.create_engine(priv_url)
    reltuples = sa.text("SELECT reltuples FROM pg_class WHERE oid = 'vee.nightly_extract'::regclass")
    with admin.begin() as conn:
        conn.exec_driver_sql("ANALYZE vee.nightly_extract")  # a known state: analyzed, empty
        conn.exec_driver_sql(
            "UPDATE pg_class SET reltuples = -1 WHERE oid = 'vee.nightly_extract'::regclass")
        assert conn.execute(reltuples).scalar() == -1  # "never analyzed"
    engine = scorer.engine()
    with engine.begin() as conn:
        execute_sql_file(conn, "queries/nightly_extract_analyze.sql")
    with admin.connect() as conn:
        assert conn.execute(reltuples).scalar() == 0  # analyzed: the table is empty
    # a scoring role without EXECUTE (roles made after the upgrade): named by `vee db
    # status`, granted by the next `vee db upgrade`; meanwhile the run goes on unanalyzed
    with admin.begin() as conn:
        conn.exec_driver_sql(
            "REVOKE EXECUTE ON FUNCTION vee.analyze_nightly_extract() FROM vee_scoring")
    assert migrations.missing_grants(admin) == [
        "vee_scoring: EXECUTE ON FUNCTION vee.analyze_nightly_extract()"]
    with engine.begin() as conn:  # the extract step asks first, and goes on unanalyzed
        assert execute_sql_file(conn, "queries/nightly_extract_analyze_allowed.sql").scalar() is False
    engine.dispose()
    assert migrations.upgrade(admin) == []
    assert migrations.missing_grants(admin) == []
    admin.dispose()


def test_the_optional_status_guard_refuses_what_the_write_back_never_does(databases):
    """sql/optional/mdm_status_guard.sql, as an MDMS's DBA installs it: a vee_scoring login
    may still move OPEN / AUTO_RESOLVED / PENDING_REVIEW among themselves, but not reopen or
    change an analyst's row, nor set ANALYST_RESOLVED (the column privilege alone allowed
    both: outside probe, 2026-11-29); a superuser (the MDMS) still may."""
    url = databases.create("guard")
    admin = sa.create_engine(url)
    migrations.upgrade(admin, with_mdm=True)
    _seed(admin)
    with admin.begin() as conn:
        run_script(conn, sql_text("optional/mdm_status_guard.sql"))
        run_script(conn, sql_text("optional/mdm_status_guard.sql"))  # a second run is fine
    role = LoginRole(url, "vee_scoring")
    try:
        engine = role.engine()
        move = ("UPDATE mdm.vee_exception SET status = :s, status_changed_at = now() "
                "WHERE exception_id = :e")
        _refused(engine, move, {"s": "OPEN", "e": 3})  # an analyst's row, reopened
        _refused(engine, move, {"s": "PENDING_REVIEW", "e": 3})
        _refused(engine, move, {"s": "ANALYST_RESOLVED", "e": 1})  # claiming an analyst's
        with engine.begin() as conn:
            assert conn.execute(sa.text(move), {"s": "AUTO_RESOLVED", "e": 1}).rowcount == 1
            assert conn.execute(sa.text(move), {"s": "PENDING_REVIEW", "e": 1}).rowcount == 1
            assert conn.execute(sa.text(move), {"s": "OPEN", "e": 1}).rowcount == 1  # a withdrawal
        engine.dispose()
        with admin.begin() as conn:  # the MDMS (here a superuser) keeps its rights
            assert conn.execute(sa.text(move), {"s": "ANALYST_RESOLVED", "e": 2}).rowcount == 1
        with admin.connect() as conn:
            statuses = dict(conn.execute(sa.text(
                "SELECT exception_id, status FROM mdm.vee_exception")).fetchall())
        assert statuses == {1: "OPEN", 2: "ANALYST_RESOLVED", 3: "ANALYST_RESOLVED"}
    finally:
        role.drop()
        admin.dispose()


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


# --- the whole nightly run as the least-privileged login ------------------------------------


@pytest.fixture
def world_copy(databases, scoring_world, monkeypatch):
    """A copy of the scoring world (so its statuses can change), registry env applied."""
    url = clone_database(databases, scoring_world.pristine_url, "privw")
    _apply_env(monkeypatch, {**scoring_world.env(), "VEE_WAREHOUSE_URL": url})
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_VEE_WAREHOUSE", raising=False)
    reset_settings_cache()
    yield url, scoring_world
    reset_settings_cache()


def _day_state(engine, day):
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT e.exception_id, e.status, r.decision FROM mdm.vee_exception e "
                "LEFT JOIN vee.exception_resolution r USING (exception_id) "
                "WHERE e.read_date = :d ORDER BY 1"
            ),
            {"d": day},
        ).fetchall()


def test_the_whole_nightly_scoring_runs_as_the_scoring_login(world_copy, caplog):
    """Every step, the usage rollup included: its failure is only logged (the features read
    the raw reads instead), so a rollup the login may not write went unseen (outside
    review, 2026-11-29)."""
    import logging

    from vee_tasks.scoring.pipeline import score_read_date

    url, world = world_copy
    day = world.days[-2]
    admin = sa.create_engine(url)
    with admin.begin() as conn:  # the optional guard: the write-back never trips it
        run_script(conn, sql_text("optional/mdm_status_guard.sql"))
        # the rollup as a warehouse upgraded before it had one: every settled day to build
        conn.exec_driver_sql("DELETE FROM vee.meter_daily")
        conn.exec_driver_sql("DELETE FROM vee.meter_daily_day")
    caplog.set_level(logging.INFO, logger="vee_tasks")
    role = LoginRole(url, "vee_scoring")
    try:
        engine = role.engine()
        # `vee score` upgrades first: up to date, that is read-only and allowed.
        assert migrations.upgrade(engine) == []
        run = score_read_date(engine, day, run_id="as_scoring_login")
        assert run.status == "SUCCESS", run.message
        assert run.selected > 0
        assert run.selected == run.scored + run.quarantined + run.skipped_analyst
        expected = {"AUTO_APPLY": "AUTO_RESOLVED", "REVIEW": "PENDING_REVIEW"}
        rows = _day_state(engine, day)
        scored = [r for r in rows if r.decision is not None]
        assert len(scored) == run.scored
        assert all(r.status == expected[r.decision] for r in scored)
        assert "usage rollup not refreshed" not in caplog.text
        with admin.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM vee.meter_daily_day").scalar() > 0
            assert conn.exec_driver_sql("SELECT count(*) FROM vee.meter_daily").scalar() > 0
        engine.dispose()
    finally:
        role.drop()
        admin.dispose()


def test_the_weekly_training_runs_as_the_training_login(world_copy, monkeypatch, tmp_path):
    """The weekly run as docs/security.md deploys it, a login granted vee_training only: it
    reads the labels and the features' history, keeps its run record in vee, registers and
    promotes a model, and changes nothing the MDMS owns. Only a temp table and a read of
    mdm were tried as that role before (outside review, 2026-11-29)."""
    from vee_tasks import registry
    from vee_tasks.training.pipeline import train

    url, world = world_copy
    # a registry of its own: the world's champion stays the other tests'
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("VEE_DATA_DIR", str(tmp_path / "data"))
    reset_settings_cache()
    registry.clear_cache()
    admin = sa.create_engine(url)
    before = _snapshot(admin)
    role = LoginRole(url, "vee_training")
    try:
        engine = role.engine()
        assert migrations.upgrade(engine) == []  # `vee train` upgrades first: read-only
        result = train(engine, as_of=world.days[0], run_id="as_training_login")
        assert result.registration and result.registration["version"], result
        assert result.registration["decision"] == "champion", result.registration
        with admin.connect() as conn:
            status = conn.exec_driver_sql(
                "SELECT status FROM vee.training_run WHERE run_id = 'as_training_login'").scalar()
        assert status == "SUCCESS"
        assert _snapshot(admin) == before
        engine.dispose()
    finally:
        role.drop()
        admin.dispose()
        reset_settings_cache()
        registry.clear_cache()


@pytest.mark.slow
def test_nightly_dag_with_a_password_protected_login_leaks_no_password(world_copy, tmp_path):
    """`airflow dags test` with the warehouse connection given as AIRFLOW_CONN_VEE_WAREHOUSE
    for a scoring login with a password: the run succeeds as that login, and the password is
    in none of the task logs under AIRFLOW_HOME/logs nor on stdout/stderr."""
    from urllib.parse import quote

    url, world = world_copy
    day = world.days[-3]
    role = LoginRole(url, "vee_scoring")
    airflow = str(Path(sys.executable).with_name("airflow"))
    home = tmp_path / "airflow-home"
    env = dict(os.environ)
    env.update(world.env())
    env.pop("VEE_WAREHOUSE_URL", None)
    env.pop("MLFLOW_REGISTRY_URI", None)
    env.pop("PYTEST_CURRENT_TEST", None)
    env.update(
        AIRFLOW_CONN_VEE_WAREHOUSE=role.libpq_url,
        AIRFLOW_HOME=str(home),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
    )
    try:
        done = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        # Watch who is connected to the copy while the DAG runs: the login, nobody else.
        import threading

        users: set[str] = set()
        stop = threading.Event()
        watcher_engine = sa.create_engine(url)

        def watch():
            while not stop.is_set():
                with watcher_engine.connect() as conn:
                    users.update(r[0] for r in conn.execute(sa.text(
                        "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = "
                        "current_database() AND pid <> pg_backend_pid()")))
                stop.wait(0.2)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            done = subprocess.run([airflow, "dags", "test", NIGHTLY_DAG_ID, day.isoformat()],
                                  env=env, capture_output=True, text=True, timeout=1200)
        finally:
            stop.set()
            watcher.join()
            watcher_engine.dispose()
        output = done.stdout + done.stderr
        assert done.returncode == 0, output[-5000:]
        admin = sa.create_engine(url)
        with admin.connect() as conn:
            run = conn.execute(
                sa.text("SELECT status, message FROM vee.scoring_run WHERE read_date = :d "
                        "ORDER BY started_at DESC LIMIT 1"), {"d": day}
            ).one()
        admin.dispose()
        assert run.status == "SUCCESS", run.message
        assert role.name in users, users
        secrets_ = {role.password, quote(role.password, safe="")}
        # `dags test` runs the tasks in-process: their logs go to stdout/stderr (checked to be
        # there), and whatever Airflow writes under AIRFLOW_HOME/logs is searched as well.
        assert "nightly run " in output and "pinned to" in output, output[-3000:]
        files = [p for p in (home / "logs").rglob("*") if p.is_file()]
        leaks = [str(p) for p in files
                 if any(s in p.read_text(errors="replace") for s in secrets_)]
        assert leaks == []
        assert not any(s in output for s in secrets_)
        # The login's URL, as the project prints it, hides the password too.
        from vee_tasks.config import redact_url

        assert role.password not in redact_url(role.url)
    finally:
        role.drop()
