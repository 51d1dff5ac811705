"""Reports: the summary page from real warehouse rows, `vee reports`, and retention."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from vee_tasks import migrations, reports
from vee_tasks.config import get_settings

DAYS = [dt.date(2026, 3, 1), dt.date(2026, 3, 2), dt.date(2026, 3, 3)]
RULES = ["GAP", "SPIKE", "HIGH_USAGE", "FLATLINE"]


@pytest.fixture(scope="module")
def report_db(databases) -> str:
    url = databases.create("reports")
    engine = sa.create_engine(url)
    migrations.upgrade(engine, with_mdm=True)
    engine.dispose()
    return url


def _seed(engine, reports_dir: Path) -> dict:
    """Three nightly runs: success with model v1, a DQ-failed night, success with model v2."""
    runs = {}
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO mdm.meter VALUES ('M1', 'SP1', 'RES', 'AMI_1PH', 1, 15, false, 'R1', "
            "'2020-01-01')"
        ))
        next_id = 1
        for d, day in enumerate(DAYS):
            run_id = f"scheduled__{day}T05:00:00+00:00"
            folder = reports_dir / "nightly" / day.isoformat() / run_id.replace(":", "_")
            folder.mkdir(parents=True)
            (folder / "index.html").write_text(f"<html>docs {run_id}</html>")
            ids = []
            for i in range(10):
                rule = RULES[i % len(RULES)]
                conn.execute(sa.text(
                    "INSERT INTO mdm.vee_exception VALUES (:id, 'M1', :rule, :day, :ws, :we, 1, 1,"
                    " 'X/1', :ws, 'OPEN', :ws)"
                ), {"id": next_id, "rule": rule, "day": day,
                    "ws": dt.datetime(day.year, day.month, day.day, 5, tzinfo=dt.timezone.utc),
                    "we": dt.datetime(day.year, day.month, day.day, 6, tzinfo=dt.timezone.utc)})
                ids.append(next_id)
                next_id += 1
            status = "DQ_FAILED" if d == 1 else "SUCCESS"
            version = "1" if d == 0 else "2"
            quarantined = ids[:2] if d == 1 else []
            scored = [] if d == 1 else ids
            auto = scored[:7] if d == 0 else scored[:4]
            for q in quarantined:
                conn.execute(sa.text(
                    "INSERT INTO vee.quarantined_exception (exception_id, read_date, dag_run_id,"
                    " failed_checks, payload) VALUES (:id, :day, :run, :checks, '{}')"
                ), {"id": q, "day": day, "run": run_id,
                    "checks": ["window_end_after_start", "observed_value_not_null"]
                    if q == quarantined[0] else ["observed_value_not_null"]})
            for s in scored:
                conn.execute(sa.text(
                    "INSERT INTO vee.exception_resolution VALUES (:id, :day, 'ESTIMATE', 0.99,"
                    " '{}', :decision, 'vee-resolution', :version, :run, now())"
                ), {"id": s, "day": day, "decision": "AUTO_APPLY" if s in auto else "REVIEW",
                    "version": version, "run": run_id})
            conn.execute(sa.text(
                "INSERT INTO vee.scoring_run (dag_run_id, read_date, status, model_name,"
                " model_version, selected, scored, quarantined, auto_applied, sent_to_review,"
                " dq_outcome, dq_report_path, dq_summary, finished_at) VALUES (:run, :day,"
                " :status, 'vee-resolution', :version, 10, :scored, :quarantined, :auto,"
                " :review, :dq, :path, CAST(:summary AS jsonb), now())"
            ), {"run": run_id, "day": day, "status": status, "version": version,
                "summary": json.dumps({"failed_row_checks": 8} if d == 1 else {}),
                # a run stopped by a batch check quarantines nothing; its summary counts
                # the rows that failed row checks (below)
                "scored": len(scored), "quarantined": 0 if d == 1 else len(quarantined),
                "auto": len(auto),
                "review": len(scored) - len(auto), "dq": "FAILED" if d == 1 else "PASSED",
                "path": str(folder / "index.html")})
            runs[day] = (run_id, folder)
    return runs


@pytest.fixture
def seeded(report_db, tmp_path):
    engine = sa.create_engine(report_db)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "TRUNCATE vee.scoring_run, vee.quarantined_exception, vee.exception_resolution,"
            " mdm.analyst_resolution, mdm.vee_exception, mdm.meter CASCADE"
        ))
    settings = get_settings().with_overrides(data_dir=tmp_path, warehouse_url=report_db)
    runs = _seed(engine, settings.reports_dir)
    yield engine, settings, runs
    engine.dispose()


def test_summary_page_has_plots_links_and_figures(seeded):
    engine, settings, runs = seeded
    page = reports.write_summary(engine, settings, days=30)
    assert page == settings.reports_dir / "summary" / "index.html"
    text = page.read_text()
    assert "Read dates 2026-02-02 to 2026-03-03" in text  # window ends at the last read date

    images = re.findall(r'<figure id="plot-(\w+)"><img alt="\w+" src="data:image/png;base64,([^"]+)"', text)
    assert [name for name, _ in images] == [
        "quarantine", "volume", "auto_apply", "model_version", "outcomes"]
    for _, data in images:
        png = base64.b64decode(data)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000

    # Every run's report link resolves, from the summary folder, to that run's report.
    window = text[text.index('<table id="runs">'):]
    links = re.findall(r'<a href="([^"]+)">report</a>', window[:window.index("</table>")])
    assert len(links) == 3
    targets = {(page.parent / link).resolve() for link in links}
    assert targets == {(folder / "index.html").resolve() for _, folder in runs.values()}

    # 20 scored, 7 + 4 auto-applied; 2 in quarantine; one night not successful.
    assert "3 nightly run(s) on this page, 1 not successful" in text
    assert "Read dates 2026-02-02 to 2026-03-03: 20 exceptions scored, auto-apply rate\n55.0%" in text
    # the rows in quarantine, not the runs' counts (the stopped run's 8 were never written)
    assert "2 exceptions in quarantine now" in text
    assert "none (8 rows failed checks)" in text
    assert 'class="s-DQ_FAILED">DQ_FAILED' in text


def test_a_run_stopped_before_validation_does_not_stop_the_summary_page(seeded):
    """A run that failed before it had a report (no champion yet) left dq_report_path NULL:
    every later summary page failed to be written, with "expected str ... not float"
    (outside probe, 2026-11-27)."""
    engine, settings, _runs = seeded
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO vee.scoring_run (dag_run_id, read_date, status, message, finished_at)"
            " VALUES ('no_champion_yet', '2026-03-03', 'FAILED', 'NoChampionError: ...', now())"))
    text = reports.write_summary(engine, settings, days=30).read_text()
    assert "no_champion_yet" in text
    assert len(set(re.findall(r'<a href="([^"]+)">report</a>', text))) == 3
    assert "no report" in text
    # its empty counts turn the columns to floats: the others still show whole numbers
    # (outside probe, 2026-11-27: "36.0")
    for table_id in ("recent", "runs"):
        table = text[text.index(f'<table id="{table_id}">'):]
        table = table[:table.index("</table>")]
        assert re.findall(r"<td>\d+</td>", table)
        assert not re.findall(r"<td>\d+\.0</td>", table), table_id


def test_quarantine_rates_by_check(seeded):
    engine, _settings, _runs = seeded
    from vee_tasks.warehouse import read_frame

    with engine.connect() as conn:
        frame = read_frame(conn, "queries/report_quarantine_by_check.sql",
                           {"since": DAYS[0], "until": DAYS[-1]})
    got = {(r.read_date, r.check_name): (r.quarantined, r.exceptions) for r in frame.itertuples()}
    assert got == {
        (DAYS[1], "observed_value_not_null"): (2, 10),
        (DAYS[1], "window_end_after_start"): (1, 10),
    }


def test_list_reports_shows_nightly_and_training(seeded):
    _engine, settings, runs = seeded
    training = settings.reports_dir / "training" / "2026-03-02" / "manual__train"
    training.mkdir(parents=True)
    (training / "index.html").write_text("<html>training docs</html>")
    (training / "run.json").write_text(json.dumps(
        {"run_id": "manual__train", "date": "2026-03-02", "outcome": "PASSED", "kind": "training"}))

    lines = reports.list_reports(settings)
    assert len(lines) == 4
    for day, (run_id, folder) in runs.items():
        (line,) = [l for l in lines if run_id in l]
        assert line.startswith(day.isoformat())
        assert str(folder) in line
        assert ("DQ_FAILED" if day == DAYS[1] else "PASSED") in line
    assert any("training" in l and "manual__train" in l and "PASSED" in l for l in lines)


def test_a_training_report_says_what_the_run_did_after_its_data_quality(seeded):
    """A weekly run that failed after its training set passed was listed "PASSED", and none
    said which version a run registered (outside probe 2026-11-29): its vee.training_run
    record completes the words; without one, the folder's own outcome stays."""
    engine, settings, _runs = seeded
    records = {"manual__promoted": ("SUCCESS", "3", "champion"),
               "manual__declined": ("SUCCESS", "4", "challenger"),
               "manual__failed": ("FAILED", None, None), "manual__unrecorded": None}
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM vee.training_run"))
        for run_id, record in records.items():
            folder = settings.reports_dir / "training" / "2026-03-02" / run_id
            folder.mkdir(parents=True)
            (folder / "index.html").write_text("<html>training docs</html>")
            (folder / "run.json").write_text(json.dumps(
                {"run_id": run_id, "date": "2026-03-02", "outcome": "passed", "kind": "training"}))
            if record:
                conn.execute(sa.text(
                    "INSERT INTO vee.training_run (run_id, as_of, cutoff, status, model_version,"
                    " decision) VALUES (:r, DATE '2026-03-02', TIMESTAMPTZ '2026-03-02 06:00Z',"
                    " :s, :v, :d)"), {"r": run_id, "s": record[0], "v": record[1], "d": record[2]})
    said = {run_id: [l for l in reports.list_reports(settings) if f" {run_id} " in l]
            for run_id in records}
    assert "  PASSED, v3 champion  " in said["manual__promoted"][0]
    assert "  PASSED, v4 challenger  " in said["manual__declined"][0]
    assert "  FAILED  " in said["manual__failed"][0]
    assert "  PASSED  " in said["manual__unrecorded"][0]
    # the run ids line up whatever the outcome's length
    assert len({lines[0].index(f" {run_id} ") for run_id, lines in said.items()}) == 1
    page = reports.write_summary(engine, settings).read_text()
    assert "PASSED, v3 champion" in page and "PASSED, v4 challenger" in page


