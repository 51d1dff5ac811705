"""`simulate()`: build the fleet, generate and load the reads chunk by chunk, run the VEE
rules, let the analysts work the queue, and load the exceptions and their resolutions.

Everything is written in one transaction (a failed run leaves the previous contents) and
the interval reads are streamed with binary COPY from a writer thread while the next chunk
is generated.
"""

from __future__ import annotations

import io
import queue
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from vee_tasks.config import RESOLUTION_CODES, RULE_CODES, get_settings
from vee_tasks.simulator import params as P
from vee_tasks.simulator.analyst import attribute_causes, resolve
from vee_tasks.simulator.fleet import build_events, build_fleet, build_weather
from vee_tasks.simulator.loads import QUALITY_BYTES, Chunk, generate_chunk
from vee_tasks.simulator.params import SimulationConfig
from vee_tasks.simulator.rules import DayStats, chunk_stats, evaluate
from vee_tasks.simulator.timegrid import (
    PG_EPOCH_US,
    US_PER_HOUR,
    US_PER_MIN,
    SlotGrid,
    build_calendar,
    build_grid,
)
from vee_tasks.warehouse import copy_rows, sql

CHUNK_SLOTS = 2_500_000  # interval slots generated at once (memory ~ 0.5 GB peak)
_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_BINARY_TRAILER = b"\xff\xff"
_INTERVAL_COLUMNS = ("meter_id", "interval_start", "value_kwh", "quality", "received_at")


@dataclass
class SimulationSummary:
    """What a run wrote, for the command line and the logs."""

    config: SimulationConfig
    rows: dict[str, int] = field(default_factory=dict)
    by_rule: dict[str, int] = field(default_factory=dict)
    by_resolution: dict[str, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)
    meter_days: int = 0
    seconds: float = 0.0
    cause_mix: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def exceptions(self) -> int:
        return sum(self.by_rule.values())

    @property
    def exceptions_per_meter_day(self) -> float:
        return self.exceptions / self.meter_days if self.meter_days else 0.0

    def describe(self) -> str:
        c = self.config
        lines = [
            f"simulated {c.meters} meters x {c.days} days from {c.start} (seed {c.seed}) "
            f"in {self.seconds:.1f} s",
            "rows: " + ", ".join(f"{t} {n:,}" for t, n in self.rows.items()),
            f"exceptions: {self.exceptions:,} ({100 * self.exceptions_per_meter_day:.2f}% of "
            f"{self.meter_days:,} meter-days); status " + _mix(self.by_status),
            "by rule: " + _mix(self.by_rule),
            "by resolution: " + _mix(self.by_resolution),
        ]
        return "\n".join(lines)


def _mix(counts: dict[str, int]) -> str:
    total = sum(counts.values()) or 1
    if not counts:
        return "none"
    return ", ".join(f"{k} {v} ({100 * v / total:.0f}%)" for k, v in counts.items())


def _rng(seed: int, *tags: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *tags]))


def _us_to_ts(us: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime(np.asarray(us, dtype=np.int64), unit="us", utc=True))


# --- binary COPY of interval reads -------------------------------------------------------


def interval_copy_payload(ids: np.ndarray, chunk: Chunk, grid: SlotGrid) -> tuple[bytes, int]:
    """PostgreSQL binary COPY rows for the chunk's present intervals (fast, fixed layout)."""
    r, t = np.nonzero(chunk.present)
    vals = chunk.value[r, t]
    null = np.isnan(vals)
    width = ids.dtype.itemsize
    start = grid.start_us[t] - PG_EPOCH_US
    recv = chunk.received_us[r, t] - PG_EPOCH_US
    qual = QUALITY_BYTES[chunk.quality[r, t]]
    parts = []
    for is_null in (False, True):
        sel = null if is_null else ~null
        k = int(sel.sum())
        if k == 0:
            continue
        fields = [("nf", ">i2"), ("l1", ">i4"), ("id", f"S{width}"), ("l2", ">i4"), ("ts", ">i8"),
                  ("l3", ">i4")]
        if not is_null:
            fields.append(("v", ">f8"))
        fields += [("l4", ">i4"), ("q", "S1"), ("l5", ">i4"), ("r", ">i8")]
        a = np.empty(k, dtype=np.dtype(fields))
        a["nf"] = 5
        a["l1"] = width
        a["id"] = ids[r[sel]]
        a["l2"] = 8
        a["ts"] = start[sel]
        a["l3"] = -1 if is_null else 8
        if not is_null:
            a["v"] = vals[sel]
        a["l4"] = 1
        a["q"] = qual[sel]
        a["l5"] = 8
        a["r"] = recv[sel]
        parts.append(a.tobytes())
    return b"".join(parts), len(r)


