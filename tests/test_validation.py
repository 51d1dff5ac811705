"""Nightly data-quality validation: the GX suite's row and batch checks.

On DataFrames (no database), and on rows staged in a real warehouse through the extract and
validate steps, including rows only a warehouse that does not enforce the contract can hold.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from scoring_fixtures import (
    TZ,
    insert_exceptions,
    local,
    relax_contract,
    seed_day,
    seed_meters,
)
from vee_tasks.config import RULE_CODES, get_settings
from vee_tasks.scoring import steps
from vee_tasks.scoring.errors import DataQualityError
from vee_tasks.scoring.report import FAILED_ROWS_FILE
from vee_tasks.scoring.validation import (
    check_names,
    dq_words,
    load_suite,
    prepare_frame,
    validate_frame,
    volume_check,
)
from vee_tasks.warehouse import execute_sql_file

DAY = dt.date(2026, 3, 10)


def _row(i, **changes):
    row = {
        "exception_id": i,
        "meter_id": f"M{i}",
        "rule_code": "SPIKE",
        "window_start": pd.Timestamp(local(DAY, 1)),
        "window_end": pd.Timestamp(local(DAY, 3)),
        "raised_at": pd.Timestamp(local(DAY, 26)),
        "observed_value": 12.5,
        "expected_value": 3.0,
        "observed_null": False,
        "expected_null": False,
        "meter_known": True,
    }
    row.update(changes)
    return row


def _frame(rows):
    return pd.DataFrame(rows)


def test_suite_names_every_check_and_uses_the_contract_codes():
    suite = load_suite()
    assert suite["name"] == "nightly_exceptions"
    assert set(check_names("row")) == {
        "exception_id_not_null",
        "exception_id_unique",
        "rule_code_known",
        "meter_known",
        "window_overlaps_day",
        "window_length_plausible",
        "window_ordered",
        "raised_at_plausible",
        "observed_value_finite",
        "expected_value_finite",
    }
    codes = [e for e in suite["expectations"] if e["meta"]["check"] == "rule_code_known"][0]
    assert tuple(codes["kwargs"]["value_set"]) == RULE_CODES


def test_clean_rows_pass(tmp_path):
    outcome = validate_frame(_frame([_row(i) for i in range(1, 21)]), DAY, TZ, report_dir=tmp_path / "r")
    assert outcome.passed and outcome.row_failures == {}
    assert outcome.selected == 20
    assert (tmp_path / "r" / "index.html").exists()


def test_each_bad_row_fails_its_named_check(tmp_path):
    day_start = pd.Timestamp(local(DAY, 0))
    rows = [_row(i) for i in range(1, 101)]
    bad = {
        101: (_row(101, rule_code="VOLTAGE"), ["rule_code_known"]),
        102: (_row(102, meter_known=False), ["meter_known"]),
        # a window that ends as the read date begins: nothing of it in the day
        103: (_row(103, window_start=day_start - pd.Timedelta(hours=2), window_end=day_start),
              ["window_overlaps_day"]),
        # 40 days up to the read date: not a rule's window
        104: (_row(104, window_start=day_start - pd.Timedelta(days=40)), ["window_length_plausible"]),
        105: (_row(105, window_start=pd.Timestamp(local(DAY, 5)), window_end=pd.Timestamp(local(DAY, 4))),
              ["window_ordered"]),
        106: (_row(106, observed_value=math.nan), ["observed_value_finite"]),
        107: (_row(107, expected_value=-math.inf), ["expected_value_finite"]),
        108: (_row(108, observed_value=None, observed_null=True), ["observed_value_finite"]),
        109: (_row(109, exception_id=None), ["exception_id_not_null"]),
        # a window entirely after the read date
        110: (_row(110, window_start=pd.Timestamp(local(DAY, 25)), window_end=pd.Timestamp(local(DAY, 26))),
              ["window_overlaps_day"]),
        # raised nine days before its read date: its features would see none of the day's reads
        111: (_row(111, raised_at=day_start - pd.Timedelta(days=9)), ["raised_at_plausible"]),
        112: (_row(112, raised_at=None), ["raised_at_plausible"]),
    }
    rows += [r for r, _ in bad.values()]
    rows += [_row(5, meter_id="M5-dup")]  # a second row with id 5
    frame = _frame(rows)
    outcome = validate_frame(frame, DAY, TZ, report_dir=tmp_path / "r")
    by_row = {int(frame.iloc[k - 1]["exception_id"]) if pd.notna(frame.iloc[k - 1]["exception_id"]) else None: v
              for k, v in outcome.row_failures.items()}
    for exception_id, (_, checks) in bad.items():
        key = None if exception_id == 109 else exception_id
        assert by_row[key] == checks, exception_id
    assert by_row[5] == ["exception_id_unique"]
    # both copies of the duplicated id are quarantined: nothing says which one is right
    assert sum(1 for k in outcome.row_failures if frame.iloc[k - 1]["exception_id"] == 5) == 2
    assert outcome.quarantined == len(bad) + 2
    assert outcome.passed  # 14 of 113 rows: below the quarantine share


def test_raised_at_may_be_the_read_dates_utc_midnight_not_days_earlier():
    """An MDMS stamping raised_at with the read date's midnight in UTC (19:00 the evening
    before, in Toronto) is let through; anything earlier is not (a day of slack was, until an
    outside probe on 2026-11-27)."""
    utc_midnight = pd.Timestamp(dt.datetime.combine(DAY, dt.time(0), tzinfo=dt.timezone.utc))
    day_start = pd.Timestamp(local(DAY, 0))
    rows = [_row(1, raised_at=utc_midnight), _row(2, raised_at=day_start - pd.Timedelta(hours=23)),
            _row(3, raised_at=day_start - pd.Timedelta(hours=25))]
    outcome = validate_frame(_frame(rows + [_row(i) for i in range(4, 30)]), DAY, TZ)
    assert outcome.row_failures == {2: ["raised_at_plausible"], 3: ["raised_at_plausible"]}


def test_hostile_text_is_escaped_in_the_data_docs(tmp_path):
    """GX prints a failing value into the Data Docs as raw HTML: a rule code from the MDMS
    holding markup must show as text, never run as script."""
    hostile = ['<script>alert("vee")</script>', '"><img src=x onerror=alert(1)>']
    rows = [_row(1, rule_code=hostile[0]), _row(2, rule_code=hostile[1])]
    outcome = validate_frame(_frame(rows + [_row(i) for i in range(3, 40)]), DAY, TZ,
                             report_dir=tmp_path / "r")
    assert outcome.row_failures == {1: ["rule_code_known"], 2: ["rule_code_known"]}
    pages = [p.read_text(encoding="utf-8") for p in (tmp_path / "r").rglob("*.html")]
    assert pages
    for page in pages:
        assert "<script>alert" not in page and "<img src=x" not in page
    # the failing values are still shown, as text
    assert any("&lt;script&gt;alert(&quot;vee&quot;)&lt;/script&gt;" in page for page in pages)


def test_null_expected_value_is_allowed_nan_is_not(tmp_path):
    rows = [_row(1, expected_value=None, expected_null=True), _row(2, expected_value=math.nan)]
    outcome = validate_frame(_frame(rows + [_row(i) for i in range(3, 30)]), DAY, TZ)
    assert outcome.row_failures == {2: ["expected_value_finite"]}


def test_window_bounds_follow_the_local_day_on_daylight_saving_days():
    spring = dt.date(2026, 3, 8)  # 23 hours in Toronto
    rows = [
        _row(1, window_start=pd.Timestamp(local(spring, 22)), window_end=pd.Timestamp(local(spring, 23))),
        _row(2, window_start=pd.Timestamp(local(spring, 23)), window_end=pd.Timestamp(local(spring, 24))),
    ]
    prepared = prepare_frame(_frame(rows), spring, TZ)
    # local(spring, 23) is 00:00 on March 9 (23-hour day): the second window is the next day's
    assert list(prepared["window_day_overlap_s"]) == [3600.0, -1.0]


def test_a_window_may_reach_beyond_its_read_date_for_up_to_31_days(tmp_path):
    """The contract's read date is the day whose reads the rule looked at, not the window's
    bounds: a flatline from the evening before, an export from 22:00 to 01:00 or a step change
    seen over days are scored (they were quarantined until an outside probe, 2026-11-28: an
    MDMS raising such windows would have had most of a night quarantined, or the night failed
    on the quarantine share)."""
    day_start, day_end = pd.Timestamp(local(DAY, 0)), pd.Timestamp(local(DAY, 24))
    rows = [
        _row(1, rule_code="FLATLINE", window_start=day_start - pd.Timedelta(hours=6)),
        _row(2, rule_code="REVERSE_FLOW", window_start=pd.Timestamp(local(DAY, 22)),
             window_end=day_end + pd.Timedelta(hours=1)),
        _row(3, rule_code="STEP_CHANGE", window_start=day_start - pd.Timedelta(days=31) + pd.Timedelta(hours=1),
             window_end=day_start + pd.Timedelta(hours=1)),
        _row(4, rule_code="STEP_CHANGE", window_start=day_start - pd.Timedelta(days=31) + pd.Timedelta(hours=1),
             window_end=day_start + pd.Timedelta(hours=1, seconds=1)),
        _row(5, window_start=day_end - pd.Timedelta(seconds=1), window_end=day_end),
        _row(6, window_start=day_end, window_end=day_end + pd.Timedelta(hours=1)),
    ]
    outcome = validate_frame(_frame(rows + [_row(i) for i in range(7, 40)]), DAY, TZ)
    # row 3 lasts 31 days exactly, row 4 one second more; row 5's last second is the day's
    assert outcome.row_failures == {4: ["window_length_plausible"], 6: ["window_overlaps_day"]}


def test_a_batch_mostly_bad_fails_the_quarantine_share():
    rows = [_row(i) for i in range(1, 41)] + [_row(i, rule_code="BAD") for i in range(41, 101)]
    outcome = validate_frame(_frame(rows), DAY, TZ)
    assert not outcome.passed
    assert any(f.startswith("quarantine_share") for f in outcome.batch_failures)


def test_a_few_bad_rows_on_a_quiet_day_are_quarantined_not_a_batch_failure():
    """3 bad rows of 13 (23 %) are a row problem: below quarantine_share_min_rows."""
    rows = [_row(i) for i in range(1, 11)] + [_row(i, rule_code="BAD") for i in range(11, 14)]
    outcome = validate_frame(_frame(rows), DAY, TZ)
    assert outcome.passed, outcome.batch_failures
    assert outcome.quarantined == 3
    strict = get_settings().with_overrides(quarantine_share_min_rows=1)
    assert not validate_frame(_frame(rows), DAY, TZ, settings=strict).passed


def test_volume_check_needs_history_and_bounds_the_ratio():
    settings = get_settings().with_overrides(volume_min_history_days=5, min_volume_ratio=0.5,
                                              max_volume_ratio=2.0)
    history = {DAY - dt.timedelta(days=k): 100 for k in range(1, 8)}
    assert volume_check(100, history, settings)[0] is None
    assert volume_check(30, history, settings)[0].message.startswith("volume")
    assert volume_check(250, history, settings)[0].message.startswith("volume")
    # a real busy day is for the operator to let through: the message names the settings
    assert "VEE_MAX_VOLUME_RATIO" in volume_check(250, history, settings)[0].message
    short = dict(list(history.items())[:3])
    breach, detail = volume_check(5, short, settings)
    assert breach is None and detail["checked"] is False


def test_a_small_warehouse_quiet_day_is_noise_not_a_volume_breach():
    """A median of 7 exceptions a day: a day of 1 is 0.14x, below 0.2x, but Poisson noise
    gives one that low 0.7 % of the time; a day of 0 (0.09 %) or of 40 is a breach."""
    settings = get_settings().with_overrides(volume_min_history_days=5)
    history = {DAY - dt.timedelta(days=k): 7 for k in range(1, 15)}
    breach, detail = volume_check(1, history, settings)
    assert breach is None and detail["checked"] is True and detail["ratio"] < 0.2
    assert volume_check(40, history, settings)[0].message.startswith("volume")
    assert volume_check(0, history, settings)[0] is not None
    # on a utility's volume the ratio decides: 0.15x of 2,000 is far outside the noise
    busy = {day: 2000 for day in history}
    assert volume_check(300, busy, settings)[0] is not None
    assert volume_check(1000, busy, settings)[0] is None


def test_a_million_rows_validate_in_seconds():
    """Not a benchmark (no timing asserted): the suite handles bench-sized batches."""
    n = 200_000
    frame = pd.DataFrame(
        {
            "exception_id": np.arange(1, n + 1),
            "meter_id": "M1",
            "rule_code": np.array(RULE_CODES, dtype=object)[np.arange(n) % len(RULE_CODES)],
            "window_start": pd.Timestamp(local(DAY, 1)),
            "window_end": pd.Timestamp(local(DAY, 2)),
            "raised_at": pd.Timestamp(local(DAY, 26)),
            "observed_value": 1.0,
            "expected_value": 2.0,
            "observed_null": False,
            "expected_null": False,
            "meter_known": True,
        }
    )
    frame.loc[17, "observed_value"] = np.inf
    outcome = validate_frame(frame, DAY, TZ)
    assert outcome.row_failures == {18: ["observed_value_finite"]}


def test_gx_validates_a_batch_without_hashing_every_value():
    """GX's per-value fingerprint of a pandas batch (~1 s a million rows) is switched off; the
    checks still see every row."""
    from vee_tasks.quality import run_checkpoint

    spec = {"name": "fingerprint", "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}}]}
    validation = run_checkpoint(pd.DataFrame({"a": [1.0, 2.0, None]}), spec, None,
                                {"result_format": "SUMMARY"})
    assert not validation.success
    assert validation.results[0].result["unexpected_count"] == 1
    assert "pandas_data_fingerprint" not in validation.meta["batch_markers"]


# --- the operator's report page ----------------------------------------------------------


def _page(report_dir: Path) -> str:
    return (report_dir / "index.html").read_text(encoding="utf-8")


def test_the_report_of_a_run_stopped_by_a_batch_check_says_why_and_what_to_do(tmp_path):
    """The page an alert links named no batch failure (they were only in run.json and the
    log): an operator must read at the top the outcome, each failed batch check with its
    measured value, limit and setting, and the rerun (outside probe)."""
    settings = get_settings().with_overrides(volume_min_history_days=5)
    history = {DAY - dt.timedelta(days=k): 20 for k in range(1, 8)}
    rows = [_row(i) for i in range(1, 72)] + [_row(i, observed_value=math.nan) for i in range(72, 102)]
    outcome = validate_frame(_frame(rows), DAY, TZ, settings=settings, volume_history=history,
                             report_dir=tmp_path / "r", run_id="scheduled__2026-03-11T04:00:00+00:00")
    assert [f.check for f in outcome.batch] == ["volume", "quarantine_share"]
    page = _page(tmp_path / "r")
    top = page[: page.index("Rows that failed row checks")]
    assert "Run stopped: data quality FAILED" in top
    assert "none of the 101 exceptions of 2026-03-10 was scored" in top
    assert "101 exceptions: 5.05x the median 20 of the last 7 days" in top
    assert "0.2x to 5x the median" in top and "VEE_MIN_VOLUME_RATIO / VEE_MAX_VOLUME_RATIO" in top
    assert "30% (30 of 101 rows failed row checks)" in top
    assert "at most 20%" in top and "VEE_MAX_QUARANTINE_SHARE" in top
    assert "airflow tasks clear vee_nightly_scoring -s 2026-03-10 -e 2026-03-10 -y" in top
    # a run `vee score` started is rerun the same way
    validate_frame(_frame(rows), DAY, TZ, settings=settings, volume_history=history,
                   report_dir=tmp_path / "cli", run_id="cli__2026-03-10")
    assert "vee score --read-date 2026-03-10</code>" in _page(tmp_path / "cli")


def test_the_report_names_each_failing_exception_with_what_it_held(tmp_path):
    """Rows were named by staging number only, failed_rows.csv was not linked, a NaN showed
    as inf and a window outside the day as -1.0 (the suite's encodings): the page and the CSV
    show exception id, meter, rule, read date, the checks, and the row's own values."""
    import csv

    day_start = pd.Timestamp(local(DAY, 0))
    rows = [_row(i) for i in range(1, 40)] + [
        _row(41, meter_id="MNAN", observed_value=math.nan),
        _row(42, meter_id="MEARLY", rule_code="GAP", window_start=day_start - pd.Timedelta(hours=2),
             window_end=day_start - pd.Timedelta(hours=1)),
        _row(43, meter_id="MNULL", observed_value=None, observed_null=True, expected_value=-math.inf),
        # a meter id a spreadsheet would run as a formula, on a row that fails
        _row(44, meter_id='=HYPERLINK("http://x","open")', observed_value=math.inf),
    ]
    outcome = validate_frame(_frame(rows), DAY, TZ, report_dir=tmp_path / "r")
    assert outcome.quarantined == 4
    page = _page(tmp_path / "r")
    assert '<a href="failed_rows.csv">failed_rows.csv</a>' in page
    assert ">inf<" not in page and ">-1.0<" not in page
    assert ("<td>41</td><td>MNAN</td><td>SPIKE</td><td>2026-03-10</td>"
            "<td>observed_value_finite</td><td>NaN</td><td>3.0</td>") in page
    assert ("<td>42</td><td>MEARLY</td><td>GAP</td><td>2026-03-10</td><td>window_overlaps_day</td>"
            "<td>12.5</td><td>3.0</td><td>2026-03-09 22:00:00-04:00</td>") in page
    assert "<td>NULL</td><td>-Infinity</td>" in page
    with open(tmp_path / "r" / FAILED_ROWS_FILE, newline="", encoding="utf-8") as handle:
        failed = {int(r["exception_id"]): r for r in csv.DictReader(handle)}
    assert set(failed) == {41, 42, 43, 44}
    assert failed[44]["meter_id"] == "'" + '=HYPERLINK("http://x","open")'  # text, not a formula
    assert "=HYPERLINK(&quot;http://x&quot;,&quot;open&quot;)" in page  # the page shows it as it is
    assert failed[41]["observed_value"] == "NaN" and failed[41]["meter_id"] == "MNAN"
    assert failed[42]["window_start"] == "2026-03-09 22:00:00-04:00"
    assert failed[42]["read_date"] == "2026-03-10" and failed[42]["rule_code"] == "GAP"
    assert failed[43]["failed_checks"] == "observed_value_finite expected_value_finite"
    assert (failed[43]["observed_value"], failed[43]["expected_value"]) == ("NULL", "-Infinity")


def test_a_run_with_quarantined_rows_passed_and_its_page_says_which_were_set_aside(tmp_path):
    """The page said GX's "Status: Failed" while the run summary said "data quality PASSED"
    for a run that went on with 3 rows quarantined: both now say what happened."""
    rows = [_row(i) for i in range(1, 11)] + [_row(i, rule_code="BAD") for i in range(11, 14)]
    outcome = validate_frame(_frame(rows), DAY, TZ, report_dir=tmp_path / "r")
    page = _page(tmp_path / "r")
    assert "Data quality PASSED (3 rows quarantined)" in page
    assert "The run went on. 3 of the 13 exceptions" in page and "Failed" not in page
    assert dq_words(outcome.outcome, outcome.quarantined) == "PASSED (3 rows quarantined)"
    assert dq_words("PASSED", 1) == "PASSED (1 row quarantined)"
    assert dq_words("PASSED", 0) == "PASSED" and dq_words(None, None) == "not run"
    clean = validate_frame(_frame(rows[:10]), DAY, TZ, report_dir=tmp_path / "clean")
    assert "All 10 exceptions of 2026-03-10 passed every check" in _page(tmp_path / "clean")
    assert clean.failed_rows_path is None and not (tmp_path / "clean" / FAILED_ROWS_FILE).exists()


def test_the_report_is_one_small_page_that_needs_no_network(tmp_path):
    """GX's Data Docs were ~4.1 MB a run, styled from online CDNs (control rooms are often
    offline): the report is one page with inline styles and nothing fetched."""
    rows = [_row(i) for i in range(1, 2001)] + [_row(i, rule_code="BAD") for i in range(2001, 2004)]
    validate_frame(_frame(rows), DAY, TZ, report_dir=tmp_path / "r")
    files = {p.name: p.stat().st_size for p in (tmp_path / "r").rglob("*") if p.is_file()}
    assert set(files) == {"index.html", FAILED_ROWS_FILE}
    assert sum(files.values()) < 50_000
    page = _page(tmp_path / "r")
    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    assert "<script" not in page and "<link" not in page


def test_a_read_before_its_meters_install_date_is_scored_for_review_with_a_warning(tmp_path):
    """An exception read before mdm.meter's install date of its meter (a meter exchange
    recorded late, a read booked to the wrong meter) is no reason to quarantine it, but the
    operator is told which ones (outside probe 2026-11-28: scored with a negative meter age
    and no word anywhere)."""
    rows = ([_row(i, meter_age_days=400) for i in range(1, 11)]
            + [_row(11, meter_age_days=-3), _row(12, meter_age_days=0),
               _row(13, meter_age_days=None),  # an unknown meter's: not this check's
               _row(14, meter_age_days=-2, rule_code="BAD")])  # quarantined: not scored
    outcome = validate_frame(_frame(rows), DAY, TZ, report_dir=tmp_path / "r")
    assert outcome.passed and set(outcome.row_failures) == {14}
    assert outcome.warnings == [
        "meter_installed_by_read_date: 1 exception(s) read before their meter's install date "
        "in mdm.meter: exception 11 on meter 'M11' (installed 3 day(s) after the read date). "
        "Scored and sent to review, never auto-applied; ask the MDMS team whether the install "
        "date or the exception's meter id is wrong."
    ]
    assert outcome.summary()["warning_counts"] == {"meter_installed_by_read_date": 1}
    page = _page(tmp_path / "r")
    assert "Data quality PASSED, with a warning" in page and "exception 11 on meter" in page
    assert re.search(r"meter_installed_by_read_date</td><td>warning</td>.*?WARNING: 2 row", page)
    # many: the first few by id, the rest counted; a frame without install dates: no check
    many = [_row(i, meter_age_days=-1) for i in range(1, 21)]
    (line,) = validate_frame(_frame(many), DAY, TZ).warnings
    assert line.startswith("meter_installed_by_read_date: 20 exception(s)")
    assert "exception 5 on meter 'M5'" in line and "exception 6 " not in line
    assert line.count("installed 1 day(s) after") == 5 and " and 15 more." in line
    assert validate_frame(_frame([_row(i) for i in range(1, 5)]), DAY, TZ).warnings == []
    # a run stopped by a batch check scores nothing: no "scored and sent to review" (review)
    stopped = validate_frame(_frame(many + [_row(i, rule_code="BAD") for i in range(21, 101)]),
                             DAY, TZ)
    assert not stopped.passed and stopped.warnings == []


# --- staged in a real warehouse ----------------------------------------------------------


def _stage_and_validate(engine, run_id="t1"):
    steps.start_run(engine, run_id, DAY)
    selected = steps.extract(engine, run_id, DAY)
    steps.validate(engine, run_id, DAY)
    return selected


def test_staged_bad_rows_are_quarantined_and_stay_open(fresh_engine):
    engine = fresh_engine
    with engine.begin() as conn:
        relax_contract(conn)
        meters = seed_meters(conn, 60)
        seed_day(conn, DAY, meters)
        bad = [
            dict(id=1001, m=meters[0], rule="NOT_A_RULE", ws=local(DAY, 1), we=local(DAY, 2), obs=1.0),
            dict(id=1002, m="GHOST", rule="SPIKE", ws=local(DAY, 1), we=local(DAY, 2), obs=1.0),
            dict(id=1003, m=meters[1], rule="SPIKE", ws=local(DAY, -3), we=local(DAY, -1), obs=1.0),
            dict(id=1004, m=meters[2], rule="SPIKE", ws=local(DAY, 1), we=local(DAY, 2), obs=float("nan")),
            dict(id=1005, m=meters[3], rule="SPIKE", ws=local(DAY, 1), we=local(DAY, 2), obs=1.0),
            dict(id=1005, m=meters[4], rule="GAP", ws=local(DAY, 1), we=local(DAY, 2), obs=2.0),
        ]
        insert_exceptions(
            conn,
            [dict(b, d=DAY, exp=1.0, rv="X/1", raised=local(DAY, 26), status="OPEN") for b in bad],
        )
        # never selected: resolved by an analyst, or another day
        seed_day(conn, DAY, meters[:3], first_id=5000, status="ANALYST_RESOLVED")
        seed_day(conn, DAY + dt.timedelta(days=1), meters[:3], first_id=6000)
    selected = _stage_and_validate(engine)
    assert selected == 60 + 6
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT exception_id, failed_checks, payload FROM vee.quarantined_exception ORDER BY 1, 3::text")
        ).fetchall()
        run = conn.execute(sa.text("SELECT * FROM vee.scoring_run")).mappings().one()
        statuses = dict(conn.execute(sa.text(
            "SELECT exception_id, status FROM mdm.vee_exception WHERE exception_id > 1000 AND exception_id < 2000"
        )).fetchall())
    got = {(r.exception_id, tuple(r.failed_checks)) for r in rows}
    assert got == {
        (1001, ("rule_code_known",)),
        (1002, ("meter_known",)),
        (1003, ("window_overlaps_day",)),
        (1004, ("observed_value_finite",)),
        (1005, ("exception_id_unique",)),
    }
    assert len(rows) == 6  # both copies of 1005
    nan_payload = [r.payload for r in rows if r.exception_id == 1004][0]
    assert nan_payload["observed_value"] == "NaN" and nan_payload["meter_id"] == meters[2]
    assert set(statuses.values()) == {"OPEN"}
    assert run["dq_outcome"] == "PASSED" and run["selected"] == 66 and run["quarantined"] == 6
    assert run["dq_report_path"].endswith("index.html")
    # rerun of the same date: the quarantine is replaced, not added to
    _stage_and_validate(engine, run_id="t2")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM vee.quarantined_exception")).scalar() == 6
        assert set(conn.execute(sa.text("SELECT DISTINCT dag_run_id FROM vee.quarantined_exception")).scalars()) == {"t2"}


