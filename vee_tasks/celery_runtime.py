"""Airflow on real distributed backends: PostgreSQL metadata, Redis broker, Celery workers.

What an operator (or the slow tests in tests/ops/) needs to run the project the way a
production installation does, on one machine: a metadata database on PostgreSQL, the
CeleryExecutor with Redis as broker, an api-server (Airflow 3 workers talk to its Execution
API), a scheduler, a dag-processor and N Celery workers with distinct names. The same
helpers run a LocalExecutor stack on PostgreSQL (backfill tests).

Several workers on one machine would all report the same task-instance hostname; each worker
here gets `VEE_WORKER_NAME` and Airflow's `[core] hostname_callable` points at
`worker_hostname`, so `task_instance.hostname` in the metadata database says which worker ran
which task (for instance which shard of the nightly run).
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from vee_tasks.airflow_runtime import (
    AirflowStack,
    AirflowStartError,
    ensure_admin_password,
    free_port,
    migrate,
    stack_env,
    stop_process_groups,
)
from vee_tasks.config import get_settings
from vee_tasks.warehouse import execute_sql_file

HOSTNAME_CALLABLE = "vee_tasks.celery_runtime.worker_hostname"
_WORKLOAD_RE = re.compile(r"Executing workload in Celery: .*?task_id='(?P<task>[^']+)'.*?"
                          r"run_id='(?P<run>[^']+)'.*?map_index=(?P<map>-?\d+)")


def worker_hostname() -> str:
    """`[core] hostname_callable`: `<worker name>@<host>` inside a named worker, else the FQDN."""
    name = get_settings().worker_name
    return f"{name}@{socket.gethostname()}" if name else socket.getfqdn()


def _die_with_parent() -> None:
    """preexec_fn: SIGTERM this component when the process that started it dies (a killed
    test run must not leave a scheduler behind). Linux only; elsewhere a no-op."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


# --- databases -------------------------------------------------------------------------


def _plain_database_name(name: str) -> str:
    """A name safe to write into DDL (a database name cannot be a bound parameter)."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise ValueError(f"not a plain database name: {name!r}")
    return name


def create_database(server_url: str, name: str) -> str:
    """(Re)create database `name` on the PostgreSQL server; returns its SQLAlchemy URL."""
    name = _plain_database_name(name)
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    name = _plain_database_name(name)
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def flush_redis_db(broker_url: str) -> None:
    """Empty the broker's Redis database (only that db number), so no stale message runs."""
    import redis

    redis.Redis.from_url(broker_url).flushdb()


# --- the stack -------------------------------------------------------------------------


def distributed_env(
    *,
    home: Path,
    port: int,
    metadata_url: str,
    executor: str = "CeleryExecutor",
    broker_url: str | None = None,
    dags_folder: Path | None = None,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """Environment of every component: stack_env's isolated home, then PostgreSQL metadata,
    the executor and (Celery) broker and result backend."""
    env = stack_env(port, "127.0.0.1", home=home, dags_folder=dags_folder)
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = metadata_url
    env["AIRFLOW__CORE__EXECUTOR"] = executor
    env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] = HOSTNAME_CALLABLE
    env["AIRFLOW__API__BASE_URL"] = f"http://127.0.0.1:{port}/"
    if executor == "CeleryExecutor":
        if not broker_url:
            raise ValueError("the CeleryExecutor needs a broker URL")
        env["AIRFLOW__CELERY__BROKER_URL"] = broker_url
        env["AIRFLOW__CELERY__RESULT_BACKEND"] = "db+" + metadata_url.replace(
            "postgresql+psycopg2://", "postgresql://", 1)
        # One task per free worker slot: mapped shards spread over the workers instead of
        # queueing behind the first one.
        env["AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER"] = "1"
    env.update(extra or {})
    return env


