"""`dag.test()` of vee_weekly_retraining on the small simulated warehouse.

Runs in a subprocess with its own Airflow home (metadata database migrated there), its own
MLflow registry and data directory, so that it neither needs nor touches a developer's
Airflow installation. Small candidates (few epochs, few trees) keep it to a few minutes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from vee_tasks.config import DAGS_DIR, WEEKLY_DAG_ID

pytestmark = pytest.mark.slow

LOGICAL_DATE = "2026-03-30"  # conftest's simulation: 84 days from 2026-01-05

SCRIPT = textwrap.dedent(
    f"""
    import datetime as dt, json, runpy
    dag = runpy.run_path({str(DAGS_DIR / "vee_weekly_retraining.py")!r})["weekly_dag"]
    assert dag.dag_id == {WEEKLY_DAG_ID!r}
    run = dag.test(logical_date=dt.datetime.fromisoformat({LOGICAL_DATE!r}).replace(tzinfo=dt.timezone.utc))
    states = {{ti.task_id: str(ti.state) for ti in run.get_task_instances()}}
    from vee_tasks import registry
    try:
        champion = registry.resolve_champion_version()
    except registry.NoChampionError:
        champion = None
    print("RESULT " + json.dumps({{"run_id": run.run_id, "state": str(run.state), "tasks": states,
                                   "champion": champion}}))
    """
)


def _run_dag(env: dict) -> dict:
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=1800)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, (done.stdout[-3000:], done.stderr[-5000:])
    return {**json.loads(lines[-1][len("RESULT "):]), "output": done.stdout + done.stderr}


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory, simulated_warehouse_url):
    root = tmp_path_factory.mktemp("weekly_dag")
    env = dict(os.environ)
    env.update(
        AIRFLOW_HOME=str(root / "airflow"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS_DIR),
        VEE_DATA_DIR=str(root / "data"),
        MLFLOW_TRACKING_URI=f"sqlite:///{root / 'mlflow.db'}",
        VEE_WAREHOUSE_URL=simulated_warehouse_url,
        AIRFLOW_CONN_VEE_WAREHOUSE=simulated_warehouse_url.replace("postgresql+psycopg2://", "postgresql://"),
        VEE_KERAS_EPOCHS="3",
        VEE_HGB_MAX_ITER="30",
        VEE_MIN_TRAINING_LABELS="50",
    )
    env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)
    airflow = Path(sys.executable).parent / "airflow"
    migrate = subprocess.run([str(airflow), "db", "migrate"], env=env, capture_output=True,
                             text=True, timeout=600)
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    return env, root


@pytest.fixture(scope="module")
def dag_run(airflow_env):
    env, root = airflow_env
    return _run_dag(env), root


def test_every_step_succeeds_and_a_champion_is_registered(dag_run):
    result, _ = dag_run
    assert result["state"] == "success"
    assert result["tasks"] == {
        task: "success"
        for task in ("extract_labels", "build_features", "validate", "train_sklearn",
                     "train_keras", "evaluate", "register_and_promote")
    }
    assert result["champion"] == "1"


def test_the_task_log_shows_the_holdout_metrics_behind_the_decision(dag_run):
    """The table `vee train` prints is in the evaluate task's log too: an operator reading
    the run in the UI saw only the decision's line (outside probe, 2026-11-28)."""
    result, _ = dag_run
    output = result["output"]
    assert "holdout metrics (" in output
    table = output[output.index("holdout metrics ("):]
    assert "macro_f1" in table
    for row in ("baseline", "sklearn", "keras"):
        assert f"\n{row} " in table, row


def test_run_left_its_files_and_its_record(dag_run, simulated_warehouse_url):
    result, root = dag_run
    runs = list((root / "data" / "runs").iterdir())
    assert len(runs) == 1
    run_dir = runs[0]
    for name in ("labels.parquet", "training.parquet", "quality.json", "evaluation.json",
                 "registration.json", "candidates/sklearn/model/meta.json",
                 "candidates/keras/model/model.keras"):
        assert (run_dir / name).exists(), name
    context = json.loads((run_dir / "context.json").read_text())
    assert context["as_of"] == LOGICAL_DATE  # logical date D trains on labels before D
    reports = list((root / "data" / "reports" / "training" / LOGICAL_DATE).glob("*/index.html"))
    assert reports
    engine = sa.create_engine(simulated_warehouse_url)
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT status, model_version, decision FROM vee.training_run "
                    "WHERE run_id = :r"), {"r": result["run_id"]}
        ).one()
    engine.dispose()
    assert tuple(row) == ("SUCCESS", "1", "champion")


def test_too_few_labels_fail_the_first_task_and_are_recorded(airflow_env, simulated_warehouse_url, tmp_path):
    env, _ = airflow_env
    env = dict(env, VEE_MIN_TRAINING_LABELS="1000000000", VEE_DATA_DIR=str(tmp_path / "data"),
               MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    result = _run_dag(env)
    assert result["state"] == "failed"
    assert result["tasks"]["extract_labels"] == "failed"
    assert result["tasks"]["register_and_promote"] in ("upstream_failed", "None")
    assert result["champion"] is None
    engine = sa.create_engine(simulated_warehouse_url)
    with engine.connect() as conn:
        status, message = conn.execute(
            sa.text("SELECT status, message FROM vee.training_run WHERE run_id = :r"),
            {"r": result["run_id"]},
        ).one()
    engine.dispose()
    assert status == "FAILED" and "VEE_MIN_TRAINING_LABELS" in message
