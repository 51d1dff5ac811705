"""`vee demo`: the whole loop on one machine, from nothing.

Embedded (or configured) warehouse -> schema -> simulated MDMS -> weekly training and
registration -> the nightly DAG for the latest read date, run by Airflow (`airflow dags test`)
-> a summary that says where to look next.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time

from vee_tasks.config import NIGHTLY_DAG_ID, get_settings
from vee_tasks.warehouse import execute_sql_file

DEMO_START = dt.date(2026, 6, 1)


def _step(number: int, total: int, text: str) -> float:
    print(f"\n[{number}/{total}] {text}", flush=True)
    return time.monotonic()


def _done(started: float) -> None:
    print(f"      done in {time.monotonic() - started:.0f} s", flush=True)


def _airflow_env(url: str) -> dict[str, str]:
    """Environment for the Airflow subprocess: same warehouse, registry and data dir."""
    settings = get_settings()
    env = dict(os.environ)
    env["VEE_WAREHOUSE_URL"] = url
    env.setdefault("MLFLOW_TRACKING_URI", settings.tracking_uri)
    env.setdefault("VEE_DATA_DIR", str(settings.data_dir))
    return env


def _airflow_bin() -> str:
    candidate = os.path.join(os.path.dirname(sys.executable), "airflow")
    return candidate if os.path.exists(candidate) else "airflow"


def run_demo(meters: int = 2000, days: int = 120, seed: int = 7) -> int:
    from vee_tasks import migrations
    from vee_tasks.simulator import SimulationConfig, simulate
    from vee_tasks.training.pipeline import train
    from vee_tasks.warehouse import check_reachable, describe_target, get_engine, warehouse_url

    settings = get_settings()
    total = 5
    config = SimulationConfig(meters=meters, days=days, start=DEMO_START, seed=seed)
    config.validate()
    last_read_date = DEMO_START + dt.timedelta(days=days - 1)

    started = _step(1, total, "warehouse")
    url = warehouse_url(settings, make_embedded=True)
    engine = get_engine(settings, make_embedded=True)
    check_reachable(engine)
    kind = "configured server" if settings.warehouse_url else "embedded PostgreSQL"
    print(f"      {kind} at {describe_target(engine.url.render_as_string(hide_password=True))}")
    applied = migrations.upgrade(engine, with_mdm=True)
    print(f"      schema up to date ({len(applied)} migration(s) applied)")
    _done(started)

    started = _step(2, total, f"simulating the MDMS: {meters} meters x {days} days from {DEMO_START}")
    summary = simulate(engine, config, replace=True, progress=True)
    print(summary.describe())
    _done(started)

    as_of = last_read_date + dt.timedelta(days=1)
    started = _step(3, total, f"weekly retraining as of {as_of} (labels resolved before it)")
    # A run of its own each time: the warehouse was just simulated again (perhaps with
    # another seed), so an earlier demo's training run is not this one.
    run_id = f"demo__{as_of.isoformat()}__{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}"
    result = train(engine, as_of=as_of, progress=True, run_id=run_id)
    print(result.describe())
    _done(started)

    started = _step(4, total, f"nightly DAG {NIGHTLY_DAG_ID} for read date {last_read_date}")
    command = [_airflow_bin(), "dags", "test", NIGHTLY_DAG_ID, last_read_date.isoformat()]
    print("      $ " + " ".join(command), flush=True)
    log_path = settings.data_dir / "demo-nightly.log"
    with open(log_path, "w") as log_file:
        done = subprocess.run(command, env=_airflow_env(url), stdout=log_file, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        print(f"vee: error: the nightly run failed; its log is {log_path}", file=sys.stderr)
        return 1
    _done(started)

    _step(5, total, "summary")
    print(_summary(engine, last_read_date, settings, log_path))
    return 0


def _summary(engine, read_date: dt.date, settings, log_path) -> str:
    with engine.connect() as conn:
        run = execute_sql_file(
            conn, "queries/demo_latest_run.sql", {"read_date": read_date}).mappings().first()
        by_code = execute_sql_file(
            conn, "queries/demo_resolution_counts.sql", {"read_date": read_date}).fetchall()
    lines = [f"Read date {read_date}:"]
    if run:
        lines += [
            f"  run {run['dag_run_id']} ({run['status']}), model {run['model_name']} "
            f"v{run['model_version']}",
            f"  selected {run['selected']}  scored {run['scored']}  quarantined {run['quarantined']}",
            f"  auto-applied {run['auto_applied']}  sent to review {run['sent_to_review']}",
            f"  data quality: {run['dq_outcome']}  report: {run['dq_report_path']}",
        ]
    for code, decision, n in by_code:
        lines.append(f"    {code:<12} {decision:<10} {n}")
    lines += [
        "",
        "Where to look next:",
        f"  the nightly run's log        {log_path}",
        "  data-quality reports         vee reports",
        "  the Airflow UI (both DAGs)   vee ui   (or make ui)",
        f"  the model registry           mlflow ui --backend-store-uri {settings.tracking_uri_shown}",
        "  the warehouse                psql \"$(vee db url)\"  (tables vee.exception_resolution, "
        "vee.quarantined_exception, vee.scoring_run)",
    ]
    return "\n".join(lines)