def test_retention_deletes_only_old_folders(seeded):
    engine, settings, runs = seeded
    settings = settings.with_overrides(report_retention_days=90)
    reports.write_summary(engine, settings)
    old_run, old_folder = runs[DAYS[0]]
    _, young_folder = runs[DAYS[1]]
    long_ago = time.time() - 100 * 86400
    for path in [old_folder / "index.html", old_folder]:
        os.utime(path, (long_ago, long_ago))
    # 80 days old: inside the retention window, kept.
    eighty = time.time() - 80 * 86400
    for path in [young_folder / "index.html", young_folder]:
        os.utime(path, (eighty, eighty))
    summary = settings.reports_dir / "summary" / "index.html"
    os.utime(summary, (long_ago, long_ago))  # the summary is never a retention target

    deleted = reports.apply_retention(settings)

    assert deleted == [old_folder]
    assert not old_folder.exists()
    assert not old_folder.parent.exists()  # the emptied date folder went too
    assert all(folder.exists() for day, (_, folder) in runs.items() if day != DAYS[0])
    assert summary.exists()
    assert settings.reports_dir.exists()
    lines = reports.list_reports(settings)
    assert not any(old_run in l for l in lines)
    assert sum(1 for day, (run, _) in runs.items() for l in lines if run in l) == 2
    # A second pass has nothing left to delete.
    assert reports.apply_retention(settings) == []


