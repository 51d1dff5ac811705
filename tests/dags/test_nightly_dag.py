"""The nightly DAG run by the real Airflow CLI (`airflow dags test`), in a subprocess, on a
simulated warehouse with a trained champion; and the backfill's date mapping."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from vee_tasks.config import NIGHTLY_DAG_ID
from vee_tasks.features import HIST_DAYS
from vee_tasks.usage_rollup import SETTLE_DAYS
from vee_tasks.dates import read_date_for

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def airflow_env(scoring_world, tmp_path_factory):
    import os

    home = tmp_path_factory.mktemp("airflow-home")
    env = dict(os.environ)
    env.update(scoring_world.env())
    env["AIRFLOW_HOME"] = str(home)
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home / 'airflow.db'}"
    env["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    env.pop("PYTEST_CURRENT_TEST", None)
    done = subprocess.run([AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return env


def _airflow(env, *args, timeout=900):
    done = subprocess.run([AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=timeout)
    return done


def _latest_run(engine, day):
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT * FROM vee.scoring_run WHERE read_date = :d ORDER BY started_at DESC LIMIT 1"),
            {"d": day},
        ).mappings().one()


def _state(engine, day):
    with engine.connect() as conn:
        resolutions = pd.read_sql(
            sa.text("SELECT exception_id, predicted_resolution, confidence, probabilities::text AS p, "
                    "decision, model_version, dag_run_id, scored_at FROM vee.exception_resolution "
                    "WHERE read_date = :d ORDER BY exception_id"), conn, params={"d": day})
        exceptions = pd.read_sql(
            sa.text("SELECT exception_id, status, status_changed_at FROM mdm.vee_exception "
                    "WHERE read_date = :d ORDER BY exception_id"), conn, params={"d": day})
    return resolutions, exceptions


def test_dags_test_scores_the_read_date_and_a_rerun_is_identical(airflow_env, scoring_world):
    day = scoring_world.days[-6]
    engine = sa.create_engine(scoring_world.url)
    with engine.connect() as conn:
        decidable = conn.execute(sa.text(
            "SELECT count(*) FROM mdm.vee_exception WHERE read_date = :d "
            "AND status IN ('OPEN', 'AUTO_RESOLVED', 'PENDING_REVIEW')"), {"d": day}).scalar()
    assert decidable > 0

    done = _airflow(airflow_env, "dags", "test", NIGHTLY_DAG_ID, day.isoformat())
    assert done.returncode == 0, (done.stdout + done.stderr)[-5000:]
    run = _latest_run(engine, day)
    assert run["status"] == "SUCCESS", (dict(run), done.stdout[-3000:])
    assert run["selected"] == decidable
    assert run["selected"] == run["scored"] + run["quarantined"] + run["skipped_analyst"]
    assert run["model_version"] == scoring_world.version
    assert set(run["step_seconds"]) >= {"start", "resolve_champion", "extract", "validate", "finish",
                                        "score_shard_0", "refresh_usage_rollup"}
    with engine.connect() as conn:
        rolled = {r[0] for r in conn.execute(sa.text("SELECT day FROM vee.meter_daily_day"))}
    lookback = {day - dt.timedelta(days=k) for k in range(1 + SETTLE_DAYS, HIST_DAYS + 1)}
    assert lookback <= rolled  # the run rolled up its settled lookback days
    assert Path(run["dq_report_path"]).is_file()
    resolutions, exceptions = _state(engine, day)
    assert len(resolutions) == run["scored"] and resolutions["exception_id"].is_unique
    status = exceptions.set_index("exception_id")["status"]
    expected = {"AUTO_APPLY": "AUTO_RESOLVED", "REVIEW": "PENDING_REVIEW"}
    assert all(status[r.exception_id] == expected[r.decision] for r in resolutions.itertuples())

    again = _airflow(airflow_env, "dags", "test", NIGHTLY_DAG_ID, day.isoformat())
    assert again.returncode == 0, (again.stdout + again.stderr)[-5000:]
    rerun = _latest_run(engine, day)
    assert rerun["dag_run_id"] != run["dag_run_id"] and rerun["status"] == "SUCCESS"
    resolutions_2, exceptions_2 = _state(engine, day)
    pd.testing.assert_frame_equal(resolutions, resolutions_2)
    pd.testing.assert_frame_equal(exceptions, exceptions_2)
    engine.dispose()


def test_backfill_creates_exactly_the_requested_read_dates(airflow_env):
    """Airflow 3.3's backfill parses --from/--to-date in Airflow's default time zone, which the
    project sets to VEE_TIMEZONE, and takes logical dates inside [from, to] inclusive."""
    done = _airflow(airflow_env, "dags", "reserialize")
    assert done.returncode == 0, done.stderr[-3000:]
    done = _airflow(
        airflow_env, "backfill", "create", "--dag-id", NIGHTLY_DAG_ID,
        "--from-date", "2026-10-30", "--to-date", "2026-11-02", "--dry-run",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    stamps = re.findall(r"^\|\s*(\d{4}-\d{2}-\d{2}[ T][\d:.]+[+-]\d{2}:\d{2})\s*\|", done.stdout, re.M)
    dates = [read_date_for(dt.datetime.fromisoformat(s), "America/Toronto") for s in stamps]
    # spans the end of daylight saving time (November 1st has 25 hours)
    assert dates == [dt.date(2026, 10, 30), dt.date(2026, 10, 31), dt.date(2026, 11, 1), dt.date(2026, 11, 2)]