def test_a_staged_read_before_its_meters_install_date_is_warned_of_not_quarantined(fresh_engine):
    """The install date comes from mdm.meter through the extract (the earliest where the
    warehouse holds a meter twice) into the run record's warnings."""
    engine = fresh_engine
    with engine.begin() as conn:
        relax_contract(conn)
        meters = seed_meters(conn, 30)
        ids = seed_day(conn, DAY, meters)
        conn.execute(sa.text("UPDATE mdm.meter SET installed_on = :d WHERE meter_id = :m"),
                     [{"d": DAY + dt.timedelta(days=9), "m": meters[4]},
                      {"d": DAY, "m": meters[5]}])  # installed that day: no warning
        # a second row for meters[6] (no key enforced): its earliest date counts
        conn.exec_driver_sql("ALTER TABLE mdm.meter DROP CONSTRAINT IF EXISTS meter_pkey CASCADE")
        conn.execute(sa.text(
            "INSERT INTO mdm.meter SELECT * FROM mdm.meter WHERE meter_id = :m"), {"m": meters[6]})
        conn.execute(sa.text(
            "UPDATE mdm.meter SET installed_on = :d WHERE ctid = (SELECT max(ctid) FROM mdm.meter "
            "WHERE meter_id = :m)"), {"d": DAY + dt.timedelta(days=1), "m": meters[6]})
    assert _stage_and_validate(engine) == 30
    with engine.connect() as conn:
        run = conn.execute(sa.text("SELECT * FROM vee.scoring_run")).mappings().one()
        failed = conn.execute(sa.text(
            "SELECT count(*) FROM vee.nightly_extract WHERE failed_checks IS NOT NULL")).scalar()
    assert run["dq_outcome"] == "PASSED" and run["quarantined"] == 0 and failed == 0
    (line,) = run["dq_summary"]["warnings"]
    assert line.startswith("meter_installed_by_read_date: 1 exception(s)")
    assert f"exception {ids[4]} on meter '{meters[4]}' (installed 9 day(s) after" in line
    assert "Data quality PASSED, with a warning" in Path(run["dq_report_path"]).read_text()