def test_after_nightly_run_never_raises_and_handles_no_runs(report_db, tmp_path):
    engine = sa.create_engine(report_db)
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE vee.scoring_run, vee.quarantined_exception,"
                             " vee.exception_resolution"))
    settings = get_settings().with_overrides(data_dir=tmp_path, warehouse_url=report_db)
    page = reports.after_nightly_run(engine, settings)
    assert page is not None and "no runs in this window" in page.read_text()
    broken = settings.with_overrides(warehouse_url="postgresql+psycopg2://nobody@127.0.0.1:1/x")
    assert reports.after_nightly_run(None, broken) is None
    engine.dispose()


def test_list_reports_without_the_warehouse_reads_the_folders(seeded):
    _engine, settings, runs = seeded
    _, folder = runs[DAYS[2]]
    (folder / "run.json").write_text(json.dumps(
        {"kind": "nightly", "date": DAYS[2].isoformat(), "run_id": "scheduled__x", "outcome": "passed"}))
    offline = settings.with_overrides(warehouse_url="postgresql+psycopg2://nobody@127.0.0.1:1/x")
    lines = reports.list_reports(offline)
    assert len(lines) == 3
    assert lines[2].startswith("2026-03-03  nightly   PASSED      scheduled__x")
    assert lines[0].startswith("2026-03-01  nightly   UNKNOWN")  # no marker: date from the path


