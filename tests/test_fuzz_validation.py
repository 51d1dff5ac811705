"""Bad-input fuzzing of validation and quarantine (hypothesis).

Two levels. On DataFrames: `validate_frame` never crashes on nulls, NaN, infinities, huge
values, unicode and SQL metacharacters, wrong types and duplicate ids, and quarantines
exactly the rows an independent oracle (written here from the suite's documented checks)
says are bad. In a real warehouse that does not enforce the contract: fuzzed exceptions go
through the nightly steps; every selected row is scored or quarantined, nothing else is
written, text round-trips intact into the quarantine payload, and no table is harmed.

Example counts come from a settings profile: `ci` (derandomized, small) when CI is set,
else `dev`; HYPOTHESIS_PROFILE picks one explicitly (e.g. `deep` for a long local run).
"""

from __future__ import annotations

import datetime as dt
import math
import os
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from vee_tasks.config import RULE_CODES, get_settings
from vee_tasks.scoring.validation import MAX_WINDOW_DAYS, validate_frame

TZ = "America/Toronto"
DAY = dt.date(2026, 3, 10)
DAY_START = dt.datetime.combine(DAY, dt.time(0), tzinfo=ZoneInfo(TZ)).astimezone(dt.timezone.utc)
DAY_END = dt.datetime.combine(
    DAY + dt.timedelta(days=1), dt.time(0), tzinfo=ZoneInfo(TZ)
).astimezone(dt.timezone.utc)

_COMMON = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture],
)
settings.register_profile("ci", max_examples=25, derandomize=True, print_blob=True, **_COMMON)
settings.register_profile("dev", max_examples=40, **_COMMON)
settings.register_profile("deep", max_examples=400, **_COMMON)
_PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
FRAME_SETTINGS = settings(settings.get_profile(_PROFILE))
# Each warehouse example runs extract, GX validation and four shards: fewer of them.
DB_SETTINGS = settings(
    settings.get_profile(_PROFILE),
    max_examples=max(4, settings.get_profile(_PROFILE).max_examples // 5),
)

NASTY_TEXT = [
    "",
    " ",
    "'",
    "''; DROP TABLE mdm.meter; --",
    "x'); DELETE FROM vee.exception_resolution; --",
    "\\",
    "\\N",
    '"',
    "%s %(x)s :read_date",
    "$$ $1 $$",
    "GAP\n",
    "gap",
    "GAP ",
    "\u0000"[:0] + "Ω≈ç√∫",
    "💥🔥",
    "\u202e\u200b",
    "a" * 5000,
]
# Text PostgreSQL can hold (no NUL) and anything else hypothesis invents.
pg_text = st.one_of(
    st.sampled_from(NASTY_TEXT),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40),
)
bad_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e300, -1e300, 1e301, 1.7976931348623157e308, 5e-324,
                     float("nan"), float("inf"), -float("inf")]),
)
measure = st.one_of(st.none(), bad_floats, st.floats(-1e6, 1e6))
wrong_typed_measure = st.one_of(
    measure, st.sampled_from(["12", "abc", "", "NaN", "1e999", True, b"7"]), pg_text
)


# --- an oracle of the suite's row checks ----------------------------------------------


def _as_float(value) -> float | None:
    """None for NULL; NaN for what is not a number (the validation coerces those)."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    try:
        return float(pd.to_numeric(pd.Series([value], dtype=object), errors="coerce").iloc[0])
    except (TypeError, ValueError):
        return float("nan")


def _plausible(value: float) -> bool:
    """The suite's bound: finite, and zero or 1e-30 <= |v| <= 1e9 (validation.MAX_ABS_VALUE)."""
    from vee_tasks.scoring.validation import MAX_ABS_VALUE, MIN_ABS_NONZERO

    return math.isfinite(value) and (value == 0 or MIN_ABS_NONZERO <= abs(value) <= MAX_ABS_VALUE)