def test_a_batch_sixty_percent_bad_fails_and_writes_nothing(fresh_engine):
    engine = fresh_engine
    with engine.begin() as conn:
        meters = seed_meters(conn, 50)
        seed_day(conn, DAY, meters[:20])
        seed_day(conn, DAY, meters[20:50], first_id=100)
        conn.execute(sa.text("UPDATE mdm.vee_exception SET observed_value = 'NaN' WHERE exception_id >= 100"))
    steps.start_run(engine, "bad", DAY)
    steps.extract(engine, "bad", DAY)
    with pytest.raises(DataQualityError, match="quarantine_share") as raised:
        steps.validate(engine, "bad", DAY)
    # the task log and the record say how to rerun, not only the HTML report
    rerun = f"rerun: vee score --read-date {DAY} --run-id bad"
    assert str(raised.value).endswith(rerun)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM vee.quarantined_exception")).scalar() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM vee.exception_resolution")).scalar() == 0
        assert set(conn.execute(sa.text("SELECT DISTINCT status FROM mdm.vee_exception")).scalars()) == {"OPEN"}
        run = conn.execute(sa.text("SELECT * FROM vee.scoring_run")).mappings().one()
    assert run["status"] == "DQ_FAILED" and run["dq_outcome"] == "FAILED"
    assert "quarantine_share" in run["message"] and run["message"].endswith(rerun)
    # nothing was quarantined (the table above is empty): the record says so, and names the
    # failing rows apart (outside probe 2026-11-27: it said 30 quarantined)
    assert run["selected"] == 50 and run["quarantined"] == 0
    summary = json.loads(json.dumps(run["dq_summary"]))
    assert summary["outcome"] == "FAILED"
    assert summary["quarantined"] == 0 and summary["failed_row_checks"] == 30
    # which exceptions failed which checks: the one record of a run that quarantined nothing
    import csv

    with open(summary["failed_rows_file"], newline="", encoding="utf-8") as handle:
        failed = list(csv.DictReader(handle))
    assert sorted(int(r["exception_id"]) for r in failed) == list(range(100, 130))
    assert {r["failed_checks"] for r in failed} == {"observed_value_finite"}
    page = Path(run["dq_report_path"]).read_text(encoding="utf-8")
    assert "Run stopped: data quality FAILED" in page and "60% (30 of 50 rows" in page
    # run "bad" was started here, not by Airflow: rerun as it was started
    assert "vee score --read-date 2026-03-10 --run-id bad" in page

    # The MDMS fixes the values and the operator reruns the whole run (same run id): its
    # report folder is written again from scratch. Found in review on 2026-11-27: the failed
    # attempt's failed_rows.csv stayed beside the clean result and named 30 failures.
    report_dir = Path(summary["failed_rows_file"]).parent
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE mdm.vee_exception SET observed_value = 1.5 WHERE exception_id >= 100"))
    steps.start_run(engine, "bad", DAY)
    steps.extract(engine, "bad", DAY)
    steps.validate(engine, "bad", DAY)
    with engine.connect() as conn:
        rerun = conn.execute(sa.text("SELECT * FROM vee.scoring_run")).mappings().one()
    assert rerun["dq_outcome"] == "PASSED" and rerun["quarantined"] == 0
    assert "failed_rows_file" not in rerun["dq_summary"]
    assert not (report_dir / FAILED_ROWS_FILE).exists()
    assert json.loads((report_dir / "run.json").read_text())["outcome"] == "PASSED"


