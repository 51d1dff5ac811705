"""The operator's data-quality report of a nightly run: `index.html` and `failed_rows.csv`.

Why our own page and not GX's Data Docs: the alert links this page, and an operator in a
control room (often offline) must read at once what happened and what to do. The Data Docs
were ~4.1 MB a run (fonts and animated GIFs), styled from online CDNs, said "Failed" for a run
that went on with a few rows quarantined, named rows only by staging number, never showed the
batch checks that stop a run, and printed the suite's internal encodings (`inf` for a NaN,
`-1.0` for a window outside the day). This page is one small file, plain HTML with inline CSS,
written from the validation results; `failed_rows.csv` holds every failing row.
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path

import numpy as np
import pandas as pd

from vee_tasks.config import AIRFLOW_RUN_ID_PREFIXES, NIGHTLY_DAG_ID
from vee_tasks.quality import fresh_report_dir
from vee_tasks.scoring.validation import MAX_WINDOW_DAYS

FAILED_ROWS_FILE = "failed_rows.csv"
# Failing rows listed on the page itself; all of them are in failed_rows.csv.
PAGE_ROWS = 200
FAILED_ROW_COLUMNS = (
    "exception_id", "meter_id", "rule_code", "read_date", "failed_checks", "observed_value",
    "expected_value", "window_start", "window_end", "raised_at", "stage_row",
)
# Each check of the suite in plain words (the suite's own notes describe its encodings).
CHECK_WORDS = {
    "schema": "the extract has every column the contract promises",
    "exception_id_not_null": "the exception has an id",
    "exception_id_unique": "no other row (of the day, or an analyst's) has the same id",
    "rule_code_known": "the rule code is one of the contract's",
    "meter_known": "the meter exists in mdm.meter",
    "meter_installed_by_read_date": "the meter was installed on or before the read date "
                                    "(mdm.meter.installed_on); rows failing it are scored, "
                                    "with a warning",
    "window_overlaps_day": "the window shares time with the read date (utility's time zone)",
    "window_length_plausible": f"the window lasts at most {MAX_WINDOW_DAYS} days",
    "window_ordered": "the window starts before it ends",
    "raised_at_plausible": "raised_at is set and not before the read date began",
    "observed_value_finite": "observed value is a plausible number (not NULL, NaN or infinite; 0 or 1e-30 to 1e9 in size)",
    "expected_value_finite": "expected value is NULL or a plausible number (not NaN or infinite; 0 or 1e-30 to 1e9 in size)",
}
# What to do about each batch check, beyond widening its setting.
_ADVICE = {
    "volume": (
        "Ask the MDMS team whether the day's volume is real (an outage, a heat wave) or a load "
        "error (a day loaded twice, a partial load). A load error: have it fixed, then rerun. "
        "A real day: widen {setting} for the rerun, then set it back."
    ),
    "quarantine_share": (
        "The rows below failed row checks (every one is in failed_rows.csv). Wrong data: have "
        "the MDMS fix it, then rerun. If the rows are right for that day, widen {setting} for "
        "the rerun (the failing rows are then quarantined and the rest scored), then set it back."
    ),
}
_NO_SETTING = ("No setting widens this check: the MDMS's data or table must be fixed first, "
               "then rerun.")


# --- what a row actually had -----------------------------------------------------------


def value_text(values, is_null) -> np.ndarray:
    """A value as the warehouse held it: NULL, NaN, Infinity, -Infinity or the number (not
    the suite's encoding, which maps all of those to inf)."""
    values = np.asarray(values, dtype="float64")
    text = pd.Series(values).map(repr).to_numpy(dtype=object)
    text = np.where(np.isnan(values), "NaN", text)
    text = np.where(np.isposinf(values), "Infinity", text)
    text = np.where(np.isneginf(values), "-Infinity", text)
    return np.where(np.asarray(is_null, dtype=bool), "NULL", text)


def time_text(epochs, timezone: str) -> np.ndarray:
    """A timestamp as the warehouse held it, in the utility's zone with its offset: NULL,
    infinity or -infinity (PostgreSQL's), or e.g. 2026-03-10 01:00:00-05:00 (not the suite's
    -1.0 for a time outside the day)."""
    epochs = np.asarray(epochs, dtype="float64")
    out = np.full(len(epochs), "NULL", dtype=object)
    out[np.isposinf(epochs)] = "infinity"
    out[np.isneginf(epochs)] = "-infinity"
    in_range = np.isfinite(epochs) & (np.abs(epochs) < 9.2e9)  # pandas' nanosecond range
    if in_range.any():
        stamps = pd.to_datetime(epochs[in_range], unit="s", utc=True).tz_convert(timezone)
        text = pd.Series(stamps.strftime("%Y-%m-%d %H:%M:%S%z"))
        out[in_range] = text.str.replace(r"([+-]\d\d)(\d\d)$", r"\1:\2", regex=True).to_numpy()
    for i in np.flatnonzero(np.isfinite(epochs) & ~in_range):
        try:
            stamp = dt.datetime.fromtimestamp(epochs[i], dt.timezone.utc)
            out[i] = stamp.isoformat(sep=" ")
        except (OverflowError, OSError, ValueError):
            out[i] = f"{epochs[i]:g} s since 1970 UTC"
    return out


def failed_rows_frame(prepared: pd.DataFrame, row_failures: dict[int, list[str]],
                      read_date: dt.date, timezone: str) -> pd.DataFrame:
    """The failing rows, by staging order, with what each had and the checks it failed."""
    failing = prepared[prepared["stage_row"].isin(list(row_failures))].sort_values("stage_row")
    ids = failing["exception_id"]
    if not pd.api.types.is_integer_dtype(ids.dtype):
        try:  # a caller's frame: float ids with NaN for NULL
            ids = ids.astype("float64").astype("Int64")
        except (TypeError, ValueError):
            pass
    return pd.DataFrame({
        "exception_id": ids.to_numpy(dtype=object),
        "meter_id": failing["meter_id"] if "meter_id" in failing else None,
        "rule_code": failing["rule_code"] if "rule_code" in failing else None,
        "read_date": read_date.isoformat(),
        "failed_checks": [" ".join(row_failures[k]) for k in failing["stage_row"]],
        "observed_value": value_text(failing["observed_value"], failing["observed_null"]),
        "expected_value": value_text(failing["expected_value"], failing["expected_null"]),
        "window_start": time_text(failing["window_start_epoch"], timezone),
        "window_end": time_text(failing["window_end_epoch"], timezone),
        "raised_at": time_text(failing["raised_at_epoch"], timezone),
        "stage_row": failing["stage_row"].to_numpy(),
    }, columns=list(FAILED_ROW_COLUMNS))


def rerun_command(read_date: dt.date, run_id: str) -> str:
    """How this run is rerun: `vee score` for a run it started, else clearing the Airflow run
    (every task of it, as steps._refuse_finished says)."""
    day = read_date.isoformat()
    if not run_id.startswith(AIRFLOW_RUN_ID_PREFIXES):
        extra = "" if run_id == f"cli__{day}" else f" --run-id {run_id}"
        return f"vee score --read-date {day}{extra}"
    # `airflow dags test` names its runs manual__ too, and clearing needs a scheduler
    # (outside probe, 2026-11-29): both ways are given. `tasks clear -s D -e D` selects runs
    # by logical date, which a run triggered from the UI (the form's current time) or
    # without one does not match: the run's own page clears it whatever its logical date.
    return (f"airflow tasks clear {NIGHTLY_DAG_ID} -s {day} -e {day} -y (runs with logical "
            f"date {day}; any run: Clear Run on the page of Dag run {run_id} in the Airflow "
            f"UI), or without a scheduler: airflow dags test {NIGHTLY_DAG_ID} {day}")


def backfill_command(first: dt.date, last: dt.date) -> str:
    """How read dates no run has started on are scored (the next run's summary and the
    summary page): dates whose Airflow run succeeded are skipped, one whose run failed before
    recording anything is rerun."""
    return (f"airflow backfill create --dag-id {NIGHTLY_DAG_ID} --from-date {first} "
            f"--to-date {last} --reprocess-behavior failed")


# --- the page --------------------------------------------------------------------------


def _e(value) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return ""
    return html.escape(str(value), quote=True)


_CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #222; max-width: 80em; }
table { border-collapse: collapse; font-size: 13px; margin: 0.5em 0; }
td, th { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.box { border-left: 6px solid; padding: 0.4em 1em; margin: 1em 0; background: #fafafa; }
.ok { border-color: #2e7d32; } .warn { border-color: #ef6c00; } .bad { border-color: #c62828; }
.ok h2 { color: #2e7d32; } .warn h2 { color: #ef6c00; } .bad h2 { color: #c62828; }
code { background: #eee; padding: 1px 4px; }
td.fail { color: #c62828; font-weight: bold; } td.pass { color: #2e7d32; }
td.warn { color: #ef6c00; font-weight: bold; }
"""


def _outcome_box(outcome, read_date: dt.date, run_id: str) -> str:
    n, q = outcome.selected, outcome.quarantined
    if not outcome.passed:
        rows = "".join(
            f"<tr><td>{_e(f.check)}</td><td>{_e(f.measured)}</td><td>{_e(f.limit)}</td>"
            f"<td>{_e(f.setting) or 'none'}</td></tr>" for f in outcome.batch
        )
        todo = "".join(
            f"<li><b>{_e(f.check)}</b>: "
            + (_e(_ADVICE.get(f.check, "If the data is right, widen {setting} for the rerun, "
                              "then set it back.").format(setting=f.setting))
               if f.setting else _e(_NO_SETTING))
            + "</li>" for f in outcome.batch
        )
        command = rerun_command(read_date, run_id)
        return f"""<div class="box bad" id="outcome">
<h2>Run stopped: data quality FAILED</h2>
<p>{len(outcome.batch)} batch check(s) failed, so the run stopped before writing anything:
none of the {n} exceptions of {read_date} was scored, auto-applied or quarantined, and none
changed status (each keeps the one it had: OPEN, or an earlier run's decision). {q} row(s) failed row checks (listed below).</p>
<table id="batch-failures"><tr><th>batch check</th><th>measured</th><th>limit</th>
<th>setting that widens it</th></tr>{rows}</table>
<h3>What to do</h3>
<ol>{todo}
<li>Settings go in <code>vee.env</code> beside docker-compose.yml (passed to every Airflow
process), or in the environment of <code>vee score</code>.</li>
<li>Rerun the read date: <code id="rerun">{_e(command)}</code></li></ol>
</div>"""
    if outcome.warnings:
        said = "".join(f"<li>{_e(w)}</li>" for w in outcome.warnings)
        return f"""<div class="box warn" id="outcome">
<h2>Data quality PASSED, with a warning</h2>
<p>The run went on ({n} exceptions of {read_date} to decide, {q} quarantined), but:</p>
<ul id="warnings">{said}</ul>
</div>"""
    if q:
        return f"""<div class="box warn" id="outcome">
<h2>Data quality PASSED ({q} row{'s' if q != 1 else ''} quarantined)</h2>
<p>The run went on. {q} of the {n} exceptions of {read_date} failed row checks and were set
aside: quarantined in <code>vee.quarantined_exception</code> and left OPEN for the analysts,
never scored. The other {n - q} went on to scoring. The quarantined rows are listed below.</p>
</div>"""
    return f"""<div class="box ok" id="outcome">
<h2>Data quality PASSED</h2>
<p>All {n} exceptions of {read_date} passed every check and went on to scoring.</p>
</div>"""


def _rows_table(rows: pd.DataFrame, total: int) -> str:
    if not total:
        return "<p>No row failed a row check.</p>"
    head = "".join(f"<th>{_e(c.replace('_', ' '))}</th>" for c in FAILED_ROW_COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(v)}</td>" for v in record) + "</tr>"
        for record in rows.head(PAGE_ROWS).itertuples(index=False)
    )
    shown = (f"All {total} failing row(s)" if total <= PAGE_ROWS
             else f"The first {PAGE_ROWS} of {total} failing rows")
    return (f'<p>{shown}; every one is in <a href="{FAILED_ROWS_FILE}">{FAILED_ROWS_FILE}</a>. '
            "Values and times are as the warehouse held them.</p>"
            f'<table id="failed-rows"><tr>{head}</tr>{body}</table>')


def _checks_table(outcome, settings_volume: dict) -> str:
    body = []
    for c in outcome.checks:
        css = "pass" if c.success else "fail"
        if c.level == "batch":
            result = "passed" if c.success else "FAILED"
            found = "" if c.success else (c.observed or "")
        elif c.level == "warning":
            result = "passed" if not c.failing_rows else f"WARNING: {c.failing_rows} row(s)"
            found = "" if not c.failing_rows else "a warning: not quarantined for it"
            css = "pass" if not c.failing_rows else "warn"
        else:
            result = "passed" if not c.failing_rows else f"{c.failing_rows} row(s) failed"
            found = ""
        body.append(
            f"<tr><td>{_e(c.check)}</td><td>{_e(c.level)}</td>"
            f"<td>{_e(CHECK_WORDS.get(c.check, c.notes))}</td>"
            f'<td class="{css}">{_e(result)}</td><td>{_e(found)}</td>'
            f"<td><code>{_e(c.expectation)}</code></td></tr>"
        )
    failed = {f.check: f for f in outcome.batch}
    volume = settings_volume or {}
    if volume.get("checked") is False:
        body.append(f"<tr><td>volume</td><td>batch</td><td>the day's count against the median "
                    f"of recent days</td><td class=\"pass\">not checked</td><td>only "
                    f"{_e(volume.get('history_days'))} earlier day(s) with exceptions</td><td></td></tr>")
    for name, what in (("volume", "the day's count against the median of recent days"),
                       ("quarantine_share", "the share of rows failing row checks")):
        if name == "volume" and not volume.get("checked"):
            continue
        f = failed.get(name)
        if name == "volume" and volume.get("warning"):
            body.append(
                f"<tr><td>{name}</td><td>batch</td><td>{_e(what)}</td>"
                f'<td class="warn">WARNING</td><td>{_e(volume.get("ratio"))}x the median '
                f"{volume.get('median'):g}</td><td>nothing to decide: not a failure</td></tr>"
            )
            continue
        measured = f.measured if f else (
            f"{volume.get('ratio')}x the median {volume.get('median'):g}" if name == "volume"
            else f"{outcome.quarantined} of {outcome.selected} rows")
        body.append(
            f"<tr><td>{name}</td><td>batch</td><td>{_e(what)}</td>"
            f'<td class="{"fail" if f else "pass"}">{"FAILED" if f else "passed"}</td>'
            f"<td>{_e(measured)}</td><td>{_e(f.limit) if f else ''}</td></tr>"
        )
    return ('<table id="checks"><tr><th>check</th><th>level</th><th>what it checks</th>'
            "<th>result</th><th>measured</th><th>expectation (GX)</th></tr>"
            + "".join(body) + "</table>")


# Text the warehouse gave (free text in the contract), as opposed to our own names and numbers.
WAREHOUSE_TEXT_COLUMNS = ("meter_id", "rule_code")
# A cell a spreadsheet would run as a formula (OWASP's CSV injection list).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(rows: pd.DataFrame, columns) -> pd.DataFrame:
    """`rows` with each text cell of `columns` that a spreadsheet would run as a formula
    (a meter id "=HYPERLINK(...)" in failed_rows.csv, opened by an operator) prefixed with
    a quote, which shows it as text (reviewed 2026-11-27)."""
    rows = rows.copy()
    for column in columns:
        text = rows[column]
        risky = text.map(lambda v: isinstance(v, str) and v.startswith(_FORMULA_START))
        rows[column] = text.where(~risky, "'" + text.astype(str))
    return rows


def write_report(report_dir: Path, prepared: pd.DataFrame, outcome, read_date: dt.date,
                 timezone: str, run_id: str) -> tuple[Path, Path | None]:
    """Empty `report_dir`, then write index.html (and failed_rows.csv when rows failed row
    checks). Returns their paths."""
    fresh_report_dir(report_dir)
    rows = failed_rows_frame(prepared, outcome.row_failures, read_date, timezone)
    failed_path = None
    if len(rows):
        failed_path = report_dir / FAILED_ROWS_FILE
        spreadsheet_safe(rows, WAREHOUSE_TEXT_COLUMNS).to_csv(failed_path, index=False)
    generated = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>VEE data quality {read_date}: {_e(outcome.outcome)}</title>
<style>{_CSS}</style></head><body>
<h1>VEE nightly data quality: read date {read_date}</h1>
<p>Run <code>{_e(run_id)}</code>; {outcome.selected} exception(s) checked; times in
{_e(timezone)}. Written {generated}.</p>
{_outcome_box(outcome, read_date, run_id)}
<h2>Rows that failed row checks</h2>
{_rows_table(rows, len(rows))}
<h2>Every check</h2>
{_checks_table(outcome, outcome.volume)}
<p>Machine-readable: <a href="run.json">run.json</a>. Suite:
<code>expectations/nightly_exceptions.json</code> (Great Expectations).</p>
</body></html>
"""
    index = report_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index, failed_path


__all__ = ["backfill_command", "CHECK_WORDS", "FAILED_ROWS_FILE", "failed_rows_frame", "rerun_command", "time_text", "value_text",
           "write_report"]
