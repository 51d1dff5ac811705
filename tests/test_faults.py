"""Fault tests of the nightly run: what happens when things break in the middle.

Each test works on its own copy (CREATE DATABASE ... TEMPLATE) of the session's scoring
world (a simulated warehouse with a champion trained by the real pipeline), so the faults
never leak into other tests. Covered: kill -9 of a worker in the middle of a shard's
write-back and the rerun; the warehouse connection terminated mid-shard (a transient error
the DAG retries) and the retry; the registry unreachable; a corrupt and an incompatible model
version; analysts resolving exceptions at random moments while the run writes back.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from robustness_support import clone_database
from scoring_fixtures import _apply_env
from vee_tasks.config import get_settings, reset_settings_cache

DECIDABLE = ("OPEN", "AUTO_RESOLVED", "PENDING_REVIEW")


# --- a private copy of the scoring world -----------------------------------------------


class FaultWorld:
    def __init__(self, url: str, env: dict[str, str], day: dt.date, version: str):
        self.url = url
        self.env = env
        self.day = day
        self.version = version
        self.engine = sa.create_engine(url)

    def subprocess_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def statuses(self, ids=None) -> dict[int, str]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT exception_id, status FROM mdm.vee_exception WHERE read_date = :d"
                ),
                {"d": self.day},
            ).fetchall()
        out = {r.exception_id: r.status for r in rows}
        return out if ids is None else {i: out[i] for i in ids}

    def count(self, table: str, where: str = "read_date = :d", **params) -> int:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.text(f"SELECT count(*) FROM {table} WHERE {where}"), {"d": self.day, **params}
            ).scalar()

    def shard_ids(self, run_id: str, shard: int) -> list[int]:
        with self.engine.connect() as conn:
            return [
                r[0]
                for r in conn.execute(
                    sa.text(
                        "SELECT exception_id FROM vee.nightly_extract WHERE dag_run_id = :r "
                        "AND shard = :s AND failed_checks IS NULL ORDER BY exception_id"
                    ),
                    {"r": run_id, "s": shard},
                )
            ]

    def biggest_shard(self, run_id: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.text(
                    "SELECT shard FROM vee.nightly_extract WHERE dag_run_id = :r AND "
                    "failed_checks IS NULL GROUP BY shard ORDER BY count(*) DESC, shard LIMIT 1"
                ),
                {"r": run_id},
            ).scalar()


@pytest.fixture
def world(databases, scoring_world, monkeypatch, request):
    label = "flt" + uuid.uuid4().hex[:6]
    url = clone_database(databases, scoring_world.pristine_url, label)
    env = {**scoring_world.env(), "VEE_WAREHOUSE_URL": url,
           "AIRFLOW_CONN_VEE_WAREHOUSE": url.replace("postgresql+psycopg2://", "postgresql://")}
    _apply_env(monkeypatch, env)
    # MLflow writes the registry URI into os.environ when configured: drop any left over.
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    # The day gets more exceptions than its neighbours (below): not a volume breach here.
    env["VEE_VOLUME_MIN_HISTORY_DAYS"] = "1000"
    monkeypatch.setenv("VEE_VOLUME_MIN_HISTORY_DAYS", "1000")
    reset_settings_cache()
    fw = FaultWorld(url, env, scoring_world.days[-1], scoring_world.version)
    _add_exceptions(fw)
    yield fw
    fw.engine.dispose()
    from vee_tasks import registry

    registry.clear_cache()
    reset_settings_cache()


def _add_exceptions(fw: FaultWorld) -> None:
    """One more OPEN exception per meter on the day (the simulated day has only a handful),
    raised with the day's batch, so that every shard has rows to kill, drop and race on."""
    with fw.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO mdm.vee_exception "
                "SELECT 90000000 + row_number() OVER (ORDER BY m.meter_id), m.meter_id, r.rule, "
                "  :d, w.s, w.s + interval '2 hours', 3.5, CASE WHEN r.rule = 'GAP' THEN NULL "
                "  ELSE 2.0 END, r.rule || '/1', w.raised, 'OPEN', w.raised "
                "FROM mdm.meter m "
                "CROSS JOIN LATERAL (SELECT (ARRAY['GAP','SPIKE','HIGH_USAGE','LOW_USAGE',"
                "  'FLATLINE','REVERSE_FLOW'])[1 + abs(hashtext(m.meter_id)) % 6] AS rule) r "
                "CROSS JOIN LATERAL (SELECT (CAST(:d AS date)::timestamp AT TIME ZONE :tz) "
                "  + interval '1 hour' * (3 + abs(hashtext(m.meter_id)) % 15) AS s, "
                "  (CAST(:d AS date)::timestamp AT TIME ZONE :tz) + interval '26 hours' AS raised) w"
            ),
            {"d": fw.day, "tz": fw.env["VEE_TIMEZONE"]},
        )