def test_volume_far_below_recent_days_fails(fresh_engine, monkeypatch):
    engine = fresh_engine
    with engine.begin() as conn:
        meters = seed_meters(conn, 40)
        next_id = 1
        for back in range(1, 11):
            ids = seed_day(conn, DAY - dt.timedelta(days=back), meters, first_id=next_id)
            next_id = ids[-1] + 1
        seed_day(conn, DAY, meters[:3], first_id=next_id)
    steps.start_run(engine, "low", DAY)
    steps.extract(engine, "low", DAY)
    with pytest.raises(DataQualityError, match="volume"):
        steps.validate(engine, "low", DAY)


def test_schema_drift_fails_before_extract(fresh_engine):
    engine = fresh_engine
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE mdm.vee_exception ALTER COLUMN observed_value TYPE text")
    steps.start_run(engine, "schema", DAY)
    with pytest.raises(DataQualityError, match="observed_value"):
        steps.extract(engine, "schema", DAY)
    with engine.connect() as conn:
        run = conn.execute(sa.text("SELECT status, dq_outcome FROM vee.scoring_run")).one()
    assert tuple(run) == ("DQ_FAILED", "FAILED")


def test_an_id_shared_with_an_analysts_row_is_quarantined_and_the_analyst_row_untouched(fresh_engine):
    """Only a warehouse without the contract's key can hold it: the decidable twin is the only
    one selected, yet it is a duplicate of the analyst's row."""
    engine = fresh_engine
    with engine.begin() as conn:
        relax_contract(conn)
        meters = seed_meters(conn, 30)
        seed_day(conn, DAY, meters)
        twin = dict(id=7, m=meters[7], rule="SPIKE", d=DAY, ws=local(DAY, 1), we=local(DAY, 2), obs=3.0,
                    exp=1.0, rv="SPIKE/3", raised=local(DAY, 26), status="ANALYST_RESOLVED")
        insert_exceptions(conn, [twin])
    steps.start_run(engine, "twin", DAY)
    assert steps.extract(engine, "twin", DAY) == 30
    steps.validate(engine, "twin", DAY)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT exception_id, failed_checks FROM vee.quarantined_exception")).fetchall()
    assert [(r.exception_id, r.failed_checks) for r in rows] == [(7, ["exception_id_unique"])]


