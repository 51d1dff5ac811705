"""`vee bench`: the nightly scoring path at scale, timed per step, against an I/O floor.

Builds (once, then reuses) a warehouse in its own database with `--exceptions` OPEN
exceptions on one read date over `--meters` hourly meters, with the reads, weather, earlier
exceptions and analyst resolutions that the features look back on (generated in PostgreSQL
with generate_series, two loaders in parallel). A model is trained with the real training
pipeline on a small simulated warehouse and registered in a bench-only MLflow registry.
Then the nightly path runs through the scoring step functions that the DAG calls, each step
timed, and the same volume goes through the fastest bulk path psycopg2 offers (binary COPY
out of the exceptions, binary COPY in of as many result rows): the floor. Prints exceptions
per second, the ratio to the floor and the peak RSS of the process and its children.
Not a test: the targets are printed, not asserted.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import resource
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import sqlalchemy as sa

from vee_tasks.config import Settings, get_settings
from vee_tasks.warehouse import execute_sql_file

log = logging.getLogger(__name__)

BENCH_DATABASE = "vee_bench"
# Far from daylight-saving changes, so hour k of the generated series is local hour k % 24.
DEFAULT_READ_DATE = dt.date(2026, 2, 10)
EXCEPTION_ID_BASE = 1_000_000_000
TARGET_RATE = 10_000  # exceptions per second, end to end
TARGET_RSS_GB = 4.0
TARGET_FLOOR_RATIO = 10.0


@dataclass(frozen=True)
class BenchConfig:
    meters: int = 200_000
    exceptions: int = 1_000_000
    read_date: dt.date = DEFAULT_READ_DATE
    history_days: int = 60  # of earlier, analyst-resolved exceptions
    history_exceptions: int | None = None  # default meters // 2
    read_days: int | None = None  # days of reads before the read date; default HIST_DAYS
    loaders: int = 2
    database: str = BENCH_DATABASE
    rebuild: bool = False
    train_meters: int = 300
    train_days: int = 70

    @property
    def build_spec(self) -> dict:
        """What identifies a built warehouse (a different spec rebuilds it)."""
        from vee_tasks.features import HIST_DAYS

        return {
            "meters": self.meters,
            "exceptions": self.exceptions,
            "read_date": self.read_date.isoformat(),
            "history_days": self.history_days,
            "history_exceptions": self.history_exceptions_n,
            "read_days": self.read_days or HIST_DAYS,
            "generator": 1,
        }

    @property
    def history_exceptions_n(self) -> int:
        return self.history_exceptions if self.history_exceptions is not None else self.meters // 2


# --- peak memory -----------------------------------------------------------------------


class PeakRss:
    """Samples the RSS of this process plus its children; also reads getrusage maxima."""

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        import psutil

        proc = psutil.Process()
        total = proc.memory_info().rss
        for child in proc.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakRss":
        self.peak = self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())

    @staticmethod
    def rusage_peak_bytes() -> int:
        """Largest maxrss of this process and of any waited-for child (Linux: KiB)."""
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        return max(own, kids) * 1024


# --- the warehouse ---------------------------------------------------------------------


def bench_url(settings: Settings, database: str) -> tuple[str, str]:
    """(admin URL of the server, URL of the bench database) on the configured server."""
    from vee_tasks.warehouse import warehouse_url

    server = sa.engine.make_url(warehouse_url(settings))
    return (
        server.render_as_string(hide_password=False),
        server.set(database=database).render_as_string(hide_password=False),
    )


def _stored_spec(url: str) -> dict | None:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if conn.exec_driver_sql("SELECT to_regclass('public.bench_build')").scalar() is None:
                return None
            row = conn.exec_driver_sql("SELECT spec FROM public.bench_build").first()
            return dict(row[0]) if row else None
    except sa.exc.OperationalError:
        return None
    finally:
        engine.dispose()


def build_warehouse(admin_url: str, url: str, config: BenchConfig, tz: str) -> float:
    """Create the bench database and fill it; returns seconds (0 when reused)."""
    from vee_tasks import migrations
    from vee_tasks.features import HIST_DAYS

    if not config.rebuild and _stored_spec(url) == config.build_spec:
        log.info("reusing the bench warehouse %s", config.database)
        return 0.0
    started = time.perf_counter()
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        ident = conn.dialect.identifier_preparer.quote(config.database)
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {ident} WITH (FORCE)")
        conn.exec_driver_sql(f"CREATE DATABASE {ident}")
    admin.dispose()
    engine = sa.create_engine(url)
    migrations.upgrade(engine, with_mdm=True)
    read_days = config.read_days or HIST_DAYS
    first_day = config.read_date - dt.timedelta(days=read_days)
    hours = (read_days + 1) * 24
    with engine.begin() as conn:
        # Bulk load: no per-row index or foreign-key upkeep and no WAL for the reads; the
        # primary key is built once at the end. The nightly path only reads this table.
        conn.exec_driver_sql("ALTER TABLE mdm.interval_read DROP CONSTRAINT interval_read_pkey")
        conn.exec_driver_sql(
            "ALTER TABLE mdm.interval_read DROP CONSTRAINT interval_read_meter_id_fkey"
        )
        conn.exec_driver_sql("ALTER TABLE mdm.interval_read SET UNLOGGED")
        execute_sql_file(conn, "queries/bench_meters.sql", {"meters": config.meters})
        execute_sql_file(
            conn,
            "queries/bench_weather.sql",
            {
                "first_day": config.read_date - dt.timedelta(days=max(read_days, 120)),
                "last_day": config.read_date + dt.timedelta(days=1),
            },
        )
    log.info("meters and weather in %.1fs", time.perf_counter() - started)

    first_start = (
        dt.datetime.combine(first_day, dt.time())
        .replace(tzinfo=_zone(tz))
        .astimezone(dt.timezone.utc)
    )
    bounds = _split(config.meters, max(1, config.loaders * 4))

    def load(lo_hi):
        lo, hi = lo_hi
        with engine.begin() as conn:
            conn.exec_driver_sql("SET synchronous_commit = off")
            execute_sql_file(
                conn,
                "queries/bench_reads.sql",
                {"lo": lo, "hi": hi, "hours": hours, "first_start": first_start},
            )

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=config.loaders) as pool:
        list(pool.map(load, bounds))
    log.info(
        "%d reads in %.1fs", config.meters * hours, time.perf_counter() - t0
    )
    t0 = time.perf_counter()
    with engine.begin() as conn:
        conn.exec_driver_sql("SET maintenance_work_mem = '1GB'")
        conn.exec_driver_sql("SET max_parallel_maintenance_workers = 2")
        conn.exec_driver_sql(
            "ALTER TABLE mdm.interval_read ADD CONSTRAINT interval_read_pkey "
            "PRIMARY KEY (meter_id, interval_start)"
        )
        conn.exec_driver_sql(
            "ALTER TABLE mdm.interval_read ADD CONSTRAINT interval_read_meter_id_fkey "
            "FOREIGN KEY (meter_id) REFERENCES mdm.meter NOT VALID"
        )
    log.info("reads primary key in %.1fs", time.perf_counter() - t0)
    t0 = time.perf_counter()
    with engine.begin() as conn:
        execute_sql_file(
            conn,
            "queries/bench_history.sql",
            {
                "n": config.history_exceptions_n,
                "meters": config.meters,
                "days": config.history_days,
                "read_date": config.read_date,
                "tz": tz,
            },
        )
        execute_sql_file(
            conn,
            "queries/bench_exceptions.sql",
            {
                "n": config.exceptions,
                "meters": config.meters,
                "id_base": EXCEPTION_ID_BASE,
                "read_date": config.read_date,
                "tz": tz,
            },
        )
    log.info("exceptions in %.1fs", time.perf_counter() - t0)
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql("VACUUM ANALYZE")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE public.bench_build (spec jsonb NOT NULL)")
        conn.execute(
            sa.text("INSERT INTO public.bench_build VALUES (CAST(:spec AS jsonb))"),
            {"spec": json.dumps(config.build_spec)},
        )
    engine.dispose()
    seconds = time.perf_counter() - started
    log.info("bench warehouse built in %.1fs", seconds)
    return seconds


def _zone(tz: str):
    from zoneinfo import ZoneInfo

    return ZoneInfo(tz)


def _split(n: int, parts: int) -> list[tuple[int, int]]:
    step = -(-n // parts)
    return [(lo, min(n, lo + step)) for lo in range(0, n, step)]
