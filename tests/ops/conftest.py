"""A simulated warehouse with a trained champion, for the operations tests (slow).

Built once per session through the command line (`vee simulate`, `vee train`) in its own
data directory and MLflow store, so that nothing another test trains can move this champion.
Each test scores a *copy* (CREATE DATABASE ... TEMPLATE), so runs never see each other's
writes and a local run can be compared with a distributed one on identical data.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

# The last three simulated read dates: the simulator leaves the last two OPEN; the fixture
# reopens the third (an MDMS whose analysts have not started on it yet).
SIM_START = dt.date(2026, 1, 5)
SIM_DAYS = 84
SCORE_DATES = [SIM_START + dt.timedelta(days=SIM_DAYS - 3 + i) for i in range(3)]
TRAIN_AS_OF = SCORE_DATES[0]


@dataclass
class ChampionWarehouse:
    server_url: str
    template: str  # database name, never connected to after it is built
    data_dir: Path
    mlflow_uri: str
    tag: str
    copies: list[str]

    def copy(self, label: str) -> str:
        """A fresh copy of the warehouse; returns its SQLAlchemy URL."""
        name = f"vee_ops_{label}_{self.tag}"
        admin = sa.create_engine(self.server_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
        admin.dispose()
        self.copies.append(name)
        return sa.engine.make_url(self.server_url).set(database=name).render_as_string(
            hide_password=False)

    def env(self, warehouse_url: str) -> dict[str, str]:
        """What every vee / Airflow process of a test needs to see this warehouse and model."""
        return {
            "VEE_WAREHOUSE_URL": warehouse_url,
            "AIRFLOW_CONN_VEE_WAREHOUSE": warehouse_url.replace(
                "postgresql+psycopg2://", "postgresql://", 1),
            "VEE_DATA_DIR": str(self.data_dir),
            "MLFLOW_TRACKING_URI": self.mlflow_uri,
            "VEE_ALERT_WEBHOOK_URL": "",
            "VEE_ALERT_EMAIL": "",
        }


    def airflow_env(self, warehouse_url: str) -> dict[str, str]:
        """env() for an Airflow installation that runs only what it is asked to (backfills,
        triggered runs): no scheduled run of the latest interval when the DAG is unpaused."""
        return {**self.env(warehouse_url), "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False"}


def vee(env_extra: dict[str, str], *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update(env_extra)
    exe = os.path.join(os.path.dirname(sys.executable), "vee")
    done = subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"vee {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="session")
def champion_warehouse(server_url, tmp_path_factory):
    tag = uuid.uuid4().hex[:8]
    template = f"vee_ops_template_{tag}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{template}"'))
    url = sa.engine.make_url(server_url).set(database=template).render_as_string(
        hide_password=False)
    data_dir = tmp_path_factory.mktemp("ops-data")
    wh = ChampionWarehouse(server_url=server_url, template=template, data_dir=data_dir,
                           mlflow_uri=f"sqlite:///{data_dir / 'mlflow.db'}", tag=tag, copies=[])
    env = wh.env(url)
    # Smaller candidates than production: this fixture needs a champion, not a good one.
    env.update({"VEE_KERAS_EPOCHS": "10", "VEE_HGB_MAX_ITER": "60"})
    try:
        vee(env, "simulate", "--meters", "150", "--days", str(SIM_DAYS),
            "--start", SIM_START.isoformat(), "--seed", "11")
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            day = SCORE_DATES[0]
            conn.execute(sa.text(
                "DELETE FROM mdm.analyst_resolution WHERE exception_id IN "
                "(SELECT exception_id FROM mdm.vee_exception WHERE read_date = :d)"), {"d": day})
            conn.execute(sa.text(
                "UPDATE mdm.vee_exception SET status = 'OPEN' WHERE read_date = :d"), {"d": day})
        engine.dispose()
        vee(env, "train", "--as-of", TRAIN_AS_OF.isoformat())
        yield wh
    finally:
        if not os.environ.get("VEE_TEST_KEEP_DATABASES"):
            with admin.connect() as conn:
                for name in [*wh.copies, template]:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def scoring_counts(url: str, dates) -> dict:
    """Per read date: the run record's counts and the decisions written, for comparisons."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            runs = conn.execute(sa.text(
                "SELECT read_date, status, selected, scored, quarantined, auto_applied,"
                " sent_to_review, skipped_analyst, model_version FROM vee.scoring_run"
                " WHERE read_date = ANY(:d) ORDER BY read_date"), {"d": list(dates)}
            ).mappings().all()
            decisions = conn.execute(sa.text(
                "SELECT read_date, decision, predicted_resolution, count(*) AS n"
                " FROM vee.exception_resolution GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")).all()
            statuses = conn.execute(sa.text(
                "SELECT read_date, status, count(*) FROM mdm.vee_exception"
                " WHERE read_date = ANY(:d) GROUP BY 1, 2 ORDER BY 1, 2"), {"d": list(dates)}).all()
        return {
            "runs": [dict(r) for r in runs],
            "decisions": [tuple(r) for r in decisions],
            "statuses": [tuple(r) for r in statuses],
        }
    finally:
        engine.dispose()


def decisions_by_exception(url: str) -> dict[int, tuple]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT r.exception_id, r.read_date, r.predicted_resolution, r.decision,"
                " round(r.confidence::numeric, 6), r.model_version, e.status"
                " FROM vee.exception_resolution r JOIN mdm.vee_exception e USING (exception_id)"
            )).all()
        return {r[0]: tuple(r[1:]) for r in rows}
    finally:
        engine.dispose()