def test_a_partial_unique_index_is_no_key_and_duplicates_are_still_quarantined(fresh_engine):
    """A unique index on exception_id over some rows only (or left invalid) enforces nothing
    for the others: the run checks for duplicates itself (outside probe, 2026-11-27)."""
    engine = fresh_engine
    with engine.begin() as conn:
        relax_contract(conn)
        conn.exec_driver_sql("CREATE UNIQUE INDEX exc_recent_key ON mdm.vee_exception "
                             "(exception_id) WHERE exception_id < 1000")
        meters = seed_meters(conn, 30)
        seed_day(conn, DAY, meters)
        insert_exceptions(conn, [
            dict(id=2001, m=meters[i], rule=rule, d=DAY, ws=local(DAY, 1), we=local(DAY, 2),
                 obs=3.0, exp=1.0, rv=f"{rule}/1", raised=local(DAY, 26), status="OPEN")
            for i, rule in ((1, "SPIKE"), (2, "GAP"))
        ])
        assert not execute_sql_file(conn, "queries/nightly_exception_key_enforced.sql").scalar()
    steps.start_run(engine, "partial", DAY)
    assert steps.extract(engine, "partial", DAY) == 32
    steps.validate(engine, "partial", DAY)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT exception_id, failed_checks FROM vee.quarantined_exception")).fetchall()
        conn.exec_driver_sql("DELETE FROM mdm.vee_exception WHERE exception_id = 2001")
        conn.exec_driver_sql("CREATE UNIQUE INDEX exc_key ON mdm.vee_exception (exception_id) "
                             "INCLUDE (meter_id)")  # other columns may ride along
        assert execute_sql_file(conn, "queries/nightly_exception_key_enforced.sql").scalar()
        conn.rollback()
    assert [(r.exception_id, r.failed_checks) for r in rows] == [(2001, ["exception_id_unique"])] * 2