def expected_failures(rows: list[dict]) -> dict[int, set[str]]:
    """stage_row -> the checks that row must fail, from the checks' documented meaning."""
    ids = []
    for row in rows:
        value = _as_float(row["exception_id"])
        ids.append(None if value is None or not math.isfinite(value) else value)
    counts: dict[float, int] = {}
    for value in ids:
        if value is not None:
            counts[value] = counts.get(value, 0) + 1
    out: dict[int, set[str]] = {}
    for n, (row, key) in enumerate(zip(rows, ids), start=1):
        failed = set()
        if key is None:
            failed.add("exception_id_not_null")
        elif counts[key] > 1:
            failed.add("exception_id_unique")
        if row["rule_code"] not in RULE_CODES:
            failed.add("rule_code_known")
        if row["meter_known"] is not True:
            failed.add("meter_known")
        ws, we = row["ws"], row["we"]
        if ws is None or we is None or not (min(ws, we) < DAY_END and max(ws, we) > DAY_START):
            failed.add("window_overlaps_day")  # the ends in either order
        if ws is not None and we is not None and we - ws > dt.timedelta(days=MAX_WINDOW_DAYS):
            failed.add("window_length_plausible")
        if ws is None or we is None or we <= ws:
            failed.add("window_ordered")
        # the earliest: the day's local start, or its midnight in UTC when that comes first
        earliest = min(DAY_START, dt.datetime.combine(DAY, dt.time(0), tzinfo=dt.timezone.utc))
        if row["raised"] is None or row["raised"] < earliest:
            failed.add("raised_at_plausible")
        obs, exp = _as_float(row["observed_value"]), _as_float(row["expected_value"])
        if obs is None or not _plausible(obs):
            failed.add("observed_value_finite")
        if exp is not None and not _plausible(exp):
            failed.add("expected_value_finite")
        if failed:
            out[n] = failed
    return out


@st.composite
def exception_rows(draw, min_size=1, max_size=25):
    n = draw(st.integers(min_size, max_size))
    id_pool = draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=6))
    rows = []
    for _ in range(n):
        offset = draw(st.one_of(st.none(), st.floats(-30, 50)))
        # hours; the long ones off the 31-day limit by more than the epochs' float rounding
        length = draw(st.one_of(st.floats(-5, 30), st.sampled_from([700.0, 743.9, 744.1, 900.0])))
        ws = None if offset is None else DAY_START + dt.timedelta(hours=offset)
        we = None if ws is None or draw(st.booleans()) and draw(st.booleans()) and False else (
            None if ws is None else ws + dt.timedelta(hours=length)
        )
        if ws is not None and draw(st.integers(0, 9)) == 0:
            we = None
        raised_offset = draw(st.one_of(st.none(), st.floats(-60, 24 * 400), st.sampled_from([-24.0, 26.0])))
        raised = None if raised_offset is None else DAY_START + dt.timedelta(hours=raised_offset)
        rows.append(
            {
                "exception_id": draw(st.one_of(
                    st.sampled_from(id_pool),
                    st.integers(1, 10**6),
                    st.none(),
                    st.sampled_from([float("nan"), "abc", "12", 3.5, 2**63 - 1]),
                )),
                "meter_id": draw(st.one_of(st.none(), pg_text)),
                "rule_code": draw(st.one_of(st.sampled_from(RULE_CODES), st.none(), pg_text)),
                "ws": ws,
                "we": we,
                "raised": raised,
                "observed_value": draw(wrong_typed_measure),
                "expected_value": draw(wrong_typed_measure),
                "meter_known": draw(st.one_of(st.booleans(), st.none())),
                # days from the meter's install to the read date; negative: read before it
                "meter_age_days": draw(st.one_of(st.none(), st.integers(-400, 20_000),
                                                 st.just(float("nan")))),
            }
        )
    return rows


def _frame(rows: list[dict]) -> pd.DataFrame:
    """The plain frame shape validate_frame accepts (object columns, NULL = None)."""
    return pd.DataFrame(
        {
            "exception_id": pd.Series([r["exception_id"] for r in rows], dtype=object),
            "meter_id": pd.Series([r["meter_id"] for r in rows], dtype=object),
            "rule_code": pd.Series([r["rule_code"] for r in rows], dtype=object),
            "window_start": pd.Series([r["ws"] for r in rows], dtype=object),
            "window_end": pd.Series([r["we"] for r in rows], dtype=object),
            "raised_at": pd.Series([r["raised"] for r in rows], dtype=object),
            "observed_value": pd.Series([r["observed_value"] for r in rows], dtype=object),
            "expected_value": pd.Series([r["expected_value"] for r in rows], dtype=object),
            "meter_known": pd.Series([r["meter_known"] for r in rows], dtype=object),
            "meter_age_days": pd.Series([r["meter_age_days"] for r in rows], dtype=object),
        }
    )