def _prepare(fw: FaultWorld, run_id: str) -> list[int]:
    """start, champion, extract, validate: returns the shards."""
    from vee_tasks.scoring import steps

    steps.start_run(fw.engine, run_id, fw.day)
    version = steps.resolve_champion(fw.engine, run_id)
    assert version == fw.version
    steps.extract(fw.engine, run_id, fw.day)
    return steps.validate(fw.engine, run_id, fw.day)


def _check_finished_run(fw: FaultWorld, run_id: str) -> None:
    """The invariants of a completed run, read from the warehouse (not from the run)."""
    from vee_tasks.scoring.steps import ScoringRun

    run = ScoringRun.load(fw.engine, run_id)
    assert run.status == "SUCCESS", run.message
    assert run.selected == run.scored + run.quarantined + run.skipped_analyst
    with fw.engine.connect() as conn:
        n, distinct = conn.execute(
            sa.text(
                "SELECT count(*), count(DISTINCT exception_id) FROM vee.exception_resolution "
                "WHERE read_date = :d"
            ),
            {"d": fw.day},
        ).one()
        assert n == distinct  # no duplicates
        # Every scored exception's status says what its resolution row decided (or an
        # analyst took it); nothing half applied.
        mismatched = conn.execute(
            sa.text(
                "SELECT count(*) FROM vee.exception_resolution r JOIN mdm.vee_exception e "
                "USING (exception_id) WHERE r.read_date = :d AND e.status <> 'ANALYST_RESOLVED' "
                "AND e.status <> CASE r.decision WHEN 'AUTO_APPLY' THEN 'AUTO_RESOLVED' "
                "ELSE 'PENDING_REVIEW' END"
            ),
            {"d": fw.day},
        ).scalar()
        assert mismatched == 0
        # Nothing scored that the run did not select, nothing selected left OPEN unscored.
        open_unscored = conn.execute(
            sa.text(
                "SELECT count(*) FROM mdm.vee_exception e WHERE e.read_date = :d "
                "AND e.status = 'OPEN' AND NOT EXISTS (SELECT 1 FROM vee.quarantined_exception q "
                "WHERE q.exception_id = e.exception_id AND q.read_date = :d)"
            ),
            {"d": fw.day},
        ).scalar()
        assert open_unscored == 0
    assert n == run.scored