def test_implausible_magnitudes_are_quarantined():
    rows = [_row(1, observed_value=1e299, expected_value=1e-300), _row(2, observed_value=0.0, expected_value=2e9),
            _row(3, observed_value=-5e8, expected_value=1e-9),
            # the rounding residue of a sum near zero is a value, not an encoding error
            _row(4, observed_value=-1.1e-12, expected_value=3e-15)]
    outcome = validate_frame(_frame(rows + [_row(i) for i in range(5, 40)]), DAY, TZ)
    assert outcome.row_failures == {
        1: ["observed_value_finite", "expected_value_finite"],
        2: ["expected_value_finite"],
    }


def test_hostile_text_is_escaped_in_the_training_data_docs(tmp_path):
    """The same for the suites of vee_tasks.quality (training): an analyst's free-text or
    code column holding markup is shown as text in the report."""
    from vee_tasks.quality import run_suite as run_quality_suite

    spec = {
        "expectations": [
            {"type": "expect_column_values_to_be_in_set",
             "kwargs": {"column": "resolution_code", "value_set": ["ACCEPT", "ESTIMATE"]}},
        ],
        "meta": {},
    }
    frame = pd.DataFrame({"resolution_code": ["ACCEPT", "<script>alert('train')</script>", None],
                          "n": [1, 2, 3]})
    result = run_quality_suite(frame, "hostile_check", tmp_path / "r", suite_spec=spec)
    assert not result.success
    pages = [p.read_text(encoding="utf-8") for p in (tmp_path / "r").rglob("*.html")]
    assert pages and all("<script>alert" not in page for page in pages)
    assert any("&lt;script&gt;alert(&#x27;train&#x27;)&lt;/script&gt;" in page for page in pages)
    # the caller's frame is not changed
    assert frame["resolution_code"][1] == "<script>alert('train')</script>"


