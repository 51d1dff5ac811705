"""Helpers and fixtures for the nightly scoring tests.

`seed_day` writes meters and exceptions straight into the mdm tables (hand-made, so each test
knows exactly what it selected); `trained_champion_url` is a simulated warehouse with a
champion trained by the real training pipeline (built once per session).
"""

from __future__ import annotations

import datetime as dt
import os
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from vee_tasks import migrations
from vee_tasks.config import RULE_CODES

TZ = "America/Toronto"


def local(day: dt.date, hour: float) -> dt.datetime:
    """`hour` elapsed hours after local midnight of `day` (23 or 25 in a DST day), in UTC."""
    base = dt.datetime.combine(day, dt.time(0, 0), tzinfo=ZoneInfo(TZ)).astimezone(dt.timezone.utc)
    return base + dt.timedelta(hours=hour)


def seed_meters(conn, count: int, prefix: str = "M") -> list[str]:
    ids = [f"{prefix}{i:05d}" for i in range(count)]
    conn.execute(
        sa.text(
            "INSERT INTO mdm.meter (meter_id, service_point_id, customer_class, meter_kind, "
            "multiplier, interval_minutes, has_der, region, installed_on) "
            "VALUES (:m, :sp, 'RES', 'AMI_1PH', 1, 60, false, 'R1', DATE '2020-01-01') "
            "ON CONFLICT DO NOTHING"
        ),
        [{"m": m, "sp": f"SP-{m}"} for m in ids],
    )
    return ids


def seed_day(
    conn,
    day: dt.date,
    meters: list[str],
    per_meter: int = 1,
    first_id: int = 1,
    status: str = "OPEN",
) -> list[int]:
    """Valid exceptions on `day` for each meter; returns their ids."""
    rows = []
    next_id = first_id
    for i, meter in enumerate(meters):
        for k in range(per_meter):
            rule = RULE_CODES[(i + k) % len(RULE_CODES)]
            start = local(day, 1 + (i + k) % 20)
            rows.append(
                {
                    "id": next_id,
                    "m": meter,
                    "rule": rule,
                    "d": day,
                    "ws": start,
                    "we": start + dt.timedelta(hours=2),
                    "obs": 10.0 + i,
                    "exp": None if rule == "GAP" else 5.0,
                    "rv": f"{rule}/1",
                    "raised": local(day, 26),
                    "status": status,
                }
            )
            next_id += 1
    insert_exceptions(conn, rows)
    return [r["id"] for r in rows]


def insert_exceptions(conn, rows: list[dict]) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO mdm.vee_exception (exception_id, meter_id, rule_code, read_date, "
            "window_start, window_end, observed_value, expected_value, rule_version, raised_at, "
            "status, status_changed_at) VALUES (:id, :m, :rule, :d, :ws, :we, :obs, :exp, :rv, "
            ":raised, :status, :raised)"
        ),
        rows,
    )


def relax_contract(conn) -> None:
    """Make this database behave like a warehouse that does not enforce the contract
    (no primary key on exception ids, no meter foreign key), to stage duplicates and
    unknown meters directly."""
    conn.exec_driver_sql(
        "ALTER TABLE mdm.analyst_resolution DROP CONSTRAINT IF EXISTS analyst_resolution_exception_id_fkey"
    )
    conn.exec_driver_sql("ALTER TABLE mdm.vee_exception DROP CONSTRAINT IF EXISTS vee_exception_meter_id_fkey")
    conn.exec_driver_sql("ALTER TABLE mdm.vee_exception DROP CONSTRAINT IF EXISTS vee_exception_pkey")


@pytest.fixture
def fresh_engine(databases, request):
    """A new empty warehouse (mdm + vee) for one test that changes the schema or rows."""
    from warehouse_env import use_warehouse

    label = "sc" + str(abs(hash(request.node.name)) % 10**8)
    url = databases.create(label)
    engine = sa.create_engine(url)
    migrations.upgrade(engine, with_mdm=True)
    use_warehouse(url)
    yield engine
    engine.dispose()


def env_for_subprocess(url: str, state_dir) -> dict:
    env = dict(os.environ)
    env["VEE_WAREHOUSE_URL"] = url
    env["AIRFLOW_CONN_VEE_WAREHOUSE"] = url.replace("postgresql+psycopg2://", "postgresql://")
    return env


# --- a simulated warehouse with a trained champion ---------------------------------------

