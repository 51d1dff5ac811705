"""Data-quality reports: the list of kept reports, their retention, and the daily summary page.

Each run keeps its data-quality report in a folder of its own under `settings.reports_dir`
(nightly: one page of our own, vee_tasks.scoring.report, also recorded in
`vee.scoring_run.dq_report_path`; weekly training: GX's Data Docs). This module finds those
folders, deletes the ones older than `settings.report_retention_days`, and writes
`reports_dir/summary/index.html`: one static page, plots embedded as PNG, that an operator
opens without a server to see 30 days of quarantine rates, volumes, auto-apply rates, model
versions and run outcomes, and, whatever their read date, the latest runs and every read date
whose latest run did not succeed (a backfill of an old date must not hide behind the window).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from vee_tasks.config import Settings, get_settings

log = logging.getLogger(__name__)

SUMMARY_DIR = "summary"
# The summary lists the latest runs by start time, and read dates whose latest run did not
# succeed among runs started this many days back (the default report retention: older runs
# have no report left to open).
RECENT_RUNS = 20
ATTENTION_LOOKBACK_DAYS = 90
RUN_MARKERS = ("index.html", "run.json")
_DATE_RE = re.compile(r"(\d{4}-\d{2}-\d{2})")
_STATUS_COLOURS = {
    "SUCCESS": "#2e7d32",
    "DQ_FAILED": "#ef6c00",
    "FAILED": "#c62828",
    "RUNNING": "#9e9e9e",
}


@dataclass(frozen=True)
class ReportEntry:
    """One kept report folder and what is known about its run."""

    kind: str  # "nightly" or "training"
    date: dt.date | None  # read date (nightly) or as-of date (training)
    run_id: str
    outcome: str
    path: Path

    def line(self, outcome_width: int = 10) -> str:
        day = self.date.isoformat() if self.date else "????-??-??"
        return f"{day}  {self.kind:<8}  {self.outcome:<{outcome_width}}  {self.run_id}  {self.path}"


# --- finding report folders ------------------------------------------------------------


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def _marked_folders(reports_dir: Path) -> list[Path]:
    """Folders holding a run's report (an index.html or run.json), outermost first.

    The walk stops at a marked folder, so a Data Docs site's own sub-pages are not runs.
    """
    found: list[Path] = []
    if not reports_dir.is_dir():
        return found
    for root, dirs, files in os.walk(reports_dir):
        here = Path(root)
        if here == reports_dir:
            dirs[:] = [d for d in dirs if d != SUMMARY_DIR]
            continue
        if any(marker in files for marker in RUN_MARKERS):
            found.append(here)
            dirs[:] = []
    return found


def _folder_of(report_path: str | os.PathLike) -> Path:
    path = Path(report_path)
    return path if path.is_dir() or not path.suffix else path.parent


def _recorded_runs(settings: Settings, engine=None) -> tuple[list[dict], dict[str, dict]]:
    """Nightly runs with a report path (vee.scoring_run) and weekly runs by run id
    (vee.training_run); both empty when the warehouse is unreachable."""
    try:
        from vee_tasks.warehouse import get_engine, read_frame

        engine = engine or get_engine(settings)
        with engine.connect() as conn:
            nightly = read_frame(conn, "queries/report_runs_with_reports.sql")
            weekly = read_frame(conn, "queries/report_training_runs.sql")
        return nightly.to_dict("records"), {str(r["run_id"]): r for r in weekly.to_dict("records")}
    except Exception as exc:  # noqa: BLE001 - the list still shows what is on disk
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        log.warning("could not read vee.scoring_run (%s); listing report folders only", reason)
        return [], {}


def _read_marker(folder: Path) -> dict:
    marker = folder / "run.json"
    if not marker.is_file():
        return {}
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _date_from(value, folder: Path) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    for text in ([str(value)] if value else []) + list(reversed(folder.parts)):
        match = _DATE_RE.search(text)
        if match:
            try:
                return dt.date.fromisoformat(match.group(1))
            except ValueError:
                continue
    return None


def _outcome_words(status, dq_outcome, quarantined, warnings=0) -> str:
    """What `vee reports` and the summary say of a run: its status when it did not succeed,
    else its data quality in validation.dq_words' words ("PASSED (3 rows quarantined)"),
    and how many warnings its report gives (", 1 warning")."""
    from vee_tasks.scoring.validation import dq_words

    if status and status != "SUCCESS":
        return str(status).upper()
    try:
        quarantined = int(quarantined) if quarantined == quarantined else None  # NaN: unknown
    except (TypeError, ValueError):
        quarantined = None
    words = dq_words(dq_outcome or status or "UNKNOWN", quarantined)
    try:
        warnings = int(warnings) if warnings == warnings else 0
    except (TypeError, ValueError):
        warnings = 0
    return words + (f", {warnings} warning{'s' if warnings != 1 else ''}" if warnings > 0 else "")


def collect_reports(settings: Settings | None = None, engine=None) -> list[ReportEntry]:
    """Every report folder still on disk, joined with its run record where there is one."""
    settings = settings or get_settings()
    reports_dir = settings.reports_dir
    by_folder: dict[Path, ReportEntry] = {}
    nightly, weekly = _recorded_runs(settings, engine)
    for row in nightly:
        folder = _folder_of(row["dq_report_path"])
        if not folder.exists():
            continue  # removed by retention: not kept any more
        outcome = _outcome_words(row.get("status"), row.get("dq_outcome"), row.get("quarantined"),
                                 row.get("dq_warnings"))
        by_folder[folder.resolve()] = ReportEntry(
            kind="nightly",
            date=_date_from(row.get("read_date"), folder),
            run_id=str(row["dag_run_id"]),
            outcome=outcome,
            path=folder,
        )
    for folder in _marked_folders(reports_dir):
        key = folder.resolve()
        if key in by_folder:
            continue
        meta = _read_marker(folder)
        summary = meta.get("summary") if isinstance(meta.get("summary"), dict) else {}
        warnings = summary.get("warnings")
        relative = folder.relative_to(reports_dir).parts
        kind = meta.get("kind") or ("training" if "training" in relative else "nightly")
        run_id = str(meta.get("run_id") or folder.name)
        outcome = _outcome_words(None, meta.get("outcome") or "UNKNOWN", summary.get("quarantined"),
                                 len(warnings) if isinstance(warnings, list) else 0)
        if kind == "training":
            outcome = _training_words(weekly.get(run_id), outcome)
        by_folder[key] = ReportEntry(
            kind=str(kind),
            date=_date_from(meta.get("date") or meta.get("read_date"), folder),
            run_id=run_id,
            outcome=outcome,
            path=folder,
        )
    return sorted(
        by_folder.values(),
        key=lambda e: (e.date or dt.date.min, e.kind, e.run_id),
    )


def _training_words(record: dict | None, quality: str) -> str:
    """A weekly run's outcome: its training set's data quality alone said "PASSED" for a run
    that failed after it, and never which version it registered (outside probe 2026-11-29).
    With its record: "PASSED, v3 champion", "PASSED, v4 challenger", or the run's status."""
    if not record:
        return quality
    status = str(record.get("status") or "UNKNOWN").upper()
    if status != "SUCCESS":
        return status if status != "RUNNING" else f"{quality}, RUNNING"
    version, decision = record.get("model_version"), record.get("decision")
    if version is None or version != version:  # NULL, or NaN from a column with NULLs
        return quality
    return f"{quality}, v{version} {decision or ''}".rstrip()