@pytest.mark.parametrize("zone, before_start_hours, expected", [
    # Sydney (+11 on 2026-03-10): 12 h before the day began is no UTC stamp of the date,
    # whose UTC midnight comes 11 h after the local start (outside probe, 2026-11-27)
    ("Australia/Sydney", 12, ["raised_at_plausible"]),
    ("Australia/Sydney", 0, []),
    # Toronto (-4): the date's UTC midnight is 4 h before the local start: let through
    ("America/Toronto", 4, []),
    ("America/Toronto", 6, ["raised_at_plausible"]),
])
def test_a_raise_before_the_read_date_starts_is_plausible_only_as_its_utc_midnight(
        zone, before_start_hours, expected):
    from zoneinfo import ZoneInfo

    start = dt.datetime.combine(DAY, dt.time(0), tzinfo=ZoneInfo(zone))
    raised = pd.Timestamp(start - dt.timedelta(hours=before_start_hours))
    window = {"window_start": pd.Timestamp(start + dt.timedelta(hours=1)),
              "window_end": pd.Timestamp(start + dt.timedelta(hours=3))}
    rows = [_row(1, raised_at=raised, **window)] + [
        _row(i, raised_at=pd.Timestamp(start + dt.timedelta(hours=26)), **window) for i in range(2, 30)]
    outcome = validate_frame(_frame(rows), DAY, zone)
    assert outcome.row_failures.get(1, []) == expected
