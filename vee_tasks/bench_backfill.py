"""`vee bench --backfill`: a 30-day backfill of 20,000 exceptions a day through Airflow.

The warehouse is built like `vee bench`'s (vee_tasks/bench.py), in its own database, with
`--exceptions` OPEN exceptions on each of `--days` read dates ending at `--read-date`, and the
reads of those dates and their usage lookback. The usage rollup is left as the nights before
the first date would have left it. Then a real Airflow installation runs: api-server,
scheduler and dag-processor with the LocalExecutor and a PostgreSQL metadata database of its
own on the configured server; `airflow backfill create` asks for the read dates and the
clock runs until the scheduler has finished every run. Prints wall clock, exceptions per
second and the per-run figures from vee.scoring_run. Not a test: the target is printed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import statistics
import time
from dataclasses import dataclass

import sqlalchemy as sa

from vee_tasks.bench import (
    BenchConfig,
    bench_url,
    build_warehouse,
    ensure_bench_model,
    prepare_usage_rollup,
    reset_read_dates,
)
from vee_tasks.config import NIGHTLY_DAG_ID, get_settings
from vee_tasks.warehouse import execute_sql_file

log = logging.getLogger(__name__)

TARGET_SECONDS = 15 * 60
# A window without a daylight-saving change (the bench's reads assume 24 local hours a day).
DEFAULT_LAST_DATE = dt.date(2026, 2, 28)
METADATA_DATABASE = "vee_bench_airflow"


def backfill_config(
    meters: int = 50_000,
    exceptions_per_day: int = 20_000,
    days: int = 30,
    last_date: dt.date = DEFAULT_LAST_DATE,
    database: str = "vee_bench_backfill",
    rebuild: bool = False,
) -> BenchConfig:
    return BenchConfig(
        meters=meters,
        exceptions=exceptions_per_day,
        read_date=last_date,
        exception_days=days,
        database=database,
        rebuild=rebuild,
    )


@dataclass
class BackfillReport:
    config: dict
    build_seconds: float
    wall_seconds: float
    max_active_runs: int
    runs: list[dict]

    @property
    def exceptions(self) -> int:
        return sum(r["selected"] for r in self.runs)

    def describe(self) -> str:
        ok = [r for r in self.runs if r["status"] == "SUCCESS"]
        run_seconds = [r["seconds"] for r in self.runs if r["seconds"] is not None]
        lines = [
            f"vee bench --backfill: {len(self.runs)} read dates "
            f"{self.config['first_date']}..{self.config['last_date']}, "
            f"{int(self.config['exceptions']):,} exceptions a day over "
            f"{int(self.config['meters']):,} meters (warehouse build {self.build_seconds:.0f}s"
            f"{', reused' if self.build_seconds == 0 else ''})",
            f"  Airflow LocalExecutor, backfill max_active_runs {self.max_active_runs}: "
            f"{len(ok)}/{len(self.runs)} runs SUCCESS",
            f"  wall clock {self.wall_seconds:.1f}s = {self.wall_seconds / 60:.1f} min "
            f"(target < {TARGET_SECONDS / 60:.0f} min: "
            f"{'met' if self.wall_seconds < TARGET_SECONDS and len(ok) == len(self.runs) else 'MISSED'})",
            f"  {self.exceptions:,} exceptions scored or quarantined = "
            f"{self.exceptions / self.wall_seconds:,.0f} exceptions/s through Airflow",
        ]
        if run_seconds:
            lines.append(
                f"  one run (first task start to finish record): median "
                f"{statistics.median(run_seconds):.1f}s, max {max(run_seconds):.1f}s"
            )
        return "\n".join(lines)

    def as_json(self) -> str:
        return json.dumps(
            {
                "config": self.config,
                "build_seconds": self.build_seconds,
                "wall_seconds": self.wall_seconds,
                "max_active_runs": self.max_active_runs,
                "exceptions": self.exceptions,
                "runs": self.runs,
            },
            indent=2,
            default=str,
        )


def run_backfill_bench(
    config: BenchConfig, max_active_runs: int = 2, progress: bool = True
) -> BackfillReport:
    from vee_tasks.celery_runtime import create_database, drop_database, start_distributed_stack
    from vee_tasks.config import reset_settings_cache

    say = (lambda msg: print(msg, flush=True)) if progress else log.info
    settings = get_settings()
    admin_url, url = bench_url(settings, config.database)
    bench_dir = settings.data_dir / "bench"
    bench_dir.mkdir(parents=True, exist_ok=True)
    mlflow_uri = f"sqlite:///{bench_dir / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = mlflow_uri
    os.environ.pop("MLFLOW_REGISTRY_URI", None)
    reset_settings_cache()
    settings = get_settings()
    dates = config.exception_dates
    say(
        f"[bench] warehouse {config.database}: {config.exceptions:,} exceptions on each of "
        f"{len(dates)} read dates, {config.meters:,} meters"
    )
    build_seconds = build_warehouse(admin_url, url, config, settings.timezone)
    say("[bench] bench model (trained once on a small simulated warehouse)")
    version = ensure_bench_model(admin_url, config, settings, url)
    engine = sa.create_engine(url)
    from vee_tasks import migrations

    migrations.upgrade(engine, with_mdm=True)
    say(f"[bench] resetting {dates[0]}..{dates[-1]} (model v{version})")
    reset_read_dates(engine, dates)
    prepare_usage_rollup(engine, dates[0], settings.timezone, say)

    warehouse_url = sa.engine.make_url(url).render_as_string(hide_password=False)
    metadata_url = create_database(admin_url, METADATA_DATABASE)
    extra_env = {
        "VEE_WAREHOUSE_URL": warehouse_url,
        "AIRFLOW_CONN_VEE_WAREHOUSE": warehouse_url.replace("postgresql+psycopg2://", "postgresql://", 1),
        "MLFLOW_TRACKING_URI": mlflow_uri,
        "VEE_DATA_DIR": str(settings.data_dir),
        # the lean bench history (few exceptions before the first date) would trip the
        # day-over-day volume gate, which is not what is measured here
        "VEE_MAX_VOLUME_RATIO": "inf",
        "VEE_ALERT_WEBHOOK_URL": "",
        "VEE_ALERT_EMAIL": "",
        # only what is asked: no scheduled run of the latest interval on unpause
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
    }
    say("[bench] starting Airflow (api-server, scheduler, dag-processor; LocalExecutor)")
    stack = start_distributed_stack(
        home=bench_dir / "airflow-backfill",
        metadata_url=metadata_url,
        executor="LocalExecutor",
        extra_env=extra_env,
    )
    since = dt.datetime.now(dt.timezone.utc)
    try:
        stack.wait_for_dag(NIGHTLY_DAG_ID)
        stack.airflow("dags", "unpause", NIGHTLY_DAG_ID)
        say(f"[bench] airflow backfill create {dates[0]}..{dates[-1]} --max-active-runs {max_active_runs}")
        started = time.monotonic()
        stack.airflow(
            "backfill", "create", "--dag-id", NIGHTLY_DAG_ID,
            "--from-date", dates[0].isoformat(), "--to-date", dates[-1].isoformat(),
            "--max-active-runs", str(max_active_runs),
        )
        stack.wait_for_runs(
            NIGHTLY_DAG_ID, len(dates), timeout=3 * TARGET_SECONDS,
            where=lambda r: r["run_type"] == "backfill",
        )
        wall = time.monotonic() - started
    finally:
        stack.stop()
        drop_database(admin_url, METADATA_DATABASE)

    with engine.connect() as conn:
        rows = execute_sql_file(
            conn, "queries/bench_backfill_runs.sql", {"first": dates[0], "last": dates[-1], "since": since}
        ).mappings().all()
    engine.dispose()
    runs = [
        {
            **{k: v for k, v in r.items() if k not in ("started_at", "finished_at")},
            "seconds": (r["finished_at"] - r["started_at"]).total_seconds() if r["finished_at"] else None,
        }
        for r in rows
    ]
    report = BackfillReport(
        config={
            "meters": config.meters,
            "exceptions": config.exceptions,
            "first_date": dates[0].isoformat(),
            "last_date": dates[-1].isoformat(),
            "database": config.database,
        },
        build_seconds=build_seconds,
        wall_seconds=wall,
        max_active_runs=max_active_runs,
        runs=runs,
    )
    (bench_dir / "last_backfill_report.json").write_text(report.as_json(), encoding="utf-8")
    return report