class _CopyWriter(threading.Thread):
    """Streams binary COPY payloads into mdm.interval_read while the caller computes."""

    def __init__(self, raw_conn):
        super().__init__(daemon=True, name="vee-sim-copy")
        self.raw = raw_conn
        self.jobs: queue.Queue = queue.Queue(maxsize=2)
        self.error: BaseException | None = None

    def run(self):
        from psycopg2 import sql as pgsql

        statement = pgsql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT binary)").format(
            pgsql.Identifier("mdm", "interval_read"),
            pgsql.SQL(", ").join(pgsql.Identifier(c) for c in _INTERVAL_COLUMNS),
        ).as_string(self.raw)
        while True:
            payload = self.jobs.get()
            if payload is None:
                return
            if self.error is not None:
                continue
            try:
                with self.raw.cursor() as cur:
                    cur.copy_expert(
                        statement, io.BytesIO(_BINARY_HEADER + payload + _BINARY_TRAILER), size=1 << 22
                    )
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                self.error = exc

    def put(self, payload: bytes):
        if self.error is not None:
            raise self.error
        self.jobs.put(payload)

    def finish(self):
        self.jobs.put(None)
        self.join()
        if self.error is not None:
            raise self.error


def _skip_fk_triggers(conn) -> bool:
    """Bulk-load mdm.interval_read without per-row FK triggers when the role may.

    The foreign key to mdm.meter is satisfied by construction (the meters are loaded first,
    in the same transaction); the per-row checks would triple the load time.
    """
    savepoint = conn.begin_nested()
    try:
        conn.execute(sql("queries/simulator_fast_load_on.sql"))
    except sa.exc.DBAPIError:
        savepoint.rollback()
        return False
    savepoint.commit()
    return True


# --- the run ---------------------------------------------------------------------------


