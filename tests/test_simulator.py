"""The simulated MDMS: contract-conformant rows, plausible statistics, DST days, determinism,
and `vee simulate` refusing impossible arguments without writing anything."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from vee_tasks import migrations
from vee_tasks.config import QUALITY_FLAGS, RESOLUTION_CODES, RULE_CODES
from vee_tasks.simulator import SimulationConfig, simulate
from vee_tasks.simulator.params import WEATHER_HISTORY_DAYS

TZ = "America/Toronto"


def _scalar(engine, query, **params):
    with engine.connect() as conn:
        return conn.execute(sa.text(query), params).scalar_one()


def _rows(engine, query, **params):
    with engine.connect() as conn:
        return conn.execute(sa.text(query), params).fetchall()


# --- the shared simulated warehouse ------------------------------------------------------


def test_codes_and_domains(simulated_engine):
    rules = {r for (r,) in _rows(simulated_engine, "SELECT DISTINCT rule_code FROM mdm.vee_exception")}
    assert rules == set(RULE_CODES)
    codes = {c for (c,) in _rows(simulated_engine, "SELECT DISTINCT resolution_code FROM mdm.analyst_resolution")}
    assert codes == set(RESOLUTION_CODES)
    quality = {q for (q,) in _rows(simulated_engine, "SELECT DISTINCT quality FROM mdm.interval_read")}
    assert quality <= set(QUALITY_FLAGS) and "A" in quality
    bad_version = _scalar(
        simulated_engine,
        "SELECT count(*) FROM mdm.vee_exception WHERE rule_version !~ ('^' || rule_code || '/[0-9]+$')",
    )
    assert bad_version == 0
    meters = _rows(
        simulated_engine,
        "SELECT customer_class, meter_kind, interval_minutes, multiplier, has_der FROM mdm.meter",
    )
    assert {m[0] for m in meters} == {"RES", "COM", "IND"}
    assert {m[1] for m in meters} == {"AMI_1PH", "AMI_3PH", "CT"}
    assert {m[2] for m in meters} == {15, 30, 60}
    assert all(m[3] > 1 for m in meters if m[1] == "CT")
    assert all(m[3] == 1 for m in meters if m[1] != "CT")
    res = [m for m in meters if m[0] == "RES"]
    der_share = sum(m[4] for m in res) / len(res)
    assert 0.05 <= der_share <= 0.2
    minutes = [m[2] for m in meters]
    assert minutes.count(15) > len(minutes) / 2


def test_windows_and_times(simulated_engine):
    bad = _rows(
        simulated_engine,
        """
        SELECT
          count(*) FILTER (WHERE (window_start AT TIME ZONE :tz)::date <> read_date),
          count(*) FILTER (WHERE ((window_end - interval '1 microsecond') AT TIME ZONE :tz)::date
                                 <> read_date),
          count(*) FILTER (WHERE window_end <= window_start),
          count(*) FILTER (WHERE raised_at < ((read_date + 1)::timestamp AT TIME ZONE :tz)),
          count(*) FILTER (WHERE raised_at > ((read_date + 2)::timestamp AT TIME ZONE :tz)),
          count(*) FILTER (WHERE status_changed_at < raised_at)
        FROM mdm.vee_exception
        """,
        tz=TZ,
    )[0]
    assert tuple(bad) == (0, 0, 0, 0, 0, 0)
    # expected_value is null only for the rules without a reference
    nulls = dict(_rows(
        simulated_engine,
        "SELECT rule_code, count(*) FILTER (WHERE expected_value IS NULL) FROM mdm.vee_exception GROUP BY 1",
    ))
    for rule in ("GAP", "SPIKE", "HIGH_USAGE", "LOW_USAGE", "ZERO_CONSUMPTION", "STEP_CHANGE"):
        assert nulls.get(rule, 0) == 0, rule
    assert _scalar(simulated_engine, "SELECT count(*) FROM mdm.vee_exception WHERE observed_value IS NULL") == 0


def test_statuses_and_resolutions(simulated_engine):
    last = _scalar(simulated_engine, "SELECT max(read_date) FROM mdm.vee_exception")
    rows = _rows(
        simulated_engine,
        """
        SELECT e.read_date, e.status, r.exception_id IS NOT NULL, e.status_changed_at = r.resolved_at,
               r.resolved_at > e.raised_at, r.resolved_at - e.raised_at, r.resolved_by
        FROM mdm.vee_exception e LEFT JOIN mdm.analyst_resolution r USING (exception_id)
        """,
    )
    open_dates = {last, last - dt.timedelta(days=1)}
    for read_date, status, has_res, same_time, after, delay, analyst in rows:
        if read_date in open_dates:
            assert status == "OPEN" and not has_res
        else:
            assert status == "ANALYST_RESOLVED" and has_res
            assert same_time and after
            assert dt.timedelta(minutes=10) <= delay <= dt.timedelta(days=5)
            assert analyst.startswith("an-")
        if status == "OPEN":
            assert not has_res
    assert any(r[0] in open_dates for r in rows)
    orphans = _scalar(
        simulated_engine,
        "SELECT count(*) FROM mdm.analyst_resolution r JOIN mdm.vee_exception e USING (exception_id) "
        "WHERE e.status <> 'ANALYST_RESOLVED'",
    )
    assert orphans == 0


def test_statistics_plausible(simulated_engine):
    n_exc = _scalar(simulated_engine, "SELECT count(*) FROM mdm.vee_exception")
    # weather starts WEATHER_HISTORY_DAYS before the first read date
    meter_days = _scalar(
        simulated_engine,
        "SELECT count(*) * ((SELECT count(DISTINCT day) FROM mdm.weather_daily) - :history) "
        "FROM mdm.meter",
        history=WEATHER_HISTORY_DAYS,
    )
    rate = n_exc / meter_days
    assert 0.005 <= rate <= 0.08, rate
    # within each frequent rule the analysts do not always answer the same way
    per_rule = _rows(
        simulated_engine,
        """
        SELECT e.rule_code, r.resolution_code, count(*)
        FROM mdm.vee_exception e JOIN mdm.analyst_resolution r USING (exception_id)
        GROUP BY 1, 2
        """,
    )
    totals: dict[str, int] = {}
    top: dict[str, int] = {}
    for rule, _code, n in per_rule:
        totals[rule] = totals.get(rule, 0) + n
        top[rule] = max(top.get(rule, 0), n)
    varied = [r for r, t in totals.items() if t >= 20 and top[r] / t < 0.9]
    assert len(varied) >= 5, (totals, top)
    # reads: mostly actual, some null, negative only where there is export
    share_actual = _scalar(
        simulated_engine, "SELECT avg((quality = 'A')::int) FROM mdm.interval_read"
    )
    assert share_actual > 0.97
    neg_der = _rows(
        simulated_engine,
        "SELECT m.has_der, count(*) FROM mdm.interval_read r JOIN mdm.meter m USING (meter_id) "
        "WHERE r.value_kwh < 0 GROUP BY 1",
    )
    assert dict(neg_der).get(True, 0) > dict(neg_der).get(False, 0)


def test_dst_spring_day_has_92_quarter_hours(simulated_engine):
    counts = _rows(
        simulated_engine,
        """
        SELECT r.meter_id, count(*)
        FROM mdm.interval_read r JOIN mdm.meter m USING (meter_id)
        WHERE m.interval_minutes = 15
          AND (r.interval_start AT TIME ZONE :tz)::date = DATE '2026-03-08'
        GROUP BY 1
        """,
        tz=TZ,
    )
    values = [c for _, c in counts]
    assert values and max(values) == 92
    assert values.count(92) > 0.8 * len(values)


# --- small dedicated simulations ---------------------------------------------------------


@pytest.fixture(scope="module")
def small_engine(databases):
    url = databases.create("simsmall")
    engine = sa.create_engine(url)
    migrations.upgrade(engine, with_mdm=True)
    yield engine
    engine.dispose()


_HASH = """
SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM (
  SELECT meter_id, interval_start, value_kwh, quality, received_at FROM mdm.interval_read) t