@FRAME_SETTINGS
@given(rows=exception_rows())
def test_validation_quarantines_exactly_the_bad_rows(rows):
    """Never crashes; the quarantined rows and their checks are exactly the oracle's."""
    settings_ = get_settings().with_overrides(max_quarantine_share=1.0)
    frame = _frame(rows)
    before = frame.copy(deep=True)
    outcome = validate_frame(frame, DAY, TZ, settings=settings_)
    assert outcome.selected == len(rows)
    assert set(outcome.row_failures) <= set(range(1, len(rows) + 1))
    got = {k: set(v) for k, v in outcome.row_failures.items()}
    assert got == expected_failures(rows)
    # Every row is either clean (scored later) or quarantined: none vanishes.
    assert outcome.quarantined == len(got)
    # A row read before its meter's install date is warned of when it goes on to scoring,
    # never quarantined for it.
    early = [n for n, row in enumerate(rows, start=1) if n not in got
             and row["meter_age_days"] is not None and row["meter_age_days"] < 0]
    install = [w for w in outcome.warnings if w.startswith("meter_installed_by_read_date: ")]
    assert len(install) == (1 if early else 0)
    if early:
        assert install[0].startswith(f"meter_installed_by_read_date: {len(early)} exception(s)")
    # The caller's frame is not modified.
    pd.testing.assert_frame_equal(frame, before)


@FRAME_SETTINGS
@given(rows=exception_rows(min_size=5, max_size=60))
def test_mostly_bad_batches_fail_the_batch_gate_not_the_process(rows):
    """With the default quarantine share a bad batch is a DQ failure, never an exception."""
    outcome = validate_frame(_frame(rows), DAY, TZ, settings=get_settings())
    share = outcome.quarantined / outcome.selected
    settings = get_settings()
    gate, min_rows = settings.max_quarantine_share, settings.quarantine_share_min_rows
    assert outcome.passed == (share <= gate or outcome.quarantined < min_rows)
    if not outcome.passed:
        assert any(f.startswith("quarantine_share") for f in outcome.batch_failures)


# --- through the warehouse: extract, validate, quarantine, score -------------------------

FUZZ_ID_BASE = 700_000_000
DB_STATUSES = ("OPEN", "AUTO_RESOLVED", "PENDING_REVIEW", "ANALYST_RESOLVED")


@pytest.fixture(scope="module")
def fuzz_world(databases, scoring_world):
    """A copy of the scoring world that behaves like a warehouse that does not enforce the
    contract (no key on exception ids, no meter foreign key), and a read date of its own."""
    from robustness_support import clone_database
    from scoring_fixtures import relax_contract

    url = clone_database(databases, scoring_world.pristine_url, "fuzz")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        relax_contract(conn)
        meters = [r[0] for r in conn.exec_driver_sql(
            "SELECT meter_id FROM mdm.meter ORDER BY meter_id LIMIT 20")]
    day = scoring_world.days[-1] + dt.timedelta(days=1)
    yield {"url": url, "engine": engine, "meters": meters, "day": day, "world": scoring_world}
    engine.dispose()


def _local_day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=ZoneInfo(TZ)).astimezone(dt.timezone.utc)


# Any float: NULL, NaN, infinities, magnitudes near the float limits and subnormal divisors
# (before 492cab4 these passed validation and overflowed the feature SQL; now quarantined).
db_measure = st.one_of(st.none(), bad_floats, st.floats(-1e12, 1e12))


