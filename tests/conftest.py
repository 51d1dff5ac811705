"""Shared fixtures: a real PostgreSQL warehouse per test session, and isolated state dirs.

The server is `VEE_TEST_WAREHOUSE_URL` (CI: the machine's PostgreSQL on 127.0.0.1:5432) or,
when unset, the embedded pip-installed PostgreSQL under var/test-pgserver. Each session
creates its own databases on that server, so tests never touch a developer's warehouse.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

PROJECT_DIR = Path(__file__).resolve().parent.parent

# Isolate every piece of state before vee_tasks reads its settings.
_STATE = Path(tempfile.mkdtemp(prefix="vee-test-"))
os.environ["VEE_DATA_DIR"] = str(_STATE)
os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{_STATE / 'mlflow.db'}"
os.environ.pop("AIRFLOW_CONN_VEE_WAREHOUSE", None)
os.environ.pop("VEE_WAREHOUSE_URL", None)
# Small simulated days still spread over VEE_SHARD_COUNT shards, so that the tests exercise
# several shards (production sizes the shards to the day's volume; tests/test_scoring.py).
os.environ["VEE_SHARD_MIN_ROWS"] = "1"

from vee_tasks import migrations  # noqa: E402
from vee_tasks.warehouse import dispose_engines, start_embedded_postgres  # noqa: E402
from warehouse_env import use_warehouse  # noqa: E402,F401 - re-exported for fixtures

SESSION_TAG = uuid.uuid4().hex[:8]


def _server_url() -> str:
    url = os.environ.get("VEE_TEST_WAREHOUSE_URL")
    if url:
        return url.replace("postgresql://", "postgresql+psycopg2://", 1)
    return start_embedded_postgres(PROJECT_DIR / "var" / "test-pgserver")


@pytest.fixture(scope="session")
def server_url() -> str:
    return _server_url()


class DatabaseFactory:
    """Creates throw-away databases on the test server; drops them at the end."""

    def __init__(self, server: str):
        self.server = sa.engine.make_url(server)
        self.admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
        self.created: list[str] = []

    def create(self, label: str) -> str:
        name = f"vee_test_{label}_{SESSION_TAG}"
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return self.server.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        dispose_engines()
        with self.admin.connect() as conn:
            for name in self.created:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture(scope="session")
def databases(server_url):
    factory = DatabaseFactory(server_url)
    yield factory
    if not os.environ.get("VEE_TEST_KEEP_DATABASES"):
        factory.drop_all()




@pytest.fixture(scope="session")
def empty_warehouse_url(databases) -> str:
    """A database with the mdm and vee schemas and no rows."""
    url = databases.create("empty")
    migrations.upgrade(sa.create_engine(url), with_mdm=True)
    return url


@pytest.fixture
def empty_engine(empty_warehouse_url):
    use_warehouse(empty_warehouse_url)
    engine = sa.create_engine(empty_warehouse_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def state_dir() -> Path:
    return _STATE


# A small simulated warehouse shared by the training and scoring tests (built once).
SIM_METERS = 150
SIM_DAYS = 84
SIM_START = "2026-01-05"
SIM_SEED = 11


@pytest.fixture(scope="session")
def simulated_warehouse_url(databases) -> str:
    import datetime as dt

    from vee_tasks.simulator import SimulationConfig, simulate

    url = databases.create("sim")
    engine = sa.create_engine(url)
    migrations.upgrade(engine, with_mdm=True)
    simulate(
        engine,
        SimulationConfig(
            meters=SIM_METERS, days=SIM_DAYS, start=dt.date.fromisoformat(SIM_START), seed=SIM_SEED
        ),
    )
    engine.dispose()
    return url


@pytest.fixture
def simulated_engine(simulated_warehouse_url):
    use_warehouse(simulated_warehouse_url)
    engine = sa.create_engine(simulated_warehouse_url)
    yield engine
    engine.dispose()


# Nightly scoring fixtures (a simulated warehouse with a trained champion, shared by
# tests/test_scoring.py and tests/dags/test_nightly_dag.py: defined once, built once).
from scoring_fixtures import fresh_engine, scoring_world, world_engine  # noqa: E402,F401