# --- kill -9 in the middle of a write-back ------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import datetime as dt, sys
    import sqlalchemy as sa
    from vee_tasks.scoring import steps
    url, run_id, day, shard, version, app = sys.argv[1:7]
    engine = sa.create_engine(url, connect_args={"application_name": app})
    steps.score_shard(engine, run_id, dt.date.fromisoformat(day), int(shard), version)
    print("FINISHED")
    """
)


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.mark.slow
def test_kill_9_during_write_back_leaves_nothing_half_applied_and_rerun_completes(world):
    from vee_tasks.scoring import steps

    fw = world
    run_id = "fault_kill9"
    shards = _prepare(fw, run_id)
    shard = fw.biggest_shard(run_id)
    ids = fw.shard_ids(run_id, shard)
    assert len(ids) >= 4
    blocker_id = ids[len(ids) // 2]
    before = fw.statuses(ids)
    app = f"vee_fault_{uuid.uuid4().hex[:6]}"

    # Hold an uncommitted resolution row for one exception in the middle of the shard: the
    # worker's upsert writes the rows before it, then waits on it, inside its transaction.
    blocker = fw.engine.connect()
    tx = blocker.begin()
    blocker.execute(
        sa.text(
            "INSERT INTO vee.exception_resolution VALUES (:id, :d, 'ACCEPT', 0.5, '{}', "
            "'REVIEW', 'blocker', '0', 'blocker', now())"
        ),
        {"id": blocker_id, "d": fw.day},
    )
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, fw.url, run_id, fw.day.isoformat(), str(shard),
         fw.version, app],
        env=fw.subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    admin = sa.create_engine(fw.url, isolation_level="AUTOCOMMIT")
    try:
        def waiting_backend():
            if child.poll() is not None:
                output = child.stdout.read().decode(errors="replace")[-3000:]
                raise AssertionError(f"the worker ended ({child.returncode}) early:\n{output}")
            with admin.connect() as conn:
                return conn.execute(
                    sa.text(
                        "SELECT pid FROM pg_stat_activity WHERE application_name = :a "
                        "AND wait_event_type = 'Lock' AND query ILIKE '%exception_resolution%'"
                    ),
                    {"a": app},
                ).scalar()

        try:
            backend = _wait_for(waiting_backend, 300, "the worker to block in its write-back")
        except AssertionError:
            with admin.connect() as conn:
                activity = conn.execute(
                    sa.text("SELECT state, wait_event_type, wait_event, left(query, 200) "
                            "FROM pg_stat_activity WHERE application_name = :a"), {"a": app}
                ).fetchall()
            raise AssertionError(f"worker's sessions: {activity}") from None
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        assert child.returncode == -signal.SIGKILL
    finally:
        tx.rollback()
        blocker.close()
        if child.poll() is None:
            child.kill()

    # The orphaned server backend finishes its statement, finds its client gone and rolls
    # back (a server with keepalives would also end it); either way it must not commit.
    def backend_gone():
        with admin.connect() as conn:
            return not conn.execute(
                sa.text("SELECT 1 FROM pg_stat_activity WHERE pid = :p"), {"p": backend}
            ).scalar()

    try:
        _wait_for(backend_gone, 30, "the orphaned backend to end")
    except AssertionError:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": backend})
        _wait_for(backend_gone, 10, "the terminated backend to end")
    admin.dispose()

    # Nothing of the killed shard is visible: no resolution rows, statuses as they were,
    # no shard record.
    assert fw.count("vee.exception_resolution", "exception_id = ANY(:ids)", ids=ids) == 0
    assert fw.statuses(ids) == before
    assert fw.count("vee.nightly_shard_result", "dag_run_id = :r AND shard = :s",
                    r=run_id, s=shard) == 0

    # The retried task reruns the shard, then the run completes.
    counts = steps.score_shard(fw.engine, run_id, fw.day, shard, fw.version)
    assert counts["scored"] == len(ids)
    for other in shards:
        if other != shard:
            steps.score_shard(fw.engine, run_id, fw.day, other, fw.version)
    steps.finish_run(fw.engine, run_id)
    _check_finished_run(fw, run_id)
    # A later rerun of the whole date gives the same rows, not more.
    from vee_tasks.scoring.pipeline import score_read_date

    with fw.engine.connect() as conn:
        rows_before = conn.execute(sa.text(
            "SELECT exception_id, decision, model_version FROM vee.exception_resolution "
            "WHERE read_date = :d ORDER BY 1"), {"d": fw.day}).fetchall()
    score_read_date(fw.engine, fw.day, run_id="fault_kill9_rerun")
    _check_finished_run(fw, "fault_kill9_rerun")
    with fw.engine.connect() as conn:
        rows_after = conn.execute(sa.text(
            "SELECT exception_id, decision, model_version FROM vee.exception_resolution "
            "WHERE read_date = :d ORDER BY 1"), {"d": fw.day}).fetchall()
    assert rows_after == rows_before


# --- the warehouse connection dropped mid-run ---------------------------------------------


def _context(fw: FaultWorld, run_id: str) -> dict:
    import pendulum

    return {
        "logical_date": pendulum.datetime(fw.day.year, fw.day.month, fw.day.day, tz=fw.env["VEE_TIMEZONE"]),
        "run_id": run_id,
    }


def test_connection_terminated_mid_shard_is_retried_and_the_retry_succeeds(world, monkeypatch):
    """pg_terminate_backend of the task's own connection between features and write-back:
    the task fails with a transient error (Airflow retries it: the DAG has retries), writes
    nothing, and the retry completes the run."""
    import vee_tasks.features as features_module
    from airflow.sdk.exceptions import AirflowFailException

    from vee_tasks.scoring import dag_tasks
    from vee_tasks.scoring.errors import is_transient

    fw = world
    run_id = "fault_terminate"
    run = dag_tasks.start(_context(fw, run_id))
    version = dag_tasks.resolve_champion(run)
    dag_tasks.extract(run)
    shards = dag_tasks.validate(run)
    shard = fw.biggest_shard(run_id)
    ids = fw.shard_ids(run_id, shard)
    before = fw.statuses(ids)

    real = features_module.build_features
    admin = sa.create_engine(fw.url, isolation_level="AUTOCOMMIT")
    fired = []

    def terminating_features(conn, exception_ids, timezone=None):
        frame = real(conn, exception_ids, timezone)
        if not fired:
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            with admin.connect() as a:
                assert a.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
            fired.append(pid)
        return frame

    monkeypatch.setattr(features_module, "build_features", terminating_features)
    with pytest.raises(Exception) as info:
        dag_tasks.score_shard(run, shard, version)
    assert fired
    assert not isinstance(info.value, AirflowFailException)
    assert is_transient(info.value)
    assert fw.statuses(ids) == before
    assert fw.count("vee.exception_resolution", "exception_id = ANY(:ids)", ids=ids) == 0
    with fw.engine.connect() as conn:
        status = conn.execute(
            sa.text("SELECT status FROM vee.scoring_run WHERE dag_run_id = :r"), {"r": run_id}
        ).scalar()
    assert status == "RUNNING"  # a transient failure does not fail the run

    monkeypatch.setattr(features_module, "build_features", real)
    admin.dispose()
    # The retry (same task, same run) goes through the pool, which replaces the dead
    # connection (pool_pre_ping), and completes.
    dag_tasks.score_shard(run, shard, version)
    for other in shards:
        if other != shard:
            dag_tasks.score_shard(run, other, version)
    dag_tasks.finish(run)
    _check_finished_run(fw, run_id)


def test_nightly_dag_retries_transient_failures():
    """The retry the previous test relies on is configured on every task of the DAG."""
    import importlib.util

    from vee_tasks.config import DAGS_DIR

    spec = importlib.util.spec_from_file_location("vee_nightly_dag", DAGS_DIR / "vee_nightly_scoring.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.DEFAULT_ARGS["retries"] >= 1


def test_a_hung_statement_is_ended_by_the_server_at_the_task_time_limit(
        empty_warehouse_url, monkeypatch):
    """Airflow's execution_timeout is a signal psycopg2 only sees once the server answers:
    a query waiting on a lock (an analyst's open transaction) or a dead connection held its
    task, and with one run at a time every later night (outside review, 2026-11-29). Every
    connection now carries statement_timeout = VEE_TASK_TIMEOUT_HOURS, so the server ends
    it, the task fails and Airflow retries it."""
    from vee_tasks.warehouse import dispose_engines, get_engine

    monkeypatch.setenv("VEE_WAREHOUSE_URL", empty_warehouse_url)
    monkeypatch.setenv("VEE_TASK_TIMEOUT_HOURS", str(1.5 / 3600))  # 1.5 s
    reset_settings_cache()
    dispose_engines()
    analyst = sa.create_engine(empty_warehouse_url)
    try:
        engine = get_engine()
        started = time.monotonic()
        with pytest.raises(sa.exc.OperationalError, match="statement timeout"):
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT pg_sleep(60)"))
        assert time.monotonic() - started < 20
        with analyst.connect() as holder:  # a lock held by a transaction left open
            holder.execute(sa.text("LOCK TABLE mdm.vee_exception IN ACCESS EXCLUSIVE MODE"))
            started = time.monotonic()
            with pytest.raises(sa.exc.OperationalError, match="statement timeout"):
                with engine.connect() as conn:
                    conn.execute(sa.text("SELECT count(*) FROM mdm.vee_exception"))
            assert time.monotonic() - started < 20
            holder.rollback()
        # a session setting: the pool's connections keep it after a rollback
        with engine.connect() as conn:
            conn.rollback()
            assert conn.execute(sa.text("SHOW statement_timeout")).scalar() == "1500ms"
    finally:
        analyst.dispose()
        dispose_engines()
        monkeypatch.undo()
        reset_settings_cache()


def test_connection_settings_named_in_the_url_are_kept(empty_warehouse_url, monkeypatch):
    """The engine's libpq defaults (connect_timeout 10, application_name, keepalives) used to
    replace the same keywords in the operator's URL or Airflow connection extra, and the
    application name libpq's environment gives (PGAPPNAME)."""
    from vee_tasks.warehouse import dispose_engines, get_engine

    url = sa.engine.make_url(empty_warehouse_url).update_query_dict(
        {"application_name": "vee_ops_probe", "connect_timeout": "30"})
    monkeypatch.setenv("VEE_WAREHOUSE_URL", url.render_as_string(hide_password=False))
    monkeypatch.setenv("VEE_TASK_TIMEOUT_HOURS", "6")
    reset_settings_cache()
    dispose_engines()
    try:
        with get_engine().connect() as conn:
            assert conn.execute(sa.text("SHOW application_name")).scalar() == "vee_ops_probe"
            assert conn.execute(sa.text("SHOW statement_timeout")).scalar() == "6h"
        # without one in the URL: libpq's environment (PGAPPNAME) wins, then "vee"
        bare = url.difference_update_query(["application_name"]).render_as_string(
            hide_password=False)
        monkeypatch.setenv("VEE_WAREHOUSE_URL", bare)
        for environment, shown in (("vee_from_pgappname", "vee_from_pgappname"), (None, "vee")):
            if environment:
                monkeypatch.setenv("PGAPPNAME", environment)
            else:
                monkeypatch.delenv("PGAPPNAME", raising=False)
            reset_settings_cache()
            dispose_engines()
            with get_engine().connect() as conn:
                assert conn.execute(sa.text("SHOW application_name")).scalar() == shown
        monkeypatch.setenv("VEE_WAREHOUSE_URL", url.render_as_string(hide_password=False))
        reset_settings_cache()
        dispose_engines()
        # a stricter limit the DBA set for the login stays: the limit is only ever lowered
        with get_engine().begin() as conn:
            conn.execute(sa.text("DROP ROLE IF EXISTS vee_test_strict_login"))
            conn.execute(sa.text("CREATE ROLE vee_test_strict_login LOGIN"))
        try:
            with get_engine().begin() as conn:
                conn.execute(sa.text("ALTER ROLE vee_test_strict_login SET statement_timeout = '30min'"))
            strict = url.set(username="vee_test_strict_login", password=None)
            monkeypatch.setenv("VEE_WAREHOUSE_URL", strict.render_as_string(hide_password=False))
            reset_settings_cache()
            with get_engine().connect() as conn:
                assert conn.execute(sa.text("SHOW statement_timeout")).scalar() == "30min"
        finally:
            dispose_engines()
            with sa.create_engine(empty_warehouse_url).begin() as conn:
                conn.execute(sa.text("DROP ROLE vee_test_strict_login"))
    finally:
        dispose_engines()
        monkeypatch.undo()
        reset_settings_cache()


# --- the registry unreachable -------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_task_without_a_warehouse_connection_fails_clearly(monkeypatch, tmp_path):
    """A worker whose vee_warehouse connection is missing: found by an outside probe on
    2026-11-27, the task started a new, empty embedded PostgreSQL on the worker and the run
    failed later with 'relation vee.scoring_run does not exist'. It now says what is
    missing, and starts nothing."""
    from vee_tasks.scoring.errors import is_transient
    from vee_tasks.warehouse import WarehouseNotConfigured, warehouse_url

    for name in ("VEE_WAREHOUSE_URL", "AIRFLOW_CONN_VEE_WAREHOUSE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VEE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "vee_nightly_scoring")
    reset_settings_cache()
    try:
        with pytest.raises(WarehouseNotConfigured, match="no warehouse configured.*vee_warehouse") as info:
            warehouse_url()
        assert not is_transient(info.value)  # no retries: it will not configure itself
        # through the DAGs' tasks: failed at once, not retried (the engine is made before
        # the step's own failure policy applies)
        from airflow.sdk.exceptions import AirflowFailException

        from vee_tasks.scoring import dag_tasks as nightly
        from vee_tasks.warehouse import task_engine

        with pytest.raises(AirflowFailException, match="vee_warehouse"):
            nightly.extract({"dag_run_id": "no_conn", "read_date": "2026-03-01"})
        with pytest.raises(AirflowFailException, match="vee_warehouse"):
            task_engine()
        assert not (tmp_path / "pgdata").exists()
    finally:
        monkeypatch.undo()
        reset_settings_cache()


def test_a_command_without_a_warehouse_says_so_and_starts_nothing(monkeypatch, tmp_path, capsys):
    """`vee db status` / `vee score` with nothing configured started a new, empty embedded
    PostgreSQL, reported on it and exited 0 (`selected 0`), leaving the server running
    (outside probe, 2026-11-27). Only the demo and the bench make one."""
    from vee_tasks.cli import main

    for name in ("VEE_WAREHOUSE_URL", "AIRFLOW_CONN_VEE_WAREHOUSE", "AIRFLOW_CTX_DAG_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VEE_DATA_DIR", str(tmp_path))
    reset_settings_cache()
    try:
        for argv in (["db", "status"], ["score", "--read-date", "2026-03-01"]):
            assert main(argv) == 1
            said = capsys.readouterr().err
            assert "no warehouse configured: set VEE_WAREHOUSE_URL" in said and "make demo" in said
        assert not (tmp_path / "pgdata").exists()
    finally:
        monkeypatch.undo()
        reset_settings_cache()


def test_registry_unreachable_fails_clearly_and_writes_nothing(world, monkeypatch):
    from vee_tasks import registry
    from vee_tasks.scoring.pipeline import score_read_date
    from vee_tasks.scoring.steps import ScoringRun

    fw = world
    port = _closed_port()
    # a tracking URI with credentials in it: they must not reach the error or the run record
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://vee:s3cret-token@127.0.0.1:{port}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    reset_settings_cache()
    registry.clear_cache()
    before = fw.statuses()
    with pytest.raises(Exception) as info:
        score_read_date(fw.engine, fw.day, run_id="fault_registry")
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message, message
    assert "s3cret-token" not in message, message
    # nor in the traceback a task log prints (MLflow's own error repeats the URI)
    import traceback

    assert "s3cret-token" not in "".join(traceback.format_exception(info.value))
    assert fw.statuses() == before
    assert fw.count("vee.exception_resolution") == 0
    assert fw.count("vee.quarantined_exception") == 0
    run = ScoringRun.load(fw.engine, "fault_registry")
    assert run.status == "FAILED"
    assert run.model_version is None and run.scored == 0
    assert run.message and f"127.0.0.1:{port}" in run.message
    assert "s3cret-token" not in run.message


# --- corrupt and incompatible model versions ----------------------------------------------


def _private_registry(world_env: dict, tmp_path: Path, monkeypatch) -> str:
    """A copy of the world's registry database, so aliases can move without side effects."""
    from vee_tasks import registry

    source = Path(world_env["MLFLOW_TRACKING_URI"].removeprefix("sqlite:///"))
    target = tmp_path / "mlflow.db"
    shutil.copy(source, target)
    uri = f"sqlite:///{target}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    reset_settings_cache()
    registry.clear_cache()
    return uri


def _register(source_dir: Path) -> str:
    from vee_tasks import registry

    client = registry.configure()
    name = get_settings().registered_model_name
    version = client.create_model_version(name, source=source_dir.as_uri())
    return str(version.version)


def _set_champion(version: str) -> None:
    from vee_tasks import registry
    from vee_tasks.config import CHAMPION_ALIAS

    registry.configure().set_registered_model_alias(
        get_settings().registered_model_name, CHAMPION_ALIAS, version
    )
    registry.clear_cache()


def _champion_copy(fw: FaultWorld, tmp_path: Path) -> Path:
    import mlflow.artifacts

    from vee_tasks import registry

    registry.configure()
    name = get_settings().registered_model_name
    return Path(
        mlflow.artifacts.download_artifacts(
            f"models:/{name}/{fw.version}", dst_path=str(tmp_path / "copy")
        )
    )


def _use_sklearn_candidate(artifact: Path) -> None:
    """Put the world's trained sklearn candidate (skops) in place of the champion's model
    directory, so the skops cases test a skops file whatever kind won the promotion."""
    runs = get_settings().data_dir / "runs"
    found = sorted(runs.glob("*/candidates/sklearn/model/meta.json"))
    if not found:
        pytest.skip("no trained sklearn candidate in the world's training runs")
    shutil.rmtree(artifact)
    shutil.copytree(found[0].parent, artifact)


def test_the_sklearn_candidate_swap_loads_when_undamaged(world, monkeypatch, tmp_path):
    """Control for the skops cases below: the same swap, undamaged, loads and predicts."""
    from vee_tasks import registry

    fw = world
    _private_registry(fw.env, tmp_path, monkeypatch)
    model_dir = _champion_copy(fw, tmp_path)
    artifact = next(model_dir.rglob("meta.json")).parent
    _use_sklearn_candidate(artifact)
    loaded = registry.load_model_version(_register(model_dir))
    assert loaded.kind == "sklearn"


def test_code_stored_with_a_version_never_runs_at_load(world, monkeypatch, tmp_path):
    """Someone able to write the registry's artifacts (an MLflow server without
    authentication proxies artifact uploads) replaces the version's model-from-code entry
    file. Found by an outside probe on 2026-11-27: `mlflow.pyfunc.load_model` ran it on the
    worker, and the night still succeeded. Scoring reads only the version's data files."""
    from vee_tasks import registry

    fw = world
    _private_registry(fw.env, tmp_path, monkeypatch)
    model_dir = _champion_copy(fw, tmp_path)
    marker = tmp_path / "code-ran"
    entries = [p for p in model_dir.rglob("*.py")]
    assert entries, "the logged model carries its model-from-code entry"
    for entry in entries:
        entry.write_text(f"open({str(marker)!r}, 'w').write('ran')\nraise SystemExit('code ran')\n")
    loaded = registry.load_model_version(_register(model_dir))
    assert not marker.exists()
    assert loaded.kind in ("sklearn", "keras") and loaded.predictor.model is not None


def test_a_version_whose_files_are_gone_is_a_registry_error_not_an_incompatible_model(
        world, monkeypatch, tmp_path):
    """Files missing from the artifact store say nothing about the model: not
    IncompatibleModelError, which lets training replace a champion without comparing."""
    from vee_tasks import registry

    fw = world
    _private_registry(fw.env, tmp_path, monkeypatch)
    model_dir = _champion_copy(fw, tmp_path)
    version = _register(model_dir)
    shutil.rmtree(model_dir)
    with pytest.raises(registry.RegistryError) as info:
        registry.load_model_version(version)
    assert not isinstance(info.value, registry.IncompatibleModelError), info.value


def _dump_with_aliased_type(path) -> None:
    """A skops file holding a FunctionTransformer filed under a gradient-boosting module,
    which imports it: skops finds a type as getattr(import_module(module), name), so this
    loads a real FunctionTransformer unless the allowlist checks where a type is defined."""
    import io
    import zipfile

    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    claimed = "sklearn.ensemble._hist_gradient_boosting.gradient_boosting"
    packed = zipfile.ZipFile(io.BytesIO(sio.dumps({"pre": FunctionTransformer()})))
    files = {name: packed.read(name) for name in packed.namelist()}
    schema = json.loads(files["schema.json"])

    def relabel(node):
        if isinstance(node, dict):
            if node.get("__class__") == "FunctionTransformer":
                node["__module__"] = claimed
            for value in node.values():
                relabel(value)
        elif isinstance(node, list):
            for value in node:
                relabel(value)

    relabel(schema)
    files["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(path, "w") as out:
        for name, data in files.items():
            out.writestr(name, data)
    assert f"{claimed}.FunctionTransformer" in sio.get_untrusted_types(file=path)


@pytest.mark.parametrize("damage", [
    "garbage_files", "other_feature_set", "other_classes", "untrusted_skops_types",
    # Found here: the allowlist used to trust every builtins.* (exec, eval, __import__);
    # fixed with exact types (6fa4caf), kept as a regression test.
    "allowlisted_builtins",
    # Found in an outside review (2026-11-28): a type under a trusted module's name but
    # defined elsewhere (skops finds it as getattr(module, name)) passed a prefix test.
    "aliased_skops_type",
])
def test_corrupt_or_incompatible_version_is_refused_at_load(world, monkeypatch, tmp_path, damage):
    from vee_tasks import registry
    from vee_tasks.scoring import dag_tasks
    from vee_tasks.scoring.pipeline import score_read_date

    fw = world
    _private_registry(fw.env, tmp_path, monkeypatch)
    model_dir = _champion_copy(fw, tmp_path)
    meta_path = next(model_dir.rglob("meta.json"))
    artifact = meta_path.parent
    if damage == "garbage_files":
        for path in model_dir.rglob("*"):
            if path.is_file():
                path.write_bytes(os.urandom(256))
        expected = "cannot be loaded"
    elif damage == "other_feature_set":
        meta = json.loads(meta_path.read_text())
        meta["feature_schema"] = "0123456789abcdef"
        meta_path.write_text(json.dumps(meta))
        expected = "another feature set"
    elif damage == "other_classes":
        meta = json.loads(meta_path.read_text())
        meta["classes"] = list(reversed(meta["classes"]))
        meta_path.write_text(json.dumps(meta))
        expected = "classes"
    else:
        import functools

        import skops.io as sio
        import yaml

        _use_sklearn_candidate(artifact)
        skops_file = next(artifact.rglob("model.skops"))
        if damage == "untrusted_skops_types":
            # A skops file holding a callable outside the allowlist.
            sio.dump({"evil": os.system}, skops_file)
        elif damage == "aliased_skops_type":
            _dump_with_aliased_type(skops_file)
        else:
            # Someone with write access to the registry's artifacts swaps in a callable that
            # runs code and lists its types as trusted in the MLmodel file too.
            payload = {"evil": functools.partial(exec, "raise SystemExit('code ran')")}
            sio.dump(payload, skops_file)
            mlmodel = skops_file.parent / "MLmodel"
            spec = yaml.safe_load(mlmodel.read_text())
            spec["flavors"]["sklearn"]["skops_trusted_types"] = sio.get_untrusted_types(
                data=sio.dumps(payload)
            )
            mlmodel.write_text(yaml.safe_dump(spec))
        expected = "untrusted"
    version = _register(model_dir)

    with pytest.raises(registry.IncompatibleModelError) as info:
        registry.load_model_version(version)
    assert f"version {version}" in str(info.value)
    assert expected in str(info.value), str(info.value)

    # Made champion, it stops the nightly run at once: no retry, nothing written.
    _set_champion(version)
    before = fw.statuses()
    with pytest.raises(Exception) as run_info:
        score_read_date(fw.engine, fw.day, run_id=f"fault_model_{damage}")
    assert "IncompatibleModelError" in type(run_info.value).__name__ or expected in str(run_info.value)
    assert fw.statuses() == before
    assert fw.count("vee.exception_resolution") == 0
    run = {"dag_run_id": f"fault_model_{damage}", "read_date": fw.day.isoformat()}
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException):
        dag_tasks.score_shard(run, 0, version)


# --- analysts at work during the run ------------------------------------------------------


class Analysts(threading.Thread):
    """Resolves random exceptions of the day, one short transaction each, until stopped."""

    def __init__(self, url: str, day: dt.date, ids: list[int], seed: int = 3):
        super().__init__(daemon=True)
        self.engine = sa.create_engine(url)
        self.day = day
        self.pool = list(ids)
        self.random = random.Random(seed)
        self.resolved: list[int] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def resolve(self, exception_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE mdm.vee_exception SET status = 'ANALYST_RESOLVED', "
                    "status_changed_at = clock_timestamp() WHERE exception_id = :id"
                ),
                {"id": exception_id},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO mdm.analyst_resolution VALUES (:id, 'ESTIMATE', 'fault-test', "
                    "clock_timestamp(), 'resolved during the run') ON CONFLICT DO NOTHING"
                ),
                {"id": exception_id},
            )
        self.resolved.append(exception_id)

    def run(self) -> None:
        try:
            while not self.stop.is_set() and self.pool:
                exception_id = self.pool.pop(self.random.randrange(len(self.pool)))
                self.resolve(exception_id)
                time.sleep(self.random.uniform(0.0, 0.05))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            self.engine.dispose()


def test_analyst_updates_during_the_run_are_never_overwritten(world):
    from vee_tasks.scoring import steps

    fw = world
    run_id = "fault_analysts"
    shards = _prepare(fw, run_id)
    with fw.engine.connect() as conn:
        selectable = [
            r[0]
            for r in conn.execute(
                sa.text(
                    "SELECT exception_id FROM vee.nightly_extract WHERE dag_run_id = :r "
                    "AND failed_checks IS NULL ORDER BY exception_id"
                ),
                {"r": run_id},
            )
        ]
    analysts = Analysts(fw.url, fw.day, selectable)
    # Besides the random ones: in each shard, analysts resolve two exceptions right between
    # scoring and the write-back's lock, and one while the write-back holds its locks.
    late: list[int] = []

    def before_write(conn, shard_ids):
        picks = [i for i in shard_ids if i not in analysts.resolved][:2]
        for exception_id in picks:
            analysts.resolve(exception_id)
        late.extend(picks)

    analysts.start()
    try:
        for shard in shards:
            shard_ids = fw.shard_ids(run_id, shard)
            steps.score_shard(
                fw.engine, run_id, fw.day, shard, fw.version,
                before_write=lambda conn, ids=shard_ids: before_write(conn, ids),
            )
        steps.finish_run(fw.engine, run_id)
    finally:
        analysts.stop.set()
        analysts.join(timeout=60)
    assert analysts.error is None, analysts.error
    assert late and analysts.resolved
    statuses = fw.statuses()
    overwritten = [i for i in analysts.resolved if statuses[i] != "ANALYST_RESOLVED"]
    assert overwritten == []
    from vee_tasks.scoring.steps import ScoringRun

    run = ScoringRun.load(fw.engine, run_id)
    assert run.skipped_analyst >= len(late)
    _check_finished_run(fw, run_id)
    # The ones taken right before the write-back got no decision from this run.
    assert fw.count("vee.exception_resolution", "exception_id = ANY(:ids)", ids=late) == 0