@st.composite
def warehouse_rows(draw, meters: list[str], day: dt.date):
    start = _local_day_start(day)
    n = draw(st.integers(1, 12))
    id_pool = [FUZZ_ID_BASE + k for k in range(draw(st.integers(1, 8)))]
    rows = []
    for _ in range(n):
        offset = draw(st.floats(-30, 40))
        # hours; the long ones off the 31-day limit by more than the epochs' float rounding
        length = draw(st.one_of(st.floats(-5, 30), st.sampled_from([700.0, 743.9, 744.1, 900.0])))
        rows.append({
            "id": draw(st.sampled_from(id_pool)),
            "meter": draw(st.one_of(st.sampled_from(meters), pg_text)),
            "rule": draw(st.one_of(st.sampled_from(RULE_CODES), pg_text)),
            "ws": start + dt.timedelta(hours=offset),
            "we": start + dt.timedelta(hours=offset + length),
            "obs": draw(db_measure),
            "exp": draw(db_measure),
            "rv": draw(pg_text),
            "raised": draw(st.one_of(
                st.just(start + dt.timedelta(hours=26)),
                st.sampled_from(["infinity", "-infinity", start - dt.timedelta(days=9),
                                 start - dt.timedelta(hours=23)]),
            )),
            "status": draw(st.sampled_from(DB_STATUSES)),
        })
    return rows


def _snapshot(conn) -> dict:
    """What must not change: MDMS tables other than the fuzzed rows, and the schema."""
    return {
        "tables": conn.exec_driver_sql(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema IN ('mdm', 'vee') ORDER BY 1, 2").fetchall(),
        "meter": conn.exec_driver_sql("SELECT count(*), md5(string_agg(meter_id, ',' ORDER BY "
                                      "meter_id)) FROM mdm.meter").one(),
        "reads": conn.exec_driver_sql("SELECT count(*) FROM mdm.interval_read").scalar(),
        "labels": conn.exec_driver_sql("SELECT count(*) FROM mdm.analyst_resolution").scalar(),
        "other_exceptions": conn.exec_driver_sql(
            f"SELECT count(*), md5(string_agg(exception_id || status, ',' ORDER BY exception_id)) "
            f"FROM mdm.vee_exception WHERE exception_id < {FUZZ_ID_BASE}").one(),
    }


def test_fuzzed_exceptions_are_scored_or_quarantined_and_nothing_is_injected(fuzz_world, monkeypatch):
    from vee_tasks import registry
    from vee_tasks.scoring.pipeline import score_read_date
    from scoring_fixtures import _apply_env

    fw = fuzz_world
    _apply_env(monkeypatch, {**fw["world"].env(), "VEE_WAREHOUSE_URL": fw["url"]})
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_VEE_WAREHOUSE", raising=False)
    # Fuzzed days are mostly bad rows and have no volume history: the batch gates would
    # (rightly) stop them; this test is about every row's fate, so they are opened wide.
    run_settings = get_settings().with_overrides(max_quarantine_share=1.0, volume_min_history_days=10**6)
    engine, day = fw["engine"], fw["day"]
    counter = iter(range(10**6))

    start = _local_day_start(day)
    valid = {"meter": fw["meters"][0], "rule": "SPIKE", "ws": start + dt.timedelta(hours=3),
             "we": start + dt.timedelta(hours=5), "obs": 9.0, "exp": 2.0, "rv": "SPIKE/3"}

    @DB_SETTINGS
    @given(rows=warehouse_rows(fw["meters"], day))
    @example(rows=[{**valid, "id": FUZZ_ID_BASE, "status": "OPEN"},
                   {**valid, "id": FUZZ_ID_BASE, "status": "PENDING_REVIEW"},
                   {**valid, "id": FUZZ_ID_BASE + 1, "status": "OPEN",
                    "meter": "''; DROP TABLE mdm.meter; --", "obs": float("nan")},
                   {**valid, "id": FUZZ_ID_BASE + 2, "status": "OPEN", "obs": 1e12,
                    "exp": 1e-6, "rule": "HIGH_USAGE"}])
    def check(rows):
        run_id = f"fuzz_{next(counter)}"
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO mdm.vee_exception VALUES (:id, :meter, :rule, :day, :ws, :we, "
                    ":obs, :exp, :rv, :raised, :status, :raised)"
                ),
                [{"raised": _local_day_start(day) + dt.timedelta(hours=26), **r, "day": day}
                 for r in rows],
            )
            before = _snapshot(conn)
        try:
            run = score_read_date(engine, day, run_id=run_id, settings=run_settings)
            decidable = [r for r in rows if r["status"] != "ANALYST_RESOLVED"]
            assert run.status == "SUCCESS", run.message
            assert run.selected == len(decidable)
            assert run.selected == run.scored + run.quarantined + run.skipped_analyst
            assert run.skipped_analyst == 0
            with engine.connect() as conn:
                assert _snapshot(conn) == before
                scored = {r[0] for r in conn.execute(sa.text(
                    "SELECT exception_id FROM vee.exception_resolution WHERE read_date = :d"),
                    {"d": day})}
                quarantined = conn.execute(sa.text(
                    "SELECT exception_id, payload->>'meter_id', payload->>'rule_code' "
                    "FROM vee.quarantined_exception WHERE read_date = :d"), {"d": day}).fetchall()
                statuses = conn.execute(sa.text(
                    "SELECT exception_id, status FROM mdm.vee_exception WHERE read_date = :d "
                    "ORDER BY 1, 2"), {"d": day}).fetchall()
            assert len(scored) == run.scored and len(quarantined) == run.quarantined
            # Every decidable row is scored or quarantined; duplicated ids are never scored.
            ids = [r["id"] for r in decidable]
            for r in decidable:
                if ids.count(r["id"]) > 1:
                    assert r["id"] not in scored
            assert sorted(q[0] for q in quarantined) == sorted(
                i for i in ids if i not in scored)
            # Nothing decided that was not selected (analysts' rows stay theirs).
            assert scored <= set(ids)
            # The text of quarantined rows round-trips exactly (no escaping, no truncation).
            inserted = sorted((r["id"], r["meter"], r["rule"]) for r in decidable
                              if r["id"] not in scored)
            assert sorted(quarantined) == inserted
            # Analysts' rows keep their status; quarantined rows are OPEN (the contract), even
            # one that was AUTO_RESOLVED or PENDING_REVIEW before the run.
            expected = sorted(
                (r["id"], r["status"]) if r["status"] == "ANALYST_RESOLVED"
                else (r["id"], "OPEN") if r["id"] not in scored
                else (r["id"], None) for r in rows)
            got = sorted((i, s if (i not in scored or s == "ANALYST_RESOLVED") else None)
                         for i, s in statuses)
            assert got == expected
        finally:
            with engine.begin() as conn:
                conn.execute(sa.text("DELETE FROM mdm.vee_exception WHERE read_date = :d"), {"d": day})
                conn.execute(sa.text("DELETE FROM vee.exception_resolution WHERE read_date = :d"), {"d": day})
                conn.execute(sa.text("DELETE FROM vee.quarantined_exception WHERE read_date = :d"), {"d": day})

    check()