def test_the_summary_page_shows_the_live_precision_of_the_auto_apply_audit(seeded):
    """Audited decisions (VEE_AUDIT_SHARE: confident, sent to analysts instead) are what
    measures auto-apply out in the field: the page says how many analysts resolved as
    predicted."""
    engine, settings, _ = seeded
    text = reports.write_summary(engine, settings, days=30).read_text()
    assert "no confident decision was sent to the analysts for audit" in text
    with engine.begin() as conn:
        audited = conn.execute(sa.text(
            "UPDATE vee.exception_resolution SET audit = true, decision = 'REVIEW' "
            "WHERE exception_id IN (SELECT exception_id FROM vee.exception_resolution "
            "ORDER BY exception_id LIMIT 3) RETURNING exception_id")).scalars().all()
        for exception_id, code in zip(audited[:2], ("ESTIMATE", "ACCEPT")):  # predicted: ESTIMATE
            conn.execute(sa.text(
                "INSERT INTO mdm.analyst_resolution VALUES (:id, :code, 'a1', now(), NULL)"),
                {"id": exception_id, "code": code})
    text = reports.write_summary(engine, settings, days=30).read_text()
    assert ("Auto-apply audit: 3 confident decision(s) sent to the analysts instead of applied; "
            "2 resolved so far, 1 as the model predicted (50.0%)") in text


def _run(engine, run_id, day, status, started, dq=None, quarantined=None, selected=0, message=None):
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO vee.scoring_run (dag_run_id, read_date, status, dq_outcome, selected,"
            " quarantined, scored, message, started_at, finished_at) VALUES (:run, :day, :status,"
            " :dq, :selected, :quarantined, 0, :message, :started, :started)"),
            {"run": run_id, "day": day, "status": status, "dq": dq, "selected": selected,
             "quarantined": quarantined, "message": message, "started": started})


def test_a_failed_backfill_of_an_old_date_is_never_hidden_by_the_window(seeded):
    """A scheduled run for a day with no data moved the window past March; March backfills
    run after it, one DQ_FAILED, never appeared and the page said "0 not successful"
    (outside probe). The page lists the latest runs by start time and every read date whose
    latest run did not succeed, whatever its read date."""
    engine, settings, runs = seeded
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as conn:  # the seeded nights ran long ago and succeeded since
        conn.execute(sa.text("UPDATE vee.scoring_run SET status = 'SUCCESS', dq_outcome = 'PASSED',"
                             " started_at = now() - interval '200 days'"))
    _run(engine, "scheduled__2026-05-20", dt.date(2026, 5, 20), "SUCCESS", now - dt.timedelta(hours=5),
         dq="PASSED", quarantined=0)
    _run(engine, "backfill__2026-03-05", dt.date(2026, 3, 5), "DQ_FAILED", now - dt.timedelta(hours=2),
         dq="FAILED", quarantined=40, selected=50, message="data quality: quarantine_share: 40 of 50")
    _run(engine, "backfill__2026-03-06", dt.date(2026, 3, 6), "SUCCESS", now - dt.timedelta(hours=1),
         dq="PASSED", quarantined=2, selected=50)
    # a date that failed and was then rerun successfully needs nothing
    _run(engine, "backfill__2026-03-07_a", dt.date(2026, 3, 7), "FAILED", now - dt.timedelta(hours=4))
    _run(engine, "backfill__2026-03-07_b", dt.date(2026, 3, 7), "SUCCESS", now - dt.timedelta(hours=3),
         dq="PASSED", quarantined=0)

    text = reports.write_summary(engine, settings, days=30).read_text()
    # the window ends at the last date a run found exceptions of, not the empty May date
    assert "Read dates 2026-02-05 to 2026-03-06" in text
    top = text[:text.index("<h2>")]
    assert "Needs attention: 1 read date(s) whose latest run did not succeed: 2026-03-05 (DQ_FAILED)" in top
    assert "0 not successful" not in text
    attention = text[text.index('<table id="attention">'):]
    attention = attention[:attention.index("</table>")]
    assert "backfill__2026-03-05" in attention and "quarantine_share: 40 of 50" in attention
    assert "2026-03-07" not in attention
    recent = text[text.index('<table id="recent">'):]
    recent = recent[:recent.index("</table>")]
    order = [m for m in re.findall(r"<code>([^<]+)</code>", recent)]
    assert order[:5] == ["backfill__2026-03-06", "backfill__2026-03-05", "backfill__2026-03-07_b",
                         "backfill__2026-03-07_a", "scheduled__2026-05-20"]
    assert "PASSED (2 rows quarantined)" in recent