def list_reports(settings: Settings | None = None) -> list[str]:
    """One line per kept report: date, kind, outcome, run id, path (for `vee reports`)."""
    settings = settings or get_settings()
    entries = collect_reports(settings)
    width = max([10, *(len(entry.outcome) for entry in entries)])  # the run ids line up
    lines = [entry.line(width) for entry in entries]
    summary = settings.reports_dir / SUMMARY_DIR / "index.html"
    if summary.exists():
        lines.append(f"summary page: {summary}")
    if not lines:
        lines.append(f"no data-quality reports under {settings.reports_dir}")
    return lines


# --- retention -------------------------------------------------------------------------


def _newest_mtime(folder: Path) -> float:
    newest = folder.stat().st_mtime
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                newest = max(newest, (Path(root) / name).stat().st_mtime)
            except OSError:
                continue
    return newest


def apply_retention(settings: Settings | None = None, now: float | None = None) -> list[Path]:
    """Delete report folders whose newest file is older than report_retention_days.

    Age is by file time, not by read date, so a backfill of an old date keeps its fresh
    report. Only folders inside reports_dir are touched; the summary page never is.
    Returns the deleted folders.
    """
    settings = settings or get_settings()
    reports_dir = settings.reports_dir
    if settings.report_retention_days <= 0 or not reports_dir.is_dir():
        return []
    cutoff = (now if now is not None else time.time()) - settings.report_retention_days * 86400
    deleted: list[Path] = []
    for folder in _marked_folders(reports_dir):
        if not _inside(folder, reports_dir) or folder.resolve() == reports_dir.resolve():
            continue
        if _newest_mtime(folder) >= cutoff:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        deleted.append(folder)
        # Remove the now-empty date/kind folders above it, never reports_dir itself.
        parent = folder.parent
        while parent.resolve() != reports_dir.resolve() and _inside(parent, reports_dir):
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent
    if deleted:
        log.info("report retention: deleted %d folder(s) older than %d days",
                 len(deleted), settings.report_retention_days)
    return deleted