@pytest.mark.parametrize("case", ["analyst_twin", "huge_finite", "infinite_raised_at",
                                  "raised_before_read_date"])
def test_reported_input_defects_do_not_fail_the_run(fuzz_world, monkeypatch, case):
    """Regression tests of two defects the fuzzing above found (fixed in 492cab4):
    - analyst_twin: an analyst's row and a decidable row sharing one id (only a warehouse
      without the contract's key can hold them). The decidable one is selected alone, so
      validation sees no duplicate; features then find two rows for the id and the shard
      fails (UnknownExceptionIds with an empty list); the status write-back would also update
      both rows. Expected: quarantined as a duplicate, the analyst's row untouched.
    - huge_finite: observed 1e299 with expected 1e-300 pass validation (|v| <= 1e300) and
      overflow the feature SQL (`observed / expected`): one row fails the whole run.
      Expected: quarantined (a plausible bound) or a guarded ratio.
    And two found by an outside probe on 2026-11-27: an infinite raised_at, and one days
    before the read date (check raised_at_plausible)."""
    from scoring_fixtures import _apply_env
    from vee_tasks.scoring.pipeline import score_read_date

    fw = fuzz_world
    _apply_env(monkeypatch, {**fw["world"].env(), "VEE_WAREHOUSE_URL": fw["url"]})
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_VEE_WAREHOUSE", raising=False)
    settings_ = get_settings().with_overrides(max_quarantine_share=1.0, volume_min_history_days=10**6)
    engine, day = fw["engine"], fw["day"]
    start = _local_day_start(day)
    row = {"id": FUZZ_ID_BASE, "meter": fw["meters"][0], "rule": "SPIKE", "day": day,
           "ws": start + dt.timedelta(hours=3), "we": start + dt.timedelta(hours=5), "obs": 9.0,
           "exp": 2.0, "rv": "SPIKE/3", "raised": start + dt.timedelta(hours=26)}
    if case == "analyst_twin":
        rows = [{**row, "status": "ANALYST_RESOLVED"}, {**row, "status": "OPEN"}]
    elif case == "huge_finite":
        rows = [{**row, "status": "OPEN", "obs": 1e299, "exp": 1e-300}]
    elif case == "infinite_raised_at":
        # before 2026-11-27 this passed validation and failed the shard ("cannot subtract
        # infinite timestamps"): one row stopped the whole read date
        rows = [{**row, "status": "OPEN", "raised": "infinity"}]
    else:
        # raised nine days before its read date: passed, and was scored on features that
        # saw none of the day's reads
        rows = [{**row, "status": "OPEN", "raised": start - dt.timedelta(days=9)}]
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO mdm.vee_exception VALUES (:id, :meter, :rule, :day, :ws, :we, "
                    ":obs, :exp, :rv, :raised, :status, :raised)"),
            rows,
        )
    try:
        run = score_read_date(engine, day, run_id=f"fuzz_{case}", settings=settings_)
        with engine.connect() as conn:
            statuses = sorted(r[0] for r in conn.execute(sa.text(
                "SELECT status FROM mdm.vee_exception WHERE exception_id = :i"), {"i": FUZZ_ID_BASE}))
        assert run.status == "SUCCESS"
        assert (run.selected, run.quarantined, run.scored) == (1, 1, 0)
        if case == "analyst_twin":
            assert "ANALYST_RESOLVED" in statuses
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM mdm.vee_exception WHERE read_date = :d"), {"d": day})
            conn.execute(sa.text("DELETE FROM vee.exception_resolution WHERE read_date = :d"), {"d": day})
            conn.execute(sa.text("DELETE FROM vee.quarantined_exception WHERE read_date = :d"), {"d": day})