@dataclass
class DistributedStack:
    """An AirflowStack plus what the distributed tests ask of it."""

    stack: AirflowStack
    env: dict[str, str]
    metadata_url: str
    workers: tuple[str, ...]

    @property
    def url(self) -> str:
        return self.stack.url

    def airflow(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """An `airflow` CLI command against this installation."""
        done = subprocess.run([sys.executable, "-m", "airflow", *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise AirflowStartError(f"airflow {' '.join(args)} failed ({done.returncode}):\n"
                                    f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
        return done

    def metadata(self) -> sa.Engine:
        return sa.create_engine(self.metadata_url, poolclass=sa.pool.NullPool)

    def wait_for_dag(self, dag_id: str, timeout: float = 240) -> float:
        """Seconds until the dag-processor has serialized dag_id (runs can be created)."""
        started = time.monotonic()
        engine = self.metadata()
        try:
            while time.monotonic() - started < timeout:
                self.stack._check_alive()
                with engine.connect() as conn:
                    found = execute_sql_file(
                        conn, "queries/airflow_dag_serialized.sql", {"dag_id": dag_id}).first()
                if found:
                    return time.monotonic() - started
                time.sleep(2)
        finally:
            engine.dispose()
        raise AirflowStartError(f"DAG {dag_id} not parsed after {timeout:.0f}s:\n"
                                f"{self.stack.log_tail('dag-processor', 40)}")

    def wait_for_workers(self, timeout: float = 180) -> float:
        """Seconds until every Celery worker logged that it is ready."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            self.stack._check_alive()
            if all("ready." in self.stack.log_tail(f"worker-{w}", 400) for w in self.workers):
                return time.monotonic() - started
            time.sleep(1)
        raise AirflowStartError(f"workers not ready after {timeout:.0f}s")

    def dag_runs(self, dag_id: str) -> list[dict]:
        engine = self.metadata()
        try:
            with engine.connect() as conn:
                rows = execute_sql_file(
                    conn, "queries/airflow_dag_runs.sql", {"dag_id": dag_id}).mappings().all()
            return [dict(r) for r in rows]
        finally:
            engine.dispose()

    def wait_for_runs(self, dag_id: str, count: int, timeout: float = 1800,
                      where=lambda run: True) -> list[dict]:
        """Wait until `count` runs matching `where` have finished (success or failed)."""
        started = time.monotonic()
        runs: list[dict] = []
        while time.monotonic() - started < timeout:
            self.stack._check_alive()
            runs = [r for r in self.dag_runs(dag_id) if where(r)]
            done = [r for r in runs if r["state"] in ("success", "failed")]
            if len(done) >= count and len(done) == len(runs):
                return runs
            time.sleep(3)
        raise AirflowStartError(f"{dag_id}: runs not finished after {timeout:.0f}s: {runs}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        """Task id, map index, state, hostname, start and end of every task of a run."""
        engine = self.metadata()
        try:
            with engine.connect() as conn:
                rows = execute_sql_file(
                    conn, "queries/airflow_task_instances.sql",
                    {"dag_id": dag_id, "run_id": run_id}).mappings().all()
            return [dict(r) for r in rows]
        finally:
            engine.dispose()

    def worker_workloads(self, worker: str) -> list[tuple[str, str, int]]:
        """(task_id, run_id, map_index) of every workload the worker's log says it executed."""
        text = (self.stack.log_dir / f"worker-{worker}.log").read_text(errors="replace")
        return [(m["task"], m["run"], int(m["map"])) for m in _WORKLOAD_RE.finditer(text)]

    def api_token(self) -> str:
        """A JWT for the REST API from SimpleAuthManager (POST /auth/token)."""
        request = urllib.request.Request(
            self.url + "auth/token",
            data=json.dumps({"username": self.stack.username,
                             "password": self.stack.password}).encode(),
            headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())["access_token"]

    def api(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        """Call the REST API (path below /api/v2/) with a fresh token."""
        request = urllib.request.Request(
            self.url + "api/v2/" + path.lstrip("/"),
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json",
                     "Authorization": f"Bearer {self.api_token()}"},
            method=method)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def stop(self, timeout: float = 60.0) -> dict[str, int]:
        """SIGTERM the scheduler first (nothing new is queued), then the workers (they finish
        or hand back their tasks), then the rest; SIGKILL what is left after `timeout`."""
        procs = self.stack.processes
        order = (["scheduler"] + [f"worker-{w}" for w in self.workers]
                 + ["dag-processor", "api-server"])
        order += [name for name in procs if name not in order]
        return stop_process_groups(procs, order, timeout)

    def __enter__(self) -> "DistributedStack":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_distributed_stack(
    *,
    home: Path,
    metadata_url: str,
    executor: str = "CeleryExecutor",
    broker_url: str | None = None,
    workers: tuple[str, ...] = ("w1", "w2"),
    concurrency: int = 2,
    port: int | None = None,
    dags_folder: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> DistributedStack:
    """Migrate the metadata database and start api-server, scheduler, dag-processor and (for
    Celery) one `airflow celery worker` per name, each in its own process group with its log
    in `<home>/logs/vee-ui/<component>.log`. Stop with `.stop()` (or use as a context)."""
    import vee_tasks.airflow_runtime as runtime

    home = Path(home).resolve()
    port = port or free_port()
    env = distributed_env(home=home, port=port, metadata_url=metadata_url, executor=executor,
                          broker_url=broker_url, dags_folder=dags_folder, extra=extra_env)
    if executor == "CeleryExecutor" and broker_url:
        flush_redis_db(broker_url)
    log_dir = home / "logs" / "vee-ui"
    log_dir.mkdir(parents=True, exist_ok=True)
    password_file = ensure_admin_password(
        Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]))
    started_at = time.monotonic()
    migrate(env, log_dir / "migrate.log")
    stack = AirflowStack(
        url=f"http://127.0.0.1:{port}/", home=home,
        dags_folder=Path(env["AIRFLOW__CORE__DAGS_FOLDER"]), log_dir=log_dir,
        password_file=password_file, username=runtime.ADMIN_USER, started_at=started_at,
    )
    commands: dict[str, tuple[list[str], dict[str, str]]] = {
        "api-server": (["api-server", "--host", "127.0.0.1", "--port", str(port)], env),
        "scheduler": (["scheduler"], env),
        "dag-processor": (["dag-processor"], env),
    }
    if executor == "CeleryExecutor":
        for name in workers:
            worker_env = dict(env)
            worker_env["VEE_WORKER_NAME"] = name
            # Each worker serves its task logs on its own port (same machine).
            worker_env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(free_port())
            commands[f"worker-{name}"] = (
                ["celery", "worker", "--celery-hostname", f"{name}@%h",
                 "--concurrency", str(concurrency), "--without-mingle", "--without-gossip"],
                worker_env,
            )
    try:
        for name, (args, component_env) in commands.items():
            with open(log_dir / f"{name}.log", "ab") as out:
                stack.processes[name] = subprocess.Popen(
                    [sys.executable, "-m", "airflow", *args], env=component_env,
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True, preexec_fn=_die_with_parent,
                )
    except BaseException:
        DistributedStack(stack, env, metadata_url, tuple(workers)).stop(timeout=10)
        raise
    return DistributedStack(stack=stack, env=env, metadata_url=metadata_url,
                            workers=tuple(workers) if executor == "CeleryExecutor" else ())