# --- the summary page ------------------------------------------------------------------


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _empty(ax, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} in this window", ha="center", va="center",
            transform=ax.transAxes, color="#777777")
    ax.set_xticks([])
    ax.set_yticks([])


def _plots(frames: dict, days: list[dt.date]) -> dict[str, str]:
    """The five trend plots as base64 PNGs, keyed by id."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.ticker
    import matplotlib.pyplot as plt
    import pandas as pd

    def figure(title: str):
        fig, ax = plt.subplots(figsize=(9, 3.2))
        ax.set_title(title, fontsize=11, loc="left")
        ax.grid(alpha=0.3)
        return fig, ax

    def date_axis(ax) -> None:
        ax.set_xlim(pd.Timestamp(days[0]) - pd.Timedelta(hours=12),
                    pd.Timestamp(days[-1]) + pd.Timedelta(hours=12))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d"))

    plots: dict[str, str] = {}

    quarantine = frames["quarantine"]
    fig, ax = figure("Quarantine rate by failed check (share of the day's exceptions)")
    if len(quarantine):
        q = quarantine.copy()
        q["rate"] = q["quarantined"] / q["exceptions"].where(q["exceptions"] > 0)
        table = q.pivot_table(index="read_date", columns="check_name", values="rate",
                              aggfunc="sum").reindex(days)
        # Days with exceptions but nothing quarantined are a real 0%, not missing.
        seen = set(frames["volume"]["read_date"]) if len(frames["volume"]) else set()
        table.loc[[d in seen for d in table.index]] = table.loc[
            [d in seen for d in table.index]].fillna(0)
        for check in table.columns:
            ax.plot(pd.to_datetime(table.index), table[check], marker="o", ms=3, label=check)
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        date_axis(ax)
    else:
        _empty(ax, "quarantined exceptions")
    plots["quarantine"] = _png(fig)

    volume = frames["volume"]
    fig, ax = figure("Exception volume by rule code")
    if len(volume):
        table = volume.pivot_table(index="read_date", columns="rule_code", values="exceptions",
                                   aggfunc="sum").reindex(days).fillna(0)
        _stacked_bars(ax, table)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        date_axis(ax)
    else:
        _empty(ax, "exceptions")
    plots["volume"] = _png(fig)

    decisions = frames["decisions"]
    fig, ax = figure("Auto-apply rate (share of scored exceptions)")
    if len(decisions):
        per_day = decisions.groupby("read_date")[["scored", "auto_applied"]].sum().reindex(days)
        rate = per_day["auto_applied"] / per_day["scored"].where(per_day["scored"] > 0)
        ax.plot(pd.to_datetime(per_day.index), rate, marker="o", ms=3, color="#1565c0")
        ax.set_ylim(0, 1.02)
        ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
        date_axis(ax)
    else:
        _empty(ax, "scored exceptions")
    plots["auto_apply"] = _png(fig)

    fig, ax = figure("Model version in use (marker size: exceptions scored)")
    if len(decisions):
        labels = (decisions["model_name"].astype(str) + " v" + decisions["model_version"].astype(str))
        order = sorted(labels.unique(), key=lambda s: (len(s), s))
        position = {label: i for i, label in enumerate(order)}
        sizes = 20 + 180 * decisions["scored"] / max(decisions["scored"].max(), 1)
        ax.scatter(pd.to_datetime(decisions["read_date"]), labels.map(position), s=sizes,
                   color="#6a1b9a", alpha=0.7)
        ax.set_yticks(range(len(order)))
        ax.set_yticklabels(order, fontsize=8)
        ax.set_ylim(-0.5, len(order) - 0.5)
        date_axis(ax)
    else:
        _empty(ax, "scored exceptions")
    plots["model_version"] = _png(fig)

    runs = frames["runs"]
    fig, ax = figure("Nightly run outcomes")
    if len(runs):
        table = runs.pivot_table(index="read_date", columns="status", values="dag_run_id",
                                 aggfunc="count").reindex(days).fillna(0)
        _stacked_bars(ax, table, colours=_STATUS_COLOURS)
        ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        date_axis(ax)
    else:
        _empty(ax, "nightly runs")
    plots["outcomes"] = _png(fig)
    return plots


def _href(path: str | None, summary_dir: Path, reports_dir: Path) -> str | None:
    """A link from the summary page to a report: relative inside reports_dir, else file://.
    None for a run with no report (stopped before validation: its path is NULL, NaN once
    read into a frame)."""
    if not isinstance(path, str) or not path:
        return None
    target = Path(path)
    if target.is_dir() and (target / "index.html").exists():
        target = target / "index.html"
    if _inside(target, reports_dir):
        return os.path.relpath(target.resolve(), summary_dir.resolve()).replace(os.sep, "/")
    return target.resolve().as_uri() if target.is_absolute() else str(target)


def _cell(value) -> str:
    if value is None:
        return ""
    try:
        import pandas as pd

        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return html.escape(str(value))


def _count(value) -> str:
    """A count as a whole number: a column of counts that holds a NULL (a run stopped before
    it counted) comes back as floats, and printed "36.0" (outside probe, 2026-11-27)."""
    if isinstance(value, float) and value == value and value.is_integer():
        return str(int(value))
    return _cell(value)


def _window(engine, days: int, until: dt.date | None) -> tuple[dt.date, dt.date]:
    from vee_tasks.warehouse import read_frame

    if until is None:
        with engine.connect() as conn:
            last = read_frame(conn, "queries/report_last_read_date.sql")["last_read_date"].iloc[0]
        until = last if last is not None and last == last else dt.date.today()
        if isinstance(until, dt.datetime):
            until = until.date()
    return until - dt.timedelta(days=days - 1), until


def _stacked_bars(ax, table, colours: dict | None = None) -> None:
    """One bar per day (the table's index), one stacked segment per column."""
    import pandas as pd

    bottom = None
    x = pd.to_datetime(table.index)
    for column in table.columns:
        colour = (colours or {}).get(column, "#455a64") if colours else None
        ax.bar(x, table[column], bottom=bottom, width=0.8, label=column, color=colour)
        bottom = table[column] if bottom is None else bottom + table[column]


def _audit_line(audit) -> str:
    """The live precision of auto-apply, from the audit sample (VEE_AUDIT_SHARE)."""
    audited = int(audit["audited"]) if audit is not None else 0
    if not audited:
        return ("Auto-apply audit: no confident decision was sent to the analysts for audit "
                "(VEE_AUDIT_SHARE; see docs/nightly-scoring.md).")
    resolved, agreed = int(audit["resolved"]), int(audit["agreed"])
    share = f" ({agreed / resolved:.1%})" if resolved else ""
    return (f"Auto-apply audit: {audited} confident decision(s) sent to the analysts instead "
            f"of applied; {resolved} resolved so far, {agreed} as the model predicted{share}: "
            "the live precision of what is auto-applied.")


def write_summary(engine=None, settings: Settings | None = None, days: int = 30,
                  until: dt.date | None = None) -> Path:
    """Write reports_dir/summary/index.html for the `days` read dates ending at `until`.

    `until` defaults to the latest read date a run in vee.scoring_run found exceptions of (so
    a backfilled or simulated history shows its own last 30 days, and a run of an empty date
    does not move the window off them). Returns the page's path.
    """
    import pandas as pd

    from vee_tasks.warehouse import get_engine, read_frame

    settings = settings or get_settings()
    engine = engine or get_engine(settings)
    since, until = _window(engine, days, until)
    params = {"since": since, "until": until}
    with engine.connect() as conn:
        frames = {
            "runs": read_frame(conn, "queries/report_runs.sql", params),
            "quarantine": read_frame(conn, "queries/report_quarantine_by_check.sql", params),
            "volume": read_frame(conn, "queries/report_volume_by_rule.sql", params),
            "decisions": read_frame(conn, "queries/report_decisions.sql", params),
            "quarantined_now": read_frame(conn, "queries/report_quarantined_now.sql", params),
            "audit": read_frame(conn, "queries/report_audit.sql", params),
            "recent": read_frame(conn, "queries/report_recent_runs.sql", {"limit": RECENT_RUNS}),
            "unrun": read_frame(conn, "queries/unrun_read_dates.sql", {"since": since, "before": None}),
            "attention": read_frame(conn, "queries/report_attention.sql",
                                    {"lookback_days": ATTENTION_LOOKBACK_DAYS}),
        }
    for frame in frames.values():
        if "read_date" in frame:
            frame["read_date"] = pd.to_datetime(frame["read_date"]).dt.date
    window = [since + dt.timedelta(days=i) for i in range((until - since).days + 1)]
    plots = _plots(frames, window)

    summary_dir = settings.reports_dir / SUMMARY_DIR
    summary_dir.mkdir(parents=True, exist_ok=True)
    reports_dir = settings.reports_dir

    def table(name: str, empty: str, message: bool = False) -> str:
        return _runs_table(frames[name], name, empty, summary_dir, reports_dir, message)

    training_rows = []
    for entry in collect_reports(settings, engine):
        if entry.kind != "training":
            continue
        link = _href(str(entry.path), summary_dir, reports_dir)
        training_rows.append(
            f"<tr><td>{_cell(entry.date)}</td><td><code>{_cell(entry.run_id)}</code></td>"
            f"<td>{_cell(entry.outcome)}</td>"
            f'<td><a href="{html.escape(link or "")}">Data Docs</a></td></tr>'
        )

    # every run the page shows, once: the counts must not say "0 not successful" while a
    # failed run of a read date outside the window is listed below
    shown = pd.concat([frames[k][["dag_run_id", "status"]] for k in ("runs", "recent", "attention")
                       if len(frames[k])] or [pd.DataFrame(columns=["dag_run_id", "status"])])
    shown = shown.drop_duplicates("dag_run_id")
    attention = frames["attention"]
    totals = {
        "runs": len(shown),
        "failed": int((shown["status"] != "SUCCESS").sum()),
        "scored": int(frames["decisions"]["scored"].sum()) if len(frames["decisions"]) else 0,
        "auto": int(frames["decisions"]["auto_applied"].sum()) if len(frames["decisions"]) else 0,
        "quarantined": int(frames["quarantined_now"]["quarantined"].iloc[0]),
    }
    auto_rate = f"{totals['auto'] / totals['scored']:.1%}" if totals["scored"] else "n/a"
    audit_line = _audit_line(frames["audit"].iloc[0] if len(frames["audit"]) else None)
    images = "\n".join(
        f'<figure id="plot-{key}"><img alt="{key}" src="data:image/png;base64,{data}"></figure>'
        for key, data in plots.items()
    )
    generated = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>VEE data-quality summary {since} to {until}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; font-size: 13px; }}