def test_an_id_on_two_read_dates_stays_quarantined_under_both(fuzz_world, monkeypatch):
    """A warehouse without the contract's key holds one id on two read dates: each run
    quarantines its copy, and the second run must not take the first date's row away
    (a review on 2026-11-27 caught the rerun's delete-by-id doing so)."""
    from scoring_fixtures import _apply_env
    from vee_tasks.scoring.pipeline import score_read_date

    fw = fuzz_world
    _apply_env(monkeypatch, {**fw["world"].env(), "VEE_WAREHOUSE_URL": fw["url"]})
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_VEE_WAREHOUSE", raising=False)
    settings_ = get_settings().with_overrides(max_quarantine_share=1.0, volume_min_history_days=10**6)
    engine = fw["engine"]
    days = [fw["day"], fw["day"] + dt.timedelta(days=1)]
    rows = []
    for day in days:
        start = _local_day_start(day)
        rows.append({"id": FUZZ_ID_BASE + 50, "meter": fw["meters"][0], "rule": "SPIKE", "day": day,
                     "ws": start + dt.timedelta(hours=3), "we": start + dt.timedelta(hours=5),
                     "obs": 9.0, "exp": 2.0, "rv": "SPIKE/3", "raised": start + dt.timedelta(hours=26),
                     "status": "OPEN"})
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO mdm.vee_exception VALUES (:id, :meter, :rule, :day, :ws, "
                             ":we, :obs, :exp, :rv, :raised, :status, :raised)"), rows)
    try:
        for n, day in enumerate(days):
            run = score_read_date(engine, day, run_id=f"twice_{n}", settings=settings_)
            assert (run.status, run.quarantined, run.scored) == ("SUCCESS", 1, 0)
        with engine.connect() as conn:
            quarantined = conn.execute(sa.text(
                "SELECT read_date FROM vee.quarantined_exception WHERE exception_id = :i "
                "ORDER BY 1"), {"i": FUZZ_ID_BASE + 50}).scalars().all()
        assert quarantined == days
    finally:
        with engine.begin() as conn:
            for table in ("mdm.vee_exception", "vee.exception_resolution", "vee.quarantined_exception"):
                conn.execute(sa.text(f"DELETE FROM {table} WHERE read_date = ANY(:d)"), {"d": days})