def test_vee_reports_and_the_summary_say_a_pass_with_quarantined_rows(seeded):
    """`vee reports` and the summary said "PASSED" for a run that went on with 3 rows
    quarantined while its page said "Failed": they now agree on "PASSED (3 rows quarantined)"."""
    engine, settings, runs = seeded
    run_id, folder = runs[DAYS[2]]
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE vee.scoring_run SET quarantined = 3 WHERE dag_run_id = :r"),
                     {"r": run_id})
    (line,) = [l for l in reports.list_reports(settings) if run_id in l]
    assert "PASSED (3 rows quarantined)" in line
    assert "PASSED (3 rows quarantined)" in reports.write_summary(engine, settings).read_text()
    # without the warehouse, from the folder's run.json
    (folder / "run.json").write_text(json.dumps({"kind": "nightly", "date": DAYS[2].isoformat(),
        "run_id": run_id, "outcome": "PASSED", "summary": {"quarantined": 3}}))
    offline = settings.with_overrides(warehouse_url="postgresql+psycopg2://nobody@127.0.0.1:1/x")
    (line,) = [l for l in reports.list_reports(offline) if run_id in l]
    assert "PASSED (3 rows quarantined)" in line


def test_vee_reports_and_the_summary_count_a_passed_runs_warnings(seeded):
    """A run that went on with warnings (an empty day, reads before their meter's install
    date) said only "PASSED" in the list and on the summary page: they count its warnings."""
    engine, settings, runs = seeded
    run_id, folder = runs[DAYS[2]]
    warned = ["volume: 0 exceptions ...", "meter_installed_by_read_date: 2 exception(s) ..."]
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE vee.scoring_run SET dq_summary = CAST(:s AS jsonb) "
                             "WHERE dag_run_id = :r"),
                     {"r": run_id, "s": json.dumps({"warnings": warned})})
    (line,) = [l for l in reports.list_reports(settings) if run_id in l]
    assert "PASSED, 2 warnings" in line
    page = reports.write_summary(engine, settings).read_text()
    assert page.count("PASSED, 2 warnings") == 2  # the window's runs and the latest runs
    assert "1 warning" not in page and "PASSED, 0" not in page
    # without the warehouse, from the folder's run.json
    (folder / "run.json").write_text(json.dumps({"kind": "nightly", "date": DAYS[2].isoformat(),
        "run_id": run_id, "outcome": "PASSED", "summary": {"warnings": warned[1:]}}))
    offline = settings.with_overrides(warehouse_url="postgresql+psycopg2://nobody@127.0.0.1:1/x")
    (line,) = [l for l in reports.list_reports(offline) if run_id in l]
    assert "PASSED, 1 warning" in line