td, th {{ border: 1px solid #ccc; padding: 3px 7px; text-align: left; }}
th {{ background: #f3f3f3; }}
figure {{ margin: 0.5em 0; }}
.s-SUCCESS {{ color: #2e7d32; }} .s-FAILED {{ color: #c62828; font-weight: bold; }}
.s-DQ_FAILED {{ color: #ef6c00; font-weight: bold; }}
</style></head><body>
<h1>VEE data-quality summary</h1>
<p>Read dates {since} to {until} ({days} days). Generated {generated}.</p>
{_attention_line(attention)}
{_unrun_line(frames["unrun"])}
<p>{totals['runs']} nightly run(s) on this page, {totals['failed']} not successful.
Read dates {since} to {until}: {totals['scored']} exceptions scored, auto-apply rate
{auto_rate}; {totals['quarantined']} exceptions in quarantine now.</p>
<p id="audit">{audit_line}</p>
<h2>Trends</h2>
{images}
<h2>Needs attention: read dates whose latest run did not succeed</h2>
<p>Runs started in the last {ATTENTION_LOOKBACK_DAYS} days, whatever their read date.</p>
{table("attention", "none: every read date's latest run succeeded", message=True)}
<h2>Needs attention: read dates with open exceptions that no run has started on</h2>
<p>From {since}, and from the first read date this warehouse ran on successfully.</p>
{_unrun_table(frames["unrun"])}
<h2>Latest runs, by when they started</h2>
{table("recent", "no runs yet")}
<h2>Nightly runs for read dates {since} to {until}</h2>
{table("runs", "no runs in this window")}
<h2>Training data-quality reports</h2>
<table id="training"><tr><th>as of</th><th>run id</th><th>outcome</th><th>report</th></tr>
{''.join(training_rows) or '<tr><td colspan="4">none kept</td></tr>'}
</table>
</body></html>
"""
    target = summary_dir / "index.html"
    tmp = target.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(target)  # readers never see a half-written page
    log.info("data-quality summary written to %s", target)
    return target


_RUN_COLUMNS = ("read date", "run id", "started", "status", "data quality", "model version",
                "selected", "scored", "quarantined", "auto-applied", "to review", "report")


def _utc_text(moment) -> str:
    """A run's start in UTC, whatever zone the driver gave it in (the server's TimeZone: an
    embedded PostgreSQL takes the machine's; reviewed 2026-11-27: local times said "UTC")."""
    if hasattr(moment, "to_pydatetime"):  # a pandas Timestamp
        moment = moment.to_pydatetime()
    if isinstance(moment, dt.datetime):
        try:
            if moment.tzinfo is not None:
                moment = moment.astimezone(dt.timezone.utc)
            return moment.strftime("%Y-%m-%d %H:%M UTC")
        except ValueError:  # NaT
            return ""
    return "" if moment is None else str(moment)


def _runs_table(frame, table_id: str, empty: str, summary_dir: Path, reports_dir: Path,
                message: bool = False) -> str:
    """One table of nightly runs, each linked to its report (none: stopped before one)."""
    columns = _RUN_COLUMNS + (("message",) if message else ())
    rows = []
    for run in frame.to_dict("records"):
        link = _href(run.get("dq_report_path"), summary_dir, reports_dir)
        docs = f'<a href="{html.escape(link)}">report</a>' if link else "no report"
        status = _cell(run["status"])
        started = run.get("started_at")
        started = _utc_text(started)
        dq = (_outcome_words("SUCCESS", run.get("dq_outcome"), run.get("quarantined"),
                             run.get("dq_warnings"))
              if isinstance(run.get("dq_outcome"), str) else "")
        rows.append(
            "<tr>"
            f"<td>{_cell(run['read_date'])}</td><td><code>{_cell(run['dag_run_id'])}</code></td>"
            f"<td>{_cell(started)}</td>"
            f'<td class="s-{status}">{status}</td><td>{_cell(dq)}</td>'
            f"<td>{_cell(run['model_version'])}</td><td>{_count(run['selected'])}</td>"
            f"<td>{_count(run['scored'])}</td><td>{_run_quarantined(run)}</td>"
            f"<td>{_count(run['auto_applied'])}</td><td>{_count(run['sent_to_review'])}</td>"
            f"<td>{docs}</td>" + (f"<td>{_cell(run.get('message'))}</td>" if message else "")
            + "</tr>"
        )
    head = "".join(f"<th>{c}</th>" for c in columns)
    body = "".join(rows) or f'<tr><td colspan="{len(columns)}">{html.escape(empty)}</td></tr>'
    return f'<table id="{table_id}"><tr>{head}</tr>\n{body}\n</table>'


def _attention_line(attention) -> str:
    """The page's first line when a read date's latest run did not succeed."""
    if not len(attention):
        return ""
    dates = ", ".join(f"{r.read_date} ({r.status})" for r in attention.itertuples())
    return (f'<p id="attention" class="s-FAILED">Needs attention: {len(attention)} read date(s) '
            f"whose latest run did not succeed: {html.escape(dates)}. Rerun each once its cause "
            "is fixed (see the run's report).</p>")


def _unrun_line(unrun) -> str:
    """The page's second line when nights were missed: their exceptions wait with no run,
    so no failure reported them (outside probe, 2026-11-29)."""
    if not len(unrun):
        return ""
    from vee_tasks.scoring.report import backfill_command

    dates = ", ".join(f"{r.read_date} ({r.exceptions})" for r in unrun.itertuples())
    first, last = unrun["read_date"].iloc[0], unrun["read_date"].iloc[-1]
    return (f'<p id="unrun" class="s-FAILED">Needs attention: {len(unrun)} read date(s) hold '
            f"OPEN exceptions and no nightly run has started on them: {html.escape(dates)}. "
            "Unless a backfill or a run of theirs is under way (the DAG's grid view), score "
            f"them: <code>{html.escape(backfill_command(first, last))}</code> (dates whose "
            "Airflow run succeeded are skipped; one that failed before it recorded anything is "
            "rerun).</p>")


def _unrun_table(unrun) -> str:
    rows = "".join(f"<tr><td>{_cell(r.read_date)}</td><td>{_count(r.exceptions)}</td></tr>"
                   for r in unrun.itertuples())
    body = rows or '<tr><td colspan="2">none: every such date has had a run</td></tr>'
    return (f'<table id="unrun-dates"><tr><th>read date</th><th>OPEN exceptions</th></tr>\n'
            f"{body}\n</table>")


def _run_quarantined(run: dict) -> str:
    """A run stopped by a batch check quarantined nothing: the rows that failed row checks
    are in its data-quality summary (`failed_row_checks`); records written before
    2026-11-27 counted them as `quarantined`."""
    if run.get("status") == "DQ_FAILED" and run.get("dq_outcome") == "FAILED":
        failed = run.get("failed_row_checks")
        if failed is None or failed != failed:  # NULL (NaN in the frame): an older record
            failed = run.get("quarantined")
        return f"none ({_count(failed)} rows failed checks)" if failed else "none"
    return _count(run["quarantined"])


def after_nightly_run(engine=None, settings: Settings | None = None) -> Path | None:
    """Retention, then the summary page: the last step of every nightly run. Never raises,
    because a reporting hiccup must not turn a scored night into a failed one."""
    settings = settings or get_settings()
    try:
        apply_retention(settings)
    except Exception:  # noqa: BLE001
        log.exception("report retention failed")
    try:
        return write_summary(engine, settings)
    except Exception:  # noqa: BLE001
        if _schema_behind(engine, settings):
            # the run failed for it and said so: a traceback of a missing column would only
            # hide the real cause under a second one (upgrade probe, 2026-11-29)
            log.warning("data-quality summary not written: schema vee is behind this release "
                        "(`vee db upgrade`)")
        else:
            log.exception("writing the data-quality summary failed")
        return None


def _schema_behind(engine, settings: Settings) -> bool:
    """Whether schema vee lacks migrations of this release; False when that cannot be told."""
    from vee_tasks.migrations import not_applied
    from vee_tasks.warehouse import get_engine

    try:
        return bool(not_applied(engine or get_engine(settings), ["vee"]))
    except Exception:  # noqa: BLE001 - the warehouse unreachable: the caller logs the error
        return False


def on_run_finished(context=None) -> None:
    """Airflow callback (success of the nightly run's last task, failure of any task):
    `after_nightly_run` against the run's warehouse. Never raises."""
    try:
        after_nightly_run()
    except Exception:  # noqa: BLE001
        log.exception("reports after the nightly run failed")