def simulate(engine: Engine, config: SimulationConfig, replace: bool = True,
             progress: bool = False) -> SimulationSummary:
    """Fill the mdm tables with a simulated MDMS (same seed, same rows)."""
    config.validate()
    t_start = time.monotonic()
    settings = get_settings()
    tz = settings.timezone

    def say(msg):
        if progress:
            print(f"[simulate {time.monotonic() - t_start:6.1f}s] {msg}", file=sys.stderr, flush=True)

    seed = config.seed
    cal = build_calendar(config.start, config.days, tz)
    fleet = build_fleet(_rng(seed, 1), config.meters, seed, config.start, config.days)
    weather = build_weather(_rng(seed, 2), config.start, config.days)
    events = build_events(_rng(seed, 3), fleet, cal, weather)
    N, D = fleet.size, cal.days
    vrng = _rng(seed, 4)
    meter_offset = vrng.uniform(0, P.VALIDATION_SPREAD_MIN, N) * US_PER_MIN
    validation_us = (
        cal.start_us[1:][None, :]
        + int(P.VALIDATION_LOCAL_HOUR * US_PER_HOUR)
        + meter_offset[:, None].astype(np.int64)
        + vrng.integers(0, 5 * US_PER_MIN, (N, D))
    ).astype(np.int64)
    say(f"{N} meters, {D} read dates, {len(events)} scheduled events and faults")

    summary = SimulationSummary(config=config, meter_days=N * D)
    stats = DayStats.empty(N, D)
    ids_bytes = fleet.frame["meter_id"].to_numpy().astype("S")
    n_reads = 0
    with engine.begin() as conn:
        if replace:
            conn.execute(sql("queries/simulator_truncate.sql"))
            weather_frame = weather.frame()
            exc_offset = 0
        else:
            present = conn.execute(
                sql("queries/simulator_meter_ids_present.sql"),
                {"meter_ids": list(fleet.frame["meter_id"])},
            ).scalar_one()
            if present:
                raise ValueError(
                    f"{present} meter ids of seed {seed} already exist; append needs another seed"
                )
            weather_frame = weather.frame()
            have = pd.DataFrame(
                conn.execute(
                    sql("queries/simulator_weather_days_present.sql"),
                    {"first_day": weather.first_day, "last_day": config.end},
                ).fetchall(),
                columns=["region", "day"],
            )
            if len(have):
                keys = set(zip(have["region"], have["day"]))
                keep = [k not in keys for k in zip(weather_frame["region"], weather_frame["day"])]
                weather_frame = weather_frame[keep]
            exc_offset = int(conn.execute(sql("queries/simulator_max_exception_id.sql")).scalar_one())
        summary.rows["meter"] = copy_rows(conn, "mdm.meter", list(fleet.frame.columns), fleet.frame)
        summary.rows["weather_daily"] = copy_rows(
            conn, "mdm.weather_daily", ["region", "day", "mean_temp_c"], weather_frame
        )
        fast = _skip_fk_triggers(conn)
        writer = _CopyWriter(conn.connection.driver_connection)
        writer.start()
        try:
            done = 0
            for gi, minutes in enumerate(P.INTERVAL_SHARES["RES"]):
                members = np.flatnonzero(fleet.minutes == minutes)
                if len(members) == 0:
                    continue
                grid = build_grid(cal, minutes, tz)
                per = max(1, CHUNK_SLOTS // grid.size)
                for ci, lo in enumerate(range(0, len(members), per)):
                    part = members[lo : lo + per]
                    chunk = generate_chunk(_rng(seed, 5, minutes, ci), fleet, part, grid, cal,
                                           weather, events)
                    payload, k = interval_copy_payload(ids_bytes[part], chunk, grid)
                    writer.put(payload)
                    del payload
                    n_reads += k
                    chunk_stats(chunk, grid, cal, validation_us, stats, fleet.install_day)
                    done += len(part)
                    say(f"interval reads: {done}/{N} meters, {n_reads:,} rows generated")
            writer.finish()
            if fast:
                conn.execute(sql("queries/simulator_fast_load_off.sql"))
        except BaseException:
            writer.jobs.put(None)  # let the writer finish its COPY before the rollback
            writer.join()
            raise
        summary.rows["interval_read"] = n_reads
        say("interval reads loaded; running the VEE rules")

        exc, _ = evaluate(fleet, cal, weather, stats)
        rule_order = {c: i for i, c in enumerate(RULE_CODES)}
        exc["rule_idx"] = exc["rule_code"].map(rule_order).astype(np.int64)
        exc = exc.sort_values(["day", "meter", "rule_idx"], kind="stable").reset_index(drop=True)
        exc["cause"] = attribute_causes(exc, events, cal, weather, fleet)
        raised = (validation_us[exc["meter"].to_numpy(), exc["day"].to_numpy()]
                  + 20_000_000 + exc["rule_idx"].to_numpy() * 1_000_000)
        now_us = int(validation_us[:, -1].max() + 6 * US_PER_HOUR)
        res = resolve(exc, fleet, cal, weather, stats, raised, now_us, _rng(seed, 6), tz)
        say(f"{len(exc)} exceptions raised; analysts resolved {res['resolution_code'].notna().sum()}")

        exc_ids = exc_offset + 1_000_000 + np.arange(1, len(exc) + 1, dtype=np.int64)
        resolved = res["resolution_code"].notna().to_numpy()
        status = np.where(resolved, "ANALYST_RESOLVED", "OPEN")
        changed = np.where(resolved, res["resolved_us"].to_numpy(), raised)
        exc_frame = pd.DataFrame({
            "exception_id": exc_ids,
            "meter_id": fleet.frame["meter_id"].to_numpy()[exc["meter"].to_numpy()],
            "rule_code": exc["rule_code"].to_numpy(),
            "read_date": [cal.dates[d] for d in exc["day"]],
            "window_start": _us_to_ts(exc["window_start_us"].to_numpy()),
            "window_end": _us_to_ts(exc["window_end_us"].to_numpy()),
            "observed_value": exc["observed_value"].to_numpy(),
            "expected_value": exc["expected_value"].to_numpy(),
            "rule_version": exc["rule_code"].map(P.RULE_VERSIONS).to_numpy(),
            "raised_at": _us_to_ts(raised),
            "status": status,
            "status_changed_at": _us_to_ts(changed),
        })
        summary.rows["vee_exception"] = copy_rows(conn, "mdm.vee_exception", list(exc_frame.columns), exc_frame)
        res_frame = pd.DataFrame({
            "exception_id": exc_ids[resolved],
            "resolution_code": res["resolution_code"].to_numpy()[resolved],
            "resolved_by": res["resolved_by"].to_numpy()[resolved],
            "resolved_at": _us_to_ts(res["resolved_us"].to_numpy()[resolved]),
            "note": res["note"].to_numpy()[resolved],
        })
        summary.rows["analyst_resolution"] = copy_rows(
            conn, "mdm.analyst_resolution", list(res_frame.columns), res_frame
        )
        say("committing")
    # Fresh statistics: without them the planner picks nested loops over a "tiny" table and
    # the first feature query after a simulation is 20x slower.
    say("analyzing")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sql("queries/simulator_analyze.sql"))
    summary.by_rule = {c: int((exc["rule_code"] == c).sum()) for c in RULE_CODES}
    codes = res["resolution_code"]
    summary.by_resolution = {c: int((codes == c).sum()) for c in RESOLUTION_CODES}
    summary.by_status = dict(Counter(status.tolist()))
    mix: dict[str, dict[str, int]] = {}
    for (rule, cause, code), n in Counter(
        zip(exc["rule_code"], exc["cause"], codes.fillna("OPEN"))
    ).items():
        mix.setdefault(f"{rule}/{cause}", {})[code] = n
    summary.cause_mix = mix
    summary.seconds = time.monotonic() - t_start
    return summary