def test_run_starts_are_shown_in_utc_whatever_zone_the_driver_gives():
    """The driver gives timestamps in the server's TimeZone (an embedded PostgreSQL takes
    the machine's): 21:00 in Toronto was printed "21:00 UTC" (reviewed 2026-11-27)."""
    from zoneinfo import ZoneInfo

    toronto = dt.datetime(2026, 3, 1, 21, 0, tzinfo=ZoneInfo("America/Toronto"))
    assert reports._utc_text(toronto) == "2026-03-02 02:00 UTC"
    assert reports._utc_text(None) == ""


def test_the_rerun_a_report_gives_follows_who_started_the_run():
    """A run `vee score --run-id X` started was told to clear an Airflow run (reviewed
    2026-11-27)."""
    from vee_tasks.scoring.report import rerun_command

    day = dt.date(2026, 3, 1)
    assert rerun_command(day, "cli__2026-03-01") == "vee score --read-date 2026-03-01"
    assert rerun_command(day, "nightly-fix") == "vee score --read-date 2026-03-01 --run-id nightly-fix"
    for airflow_run in ("manual__2026-03-02T05:00:00+00:00", "scheduled__2026-03-02T05:00:00+00:00",
                        "backfill__2026-03-02T05:00:00+00:00"):
        assert rerun_command(day, airflow_run).startswith("airflow tasks clear vee_nightly_scoring -s 2026-03-01")
        assert rerun_command(day, airflow_run).endswith("airflow dags test vee_nightly_scoring 2026-03-01")


def test_a_stopped_runs_failed_rows_come_from_its_summary_or_an_older_records_count():
    """Since 2026-11-27 a run stopped by a batch check records 0 quarantined (it wrote none)
    and its failing rows in dq_summary; older records counted them as quarantined."""
    from vee_tasks.reports import _run_quarantined

    stopped = {"status": "DQ_FAILED", "dq_outcome": "FAILED"}
    assert _run_quarantined({**stopped, "quarantined": 0, "failed_row_checks": 8}) == "none (8 rows failed checks)"
    assert _run_quarantined({**stopped, "quarantined": 5, "failed_row_checks": float("nan")}) == "none (5 rows failed checks)"
    assert _run_quarantined({**stopped, "quarantined": 0, "failed_row_checks": None}) == "none"
    assert _run_quarantined({"status": "SUCCESS", "dq_outcome": "PASSED", "quarantined": 3,
                             "failed_row_checks": None}) == "3"


def test_a_missed_night_with_open_exceptions_is_named_on_the_summary_page(seeded):
    """A night the scheduler missed (catchup is off) left its exceptions OPEN with no run, so
    no failure and no page named it (outside probe, 2026-11-29). The page names every such
    date from the first read date this warehouse ran on, with the backfill that scores it;
    the MDMS's history from before the system started is not a gap."""
    engine, settings, runs = seeded
    missed = max(DAYS) + dt.timedelta(days=2)  # after the latest run: the scheduler is down
    before = min(DAYS) - dt.timedelta(days=3)  # before the system's first run
    with engine.begin() as conn:
        for offset, (day, count) in enumerate(((missed, 3), (before, 2))):
            for i in range(count):
                ws = dt.datetime(day.year, day.month, day.day, 5, tzinfo=dt.timezone.utc)
                conn.execute(sa.text(
                    "INSERT INTO mdm.vee_exception VALUES (:id, 'M1', 'GAP', :day, :ws, :we, 1, 1,"
                    " 'X/1', :ws, 'OPEN', :ws)"),
                    {"id": 9000 + 10 * offset + i, "day": day, "ws": ws,
                     "we": ws + dt.timedelta(hours=1)})

    text = reports.write_summary(engine, settings, days=30, until=missed).read_text()
    top = text[:text.index("<h2>")]
    assert (f"Needs attention: 1 read date(s) hold OPEN exceptions and no nightly run has started "
            f"on them: {missed} (3)") in top
    assert f"--from-date {missed} --to-date {missed}" in top
    table = text[text.index('<table id="unrun-dates">'):]
    table = table[:table.index("</table>")]
    assert f"<td>{missed}</td><td>3</td>" in table and str(before) not in table

    _run(engine, "backfill__missed", missed, "SUCCESS", dt.datetime.now(dt.timezone.utc),
         dq="PASSED", quarantined=0, selected=3)
    text = reports.write_summary(engine, settings, days=30, until=missed).read_text()
    assert 'id="unrun"' not in text and "none: every such date has had a run" in text