WORLD_METERS = 200
WORLD_DAYS = 84
WORLD_START = dt.date(2026, 1, 5)
WORLD_SEED = 23
REOPENED_DAYS = 7
# Small, fast candidates: the tests check the nightly path, not the model's quality.
FAST_TRAINING_ENV = {
    "VEE_KERAS_EPOCHS": "3",
    "VEE_HGB_MAX_ITER": "30",
    "VEE_MIN_TRAINING_LABELS": "50",
}


class ScoringWorld:
    """A simulated warehouse whose last REOPENED_DAYS read dates analysts have not worked yet
    (their exceptions OPEN, no labels), and a champion trained on the labels before them."""

    def __init__(self, url: str, mlflow_uri: str, data_dir, days: list[dt.date], version: str):
        self.url = url
        self.mlflow_uri = mlflow_uri
        self.data_dir = data_dir
        self.days = days
        self.version = version
        # A copy taken as built, which no test writes to: the source of the robustness
        # tests' private copies, so they start from the same state whichever tests ran before
        # (the shared world is scored by tests/test_scoring.py: faults run after it found 7
        # resolution rows where they expected none).
        self.pristine_url = url

    def env(self) -> dict[str, str]:
        return {
            "VEE_WAREHOUSE_URL": self.url,
            "AIRFLOW_CONN_VEE_WAREHOUSE": self.url.replace("postgresql+psycopg2://", "postgresql://"),
            "MLFLOW_TRACKING_URI": self.mlflow_uri,
            "VEE_DATA_DIR": str(self.data_dir),
            "VEE_TIMEZONE": TZ,
            **FAST_TRAINING_ENV,
        }


def _apply_env(mp: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    from vee_tasks import registry
    from vee_tasks.config import reset_settings_cache

    for key, value in env.items():
        mp.setenv(key, value)
    reset_settings_cache()
    registry.clear_cache()


_WORLDS_BUILT: list[bool] = []


@pytest.fixture(scope="session")
def scoring_world(databases, tmp_path_factory) -> ScoringWorld:
    from vee_tasks.config import reset_settings_cache
    from vee_tasks.simulator import SimulationConfig, simulate
    from vee_tasks.training.pipeline import train

    # One world per session, from conftest.py: a test module importing this fixture got an
    # instance of its own, which dropped and rebuilt the same database under the first
    # instance's registry (found when versions began to record their warehouse).
    assert not _WORLDS_BUILT, "scoring_world built twice: import it only in conftest.py"
    _WORLDS_BUILT.append(True)
    root = tmp_path_factory.mktemp("scoring-world")
    url = databases.create("scoring")
    engine = sa.create_engine(url)
    migrations.upgrade(engine, with_mdm=True)
    simulate(engine, SimulationConfig(meters=WORLD_METERS, days=WORLD_DAYS, start=WORLD_START, seed=WORLD_SEED))
    last = WORLD_START + dt.timedelta(days=WORLD_DAYS - 1)
    days = [last - dt.timedelta(days=k) for k in range(REOPENED_DAYS - 1, -1, -1)]
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "DELETE FROM mdm.analyst_resolution WHERE exception_id IN "
                "(SELECT exception_id FROM mdm.vee_exception WHERE read_date >= :d)"
            ),
            {"d": days[0]},
        )
        conn.execute(
            sa.text("UPDATE mdm.vee_exception SET status = 'OPEN' WHERE read_date >= :d"),
            {"d": days[0]},
        )
    world = ScoringWorld(url, f"sqlite:///{root / 'mlflow.db'}", root / "data", days, "")
    mp = pytest.MonkeyPatch()
    try:
        _apply_env(mp, world.env())
        result = train(engine, as_of=days[0], run_id="scoring_champion")
        world.version = str(result.registration["version"])
    finally:
        mp.undo()
        reset_settings_cache()
        engine.dispose()
    from robustness_support import clone_database

    world.pristine_url = clone_database(databases, url, "scoring_pristine")
    return world


@pytest.fixture
def world_engine(scoring_world, monkeypatch):
    """The world's engine, with the environment (registry, data dir) pointed at it."""
    from vee_tasks import registry
    from vee_tasks.config import reset_settings_cache

    _apply_env(monkeypatch, scoring_world.env())
    engine = sa.create_engine(scoring_world.url)
    yield engine
    engine.dispose()
    reset_settings_cache()
    registry.clear_cache()