"""
_HASH_EXC = """
SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM (
  SELECT e.*, r.resolution_code, r.resolved_by, r.resolved_at
  FROM mdm.vee_exception e LEFT JOIN mdm.analyst_resolution r USING (exception_id)) t
"""


def test_same_seed_same_data_and_fall_dst(small_engine):
    config = SimulationConfig(meters=40, days=21, start=dt.date(2026, 10, 20), seed=5)
    first = simulate(small_engine, config)
    h1 = (_scalar(small_engine, _HASH), _scalar(small_engine, _HASH_EXC))
    second = simulate(small_engine, config)  # replace=True: truncates, then the same rows
    h2 = (_scalar(small_engine, _HASH), _scalar(small_engine, _HASH_EXC))
    assert h1 == h2
    assert first.rows == second.rows
    assert _scalar(small_engine, "SELECT count(*) FROM mdm.meter") == 40
    text = first.describe()
    assert "exceptions" in text and "by rule" in text and "by resolution" in text
    # 2026-11-01 has 25 hours: 100 quarter-hours
    fall = _rows(
        small_engine,
        """
        SELECT count(*) FROM mdm.interval_read r JOIN mdm.meter m USING (meter_id)
        WHERE m.interval_minutes = 15 AND (r.interval_start AT TIME ZONE :tz)::date = DATE '2026-11-01'
        GROUP BY r.meter_id
        """,
        tz=TZ,
    )
    assert max(c for (c,) in fall) == 100
    other = simulate(small_engine, SimulationConfig(meters=40, days=21, start=dt.date(2026, 10, 20), seed=6))
    assert _scalar(small_engine, _HASH) != h1[0]
    assert other.rows["meter"] == 40


@pytest.mark.parametrize(
    "meters,days,start,seed",
    [(0, 30, dt.date(2026, 1, 1), 1), (10, 3, dt.date(2026, 1, 1), 1), (10**7, 30, dt.date(2026, 1, 1), 1),
     (5000, 3000, dt.date(2026, 1, 1), 1), (10, 30, dt.date(1900, 1, 1), 1), (10, 30, dt.date(2026, 1, 1), -1)],
)
def test_config_validation(meters, days, start, seed):
    with pytest.raises(ValueError) as info:
        SimulationConfig(meters=meters, days=days, start=start, seed=seed).validate()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("args", [["--meters", "0"], ["--days", "2"], ["--meters", "50000000"]])
def test_cli_rejects_impossible_arguments(databases, args):
    url = databases.create("simcli")
    env = dict(os.environ, VEE_WAREHOUSE_URL=url)
    env.pop("AIRFLOW_CONN_VEE_WAREHOUSE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "vee_tasks.cli", "simulate", *args, "--start", "2026-01-05"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("vee: error:"), proc.stderr
    engine = sa.create_engine(url)
    try:
        tables = _scalar(
            engine,
            "SELECT count(*) FROM information_schema.tables WHERE table_schema IN ('mdm', 'vee')",
        )
    finally:
        engine.dispose()
    assert tables == 0  # nothing written: not even the schema


def test_append_keeps_rows_and_continues_ids(small_engine):
    base = SimulationConfig(meters=30, days=21, start=dt.date(2026, 4, 1), seed=21)
    simulate(small_engine, base)
    before = _rows(small_engine, "SELECT count(*), max(exception_id) FROM mdm.vee_exception")[0]
    weather = _scalar(small_engine, "SELECT count(*) FROM mdm.weather_daily")
    simulate(small_engine, SimulationConfig(meters=20, days=21, start=dt.date(2026, 4, 1), seed=22),
             replace=False)
    assert _scalar(small_engine, "SELECT count(*) FROM mdm.meter") == 50
    assert _scalar(small_engine, "SELECT count(*) FROM mdm.weather_daily") == weather
    after_min = _scalar(
        small_engine,
        "SELECT min(exception_id) FROM mdm.vee_exception e JOIN mdm.meter m USING (meter_id) "
        "WHERE m.meter_id LIKE 'M22-%'",
    )
    assert after_min is None or after_min > before[1]
    with pytest.raises(ValueError):  # same seed again: its meter ids exist
        simulate(small_engine, base, replace=False)


def test_no_reads_before_installation(simulated_engine):
    early = _scalar(
        simulated_engine,
        """
        SELECT count(*) FROM mdm.interval_read r JOIN mdm.meter m USING (meter_id)
        WHERE r.interval_start < (m.installed_on::timestamp AT TIME ZONE :tz)
        """,
        tz=TZ,
    )
    assert early == 0
    early_exc = _scalar(
        simulated_engine,
        "SELECT count(*) FROM mdm.vee_exception e JOIN mdm.meter m USING (meter_id) "
        "WHERE e.read_date < m.installed_on",
    )
    assert early_exc == 0


def test_tiny_fleet_without_exceptions_is_fine(small_engine):
    summary = simulate(small_engine, SimulationConfig(meters=1, days=21, start=dt.date(2026, 3, 1), seed=1))
    assert summary.rows["meter"] == 1
    assert summary.rows["interval_read"] > 20 * 24 * 0.9
    assert "exceptions" in summary.describe()
