"""Data-quality validation of a read date's extracted exceptions (Great Expectations).

Row-level checks decide which exceptions are quarantined; batch-level checks decide whether
the run may write anything at all.

Why GX does the row checks itself: GX Core 1.x on a pandas batch is vectorised (a million
rows, ten expectations: ~0.3 s on this machine) and, with `result_format` COMPLETE and
`unexpected_index_column_names=['stage_row']`, tells exactly which rows broke which
expectation. So one suite (`expectations/nightly_exceptions.json`) is the rule book, and its
results are the run's report (`vee_tasks.scoring.report`: one small offline page, not GX's
Data Docs), with no second implementation to drift from it. Each expectation's
`meta.check` is the check name written to `vee.quarantined_exception.failed_checks`;
`meta.level` says whether it is a row or a batch check.

What GX cannot see directly is prepared here, vectorised, into `*_checked` / `*_s`
columns (see `prepare_frame`): NaN versus NULL (pandas holds both as NaN, so the extract
reads the null flags from PostgreSQL), the read date's bounds in the utility's time zone,
and which rules may leave `observed_value` NULL.

Duplicate ids: within the batch (GX's uniqueness) and across all of mdm.vee_exception
(`id_copies`, counted by the extract when the warehouse does not enforce the key): an id
that an analyst's row shares with a decidable row is quarantined, never scored.

Plausible values: `MAX_ABS_VALUE` / `MIN_ABS_NONZERO` bound what `*_value_finite` accepts.

NULL observed values: every contract rule measures something (GAP: the missing intervals,
ZERO_CONSUMPTION: the day's total, ...), so `OBSERVED_MAY_BE_NULL` is empty and a NULL
observed value is quarantined as `observed_value_finite`. `expected_value` may be NULL for any
rule (the contract: "null where none"), but never NaN or infinite.

Warnings (`meta.level` "warning"): row checks whose failing rows are scored all the same,
each named in one warning line (log, summary, report, alert): `meter_installed_by_read_date`,
an exception read before mdm.meter's install date of its meter (a meter exchange recorded
late, or a read booked to the wrong meter). The contract does not make such a row invalid,
and training keeps such labels, so quarantining it would only keep it from the model; it is
scored and sent to review, never auto-applied (steps.review_only_rows).

Batch checks (`batch_checks`): the suite's batch expectations (schema), the day's volume
against the median of recent days (only with enough history), and the share of quarantined
rows. A breach stops the run before any write. Except on a day with nothing to decide: an
empty day succeeds with zero counts (the nightly job's rule), and a volume breach there is a
warning in the log, the summary, the report and an alert (did the MDMS run its checks for
the day?), not a failure.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from vee_tasks.config import EXPECTATIONS_DIR, RULE_CODES, Settings, get_settings
from vee_tasks.dates import day_bounds
from vee_tasks.quality import html_safe_text, quiet_gx_loggers, run_checkpoint

log = logging.getLogger(__name__)

SUITE_NAME = "nightly_exceptions"
# Rules whose observed_value may be NULL (see module docstring): none.
OBSERVED_MAY_BE_NULL: frozenset[str] = frozenset()
# Batch-level check names (besides the suite's batch expectations).
VOLUME_CHECK = "volume"
# A day's count no less likely than this under Poisson noise around the recent median is no
# volume breach, whatever its ratio (one tail of three standard deviations; see volume_check).
VOLUME_TAIL_PROBABILITY = 0.00135
QUARANTINE_SHARE_CHECK = "quarantine_share"
# The warning-level check of an exception read before its meter's install date.
INSTALL_DATE_CHECK = "meter_installed_by_read_date"
# The longest rule window scored. A window may reach beyond its read date (a flatline from
# the evening before, a step change over the days it took to show), but the features read
# every interval of it per exception: a longer one is an encoding error (a start at the
# epoch, a year's typo) or a standing condition better left to an analyst. Training leaves
# such labels out alike (sql/queries/training_labels.sql).
MAX_WINDOW_DAYS = 31
MAX_WINDOW_SECONDS = MAX_WINDOW_DAYS * 86400.0

# The columns the extract reads (sql/queries/nightly_extract_frame.sql).
FRAME_COLUMNS = (
    "stage_row",
    "shard",
    "exception_id",
    "meter_id",
    "rule_code",
    "window_start_epoch",
    "window_end_epoch",
    "raised_at_epoch",
    "observed_value",
    "expected_value",
    "observed_null",
    "expected_null",
    "meter_known",
    "meter_age_days",
    "id_copies",
)
# Plausible magnitudes of observed/expected values (kWh, interval counts, ratios): zero, or
# between 1e-30 and 1e9 in absolute value. Beyond that a value is an encoding or unit error,
# and its ratios would overflow double precision in the feature SQL (1e9 / 1e-30 does not).
# The floor is far below the rounding residue of a sum near zero (-1e-12 on a REVERSE_FLOW
# was quarantined under a floor of 1e-9: outside probe, 2026-11-27).
MAX_ABS_VALUE = 1e9
MIN_ABS_NONZERO = 1e-30
# The earliest plausible raised_at of a read date's exception: the day's start in the
# utility's zone, or the read date's midnight in UTC when that comes first (an MDMS that
# stamps the date so: hours before the local day starts west of UTC). None can be raised
# before the day's reads exist: earlier is a clock or load error, and its point-in-time
# features would see no reads at all. (A fixed day of slack let through, in Sydney, an
# exception raised 12 hours before its day began: outside probe, 2026-11-27.)


def earliest_raised_at(read_date: dt.date, timezone: str) -> dt.datetime:
    local_start, _ = day_bounds(read_date, timezone)
    utc_midnight = dt.datetime.combine(read_date, dt.time(0), tzinfo=dt.timezone.utc)
    return min(local_start, utc_midnight)


def load_suite() -> dict:
    """The suite as stored (GX 1.x ExpectationSuite JSON)."""
    return json.loads((EXPECTATIONS_DIR / f"{SUITE_NAME}.json").read_text(encoding="utf-8"))


def check_names(level: str | None = None) -> list[str]:
    return [
        e["meta"]["check"]
        for e in load_suite()["expectations"]
        if level is None or e["meta"].get("level") == level
    ]


# --- preparing the frame -----------------------------------------------------------------


def _null_mask(column: pd.Series) -> np.ndarray:
    """NULL (None / pd.NA) but not NaN, for frames built by callers (object columns)."""
    if column.dtype == object:
        values = column.to_numpy()
        return np.fromiter((v is None or v is pd.NA for v in values), bool, len(values))
    return column.isna().to_numpy()


def _epoch_seconds(frame: pd.DataFrame, name: str) -> np.ndarray:
    if f"{name}_epoch" in frame:
        return pd.to_numeric(frame[f"{name}_epoch"], errors="coerce").to_numpy(dtype="float64")
    stamps = pd.to_datetime(frame[name], utc=True)
    seconds = (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    return seconds.to_numpy(dtype="float64", na_value=np.nan)


def prepare_frame(frame: pd.DataFrame, read_date: dt.date, timezone: str) -> pd.DataFrame:
    """Add the derived columns the suite checks; vectorised, one pass per column.

    Accepts the extract's frame (FRAME_COLUMNS) or a plain one with `window_start` /
    `window_end` timestamps and `observed_null` / `expected_null` left out (then NULL is
    None / pd.NA in an object column, and NaN is NaN).
    """
    out = frame.copy()
    n = len(out)
    if "stage_row" not in out:
        out["stage_row"] = np.arange(1, n + 1, dtype="int64")
    for name in ("shard",):
        if name not in out:
            out[name] = 0
    if "exception_id" in out:
        ids = out["exception_id"]
        if pd.api.types.is_integer_dtype(ids.dtype):
            out["exception_id"] = ids.astype("Int64")  # exact: bigint ids beyond 2**53
        else:
            # a caller's frame of mixed objects: what is not a finite number is NULL
            numeric = pd.to_numeric(ids.astype(object), errors="coerce").astype("float64")
            out["exception_id"] = numeric.where(np.isfinite(numeric), np.nan)
    start, end = day_bounds(read_date, timezone)
    start_s, end_s = start.timestamp(), end.timestamp()
    if "raised_at_epoch" not in out and "raised_at" not in out:
        raise ValueError("the frame needs a raised_at (or raised_at_epoch) column")
    ws = _epoch_seconds(out, "window_start")
    we = _epoch_seconds(out, "window_end")
    raised = _epoch_seconds(out, "raised_at")
    out["window_start_epoch"] = ws
    out["window_end_epoch"] = we
    out["raised_at_epoch"] = raised
    # NULL, infinite and failing values become -1: GX's between() ignores nulls, a quarantine
    # must not. The window [ws, we) must share time with the read date [start, end); it may
    # reach beyond it (see MAX_WINDOW_DAYS). Its ends in either order: an inverted window
    # fails window_ordered alone.
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(ws) & np.isfinite(we)
        low, high = np.minimum(ws, we), np.maximum(ws, we)
        touches = finite & (low < end_s) & (high > start_s)
        out["window_day_overlap_s"] = np.where(
            touches, np.minimum(high, end_s) - np.maximum(low, start_s), -1.0)
        length = we - ws
        out["window_length_s"] = np.where(finite, length, -1.0)
        # seconds to spare under the limit; an unordered or missing window is window_ordered's
        out["window_length_room_s"] = np.where(
            finite & (length > MAX_WINDOW_SECONDS), -1.0,
            np.where(finite, MAX_WINDOW_SECONDS - length, 0.0))
        earliest = earliest_raised_at(read_date, timezone).timestamp()
        out["raised_at_offset_s"] = np.where(
            np.isfinite(raised) & (raised >= earliest), raised - earliest, -1.0
        )

    rule = out["rule_code"].astype(object) if "rule_code" in out else pd.Series([None] * n)
    # Escaped as GX's renderers print unexpected values as raw HTML (the run's page shows the
    # row's own rule_code, escaped there); the contract's codes need no escaping.
    out["rule_code_checked"] = html_safe_text(rule.where(rule.notna(), "").astype(str))

    for name in ("observed", "expected"):
        values_col = out[f"{name}_value"]
        if f"{name}_null" in out:
            is_null = out[f"{name}_null"].astype(bool).to_numpy()
        else:
            is_null = _null_mask(values_col)
            out[f"{name}_null"] = is_null
        values = pd.to_numeric(values_col.where(~is_null, np.nan), errors="coerce").to_numpy(
            dtype="float64", na_value=np.nan
        )
        magnitude = np.abs(values)
        plausible = np.isfinite(values) & (
            (magnitude == 0) | ((magnitude >= MIN_ABS_NONZERO) & (magnitude <= MAX_ABS_VALUE))
        )
        checked = np.where(plausible, values, np.inf)
        if name == "observed":
            null_ok = rule.isin(OBSERVED_MAY_BE_NULL).to_numpy()
        else:
            null_ok = np.ones(n, dtype=bool)
        # NULL where allowed stays NULL (GX skips it); NaN, inf and forbidden NULLs fail.
        checked = np.where(is_null & null_ok, np.nan, checked)
        out[f"{name}_value_checked"] = checked
        out[f"{name}_value"] = values
    if "id_copies" not in out:
        out["id_copies"] = 1
    out["id_copies"] = pd.to_numeric(out["id_copies"], errors="coerce").fillna(1).astype("int64")
    if "meter_known" not in out:
        raise ValueError("the frame needs a meter_known column (the extract computes it)")
    # days from the meter's install to the read date; NaN (not checked) for an unknown meter
    # or a caller's frame without install dates
    age = out["meter_age_days"] if "meter_age_days" in out else pd.Series(np.nan, index=out.index)
    out["meter_age_days"] = pd.to_numeric(age, errors="coerce").astype("float64")
    out["meter_known"] = out["meter_known"].fillna(False).astype(bool)
    return out


# --- running the suite -----------------------------------------------------------------


@dataclass(frozen=True)
class BatchFailure:
    """One breached batch check, in the parts an operator's page shows: what was measured,
    the limit, and the setting that widens it (None: no setting can, the data must change)."""

    check: str
    measured: str
    limit: str
    setting: str | None
    message: str  # the one line for logs, the run record and the alert

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class CheckResult:
    """One expectation of the suite as it ran: the report's table of checks."""

    check: str
    level: str
    expectation: str  # GX's type and arguments, e.g. "expect_column_values_to_be_in_set(...)"
    notes: str
    success: bool
    failing_rows: int | None  # row checks: rows failing; batch checks: None
    observed: str | None = None  # batch checks: GX's observed value; or the error
    warned_rows: tuple[int, ...] = ()  # warning checks: the failing rows' stage_row


def dq_words(outcome: str | None, quarantined: int | None) -> str:
    """A run's data-quality outcome in the words every page and list uses: "PASSED" alone
    only when no row was set aside (a run with quarantined rows passed, but not cleanly)."""
    if not outcome:
        return "not run"
    outcome = str(outcome).upper()
    if outcome == "PASSED" and quarantined:
        return f"PASSED ({quarantined} row{'s' if quarantined != 1 else ''} quarantined)"
    return outcome


@dataclass
class ValidationOutcome:
    """What validation found: per-row failures, batch breaches, counts and the report."""

    selected: int
    row_failures: dict[int, list[str]]  # stage_row -> failed check names
    check_counts: dict[str, int]  # check -> rows failing it
    batch: list[BatchFailure]  # one per breached batch check
    report_path: str | None = None
    volume: dict = field(default_factory=dict)
    checks: list[CheckResult] = field(default_factory=list)
    failed_rows_path: str | None = None
    row_warnings: list[str] = field(default_factory=list)  # one line per warning check hit

    @property
    def batch_failures(self) -> list[str]:
        """The breached batch checks, one line each."""
        return [failure.message for failure in self.batch]

    @property
    def quarantined(self) -> int:
        """Rows failing a row check: quarantined when the run goes on, none when it stops."""
        return len(self.row_failures)

    @property
    def passed(self) -> bool:
        return not self.batch

    @property
    def warnings(self) -> list[str]:
        """What the operator should look at although the run went on."""
        volume = [self.volume["warning"]] if self.volume.get("warning") else []
        return volume + self.row_warnings

    @property
    def outcome(self) -> str:
        return "PASSED" if self.passed else "FAILED"

    def summary(self) -> dict:
        summary = {
            "outcome": self.outcome,
            "selected": self.selected,
            # a run stopped by a batch check quarantines nothing: its failing rows stay in
            # the extract and in failed_rows.csv (outside probe 2026-11-27: the run record
            # said 30 quarantined, vee.quarantined_exception held none)
            "quarantined": self.quarantined if self.passed else 0,
            "failed_row_checks": self.quarantined,
            "check_counts": self.check_counts,
            # rows that go on to scoring although they failed a warning check
            "warning_counts": {c.check: len([r for r in c.warned_rows if r not in self.row_failures])
                               for c in self.checks if c.level == "warning"},
            "batch_failures": self.batch_failures,
            "batch_checks": [vars(failure) for failure in self.batch],
            "warnings": self.warnings,
            "volume": self.volume,
            "report_path": self.report_path,
        }
        if self.failed_rows_path:
            summary["failed_rows_file"] = self.failed_rows_path
        return summary


def preload_great_expectations():
    """Import GX on a background thread and return it: its ~2-3 s of imports then overlap
    reading the extract (a COPY that waits on PostgreSQL). run_suite's own import waits for
    it; an import error surfaces there."""
    import importlib
    import threading

    quiet_gx_loggers()  # before the import: it logs a line per expectation it registers

    def load() -> None:
        try:
            importlib.import_module("great_expectations")
        except Exception:  # noqa: BLE001 - run_suite's import raises it again, in context
            log.debug("background import of great_expectations failed", exc_info=True)

    thread = threading.Thread(target=load, name="gx-import", daemon=True)
    thread.start()
    return thread


def _expectation_text(config) -> str:
    kwargs = {k: v for k, v in (config.kwargs or {}).items() if k != "batch_id"}
    return f"{config.type}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"


def run_suite(
    prepared: pd.DataFrame, run_name: str = "nightly"
) -> tuple[dict[int, list[str]], dict[str, int], list[BatchFailure], list[CheckResult]]:
    """Validate a prepared frame with the stored suite (no Data Docs: the run's report is
    written by vee_tasks.scoring.report from these results).

    Returns (row failures by stage_row, failing-row counts by check, breached batch checks,
    every expectation's result).
    """
    validation = run_checkpoint(
        prepared,
        load_suite(),
        None,
        {
            "result_format": "COMPLETE",
            "unexpected_index_column_names": ["stage_row"],
            "return_unexpected_index_query": False,
            "partial_unexpected_count": 20,
        },
        run_name=run_name,
    )
    failures: dict[int, list[str]] = {}
    counts: dict[str, int] = {}
    batch: list[BatchFailure] = []
    checks: list[CheckResult] = []
    for item in validation.results:
        config = item.expectation_config
        meta = config.meta or {}
        check = meta.get("check") or config.type
        level = meta.get("level", "row")
        result = dict(
            check=check, level=level, expectation=_expectation_text(config),
            notes=str(meta.get("notes") or ""),
        )
        if item.exception_info and item.exception_info.get("raised_exception"):
            message = item.exception_info.get("exception_message")
            batch.append(BatchFailure(
                check, f"the expectation could not run: {message}", _expectation_text(config),
                None, f"{check}: expectation could not run ({message})",
            ))
            checks.append(CheckResult(**result, success=False, failing_rows=None,
                                      observed=f"could not run: {message}"))
            continue
        if level == "batch":
            observed = item.result.get("observed_value")
            if not item.success:
                batch.append(BatchFailure(
                    check, str(observed), _expectation_text(config), None, f"{check}: {observed}",
                ))
            checks.append(CheckResult(**result, success=bool(item.success), failing_rows=None,
                                      observed=None if observed is None else str(observed)))
            continue
        rows = [int(row["stage_row"]) if isinstance(row, Mapping) else int(row)
                for row in item.result.get("unexpected_index_list") or []]
        failing = int(item.result.get("unexpected_count") or 0)
        if level == "warning":  # noted, not quarantined
            checks.append(CheckResult(**result, success=bool(item.success), failing_rows=failing,
                                      warned_rows=tuple(rows)))
            continue
        counts.setdefault(check, 0)
        for stage_row in rows:
            failures.setdefault(stage_row, []).append(check)
        checks.append(CheckResult(**result, success=bool(item.success), failing_rows=failing))
    # rows failing each check (a check may have several expectations: count rows once)
    for checks_of_row in failures.values():
        for check in set(checks_of_row):
            counts[check] = counts.get(check, 0) + 1
    return failures, counts, batch, checks


# --- batch checks ----------------------------------------------------------------------


def volume_check(
    today: int, history: Mapping[dt.date, int], settings: Settings
) -> tuple[BatchFailure | None, dict]:
    """Today's count against the median of recent days that had exceptions.

    Skipped (None) with fewer than settings.volume_min_history_days such days: a new
    warehouse or a gap in the MDMS's history says nothing about today. A breach is a ratio
    outside the settings' bounds and a count that Poisson noise around the median gives
    less often than VOLUME_TAIL_PROBABILITY: on a small warehouse a ratio alone is noise (a
    median of 7 a day put a quiet day of 1 exception, 0.7 % likely, outside 0.2x).
    """
    from scipy.stats import poisson

    counts = [c for c in history.values() if c > 0]
    detail = {"today": today, "history_days": len(counts)}
    if len(counts) < settings.volume_min_history_days:
        detail["checked"] = False
        return None, detail
    median = float(statistics.median(counts))
    ratio = today / median if median else float("inf")
    # the chance of a count this far out on its side of the median
    tail = float(poisson.cdf(today, median) if today < median else poisson.sf(today - 1, median))
    detail.update(checked=True, median=median, ratio=round(ratio, 4), tail_probability=tail)
    outside = ratio < settings.min_volume_ratio or ratio > settings.max_volume_ratio
    if outside and tail < VOLUME_TAIL_PROBABILITY:
        measured = f"{today} exceptions: {ratio:.2f}x the median {median:g} of the last {len(counts)} days"
        limit = f"{settings.min_volume_ratio:g}x to {settings.max_volume_ratio:g}x the median"
        return BatchFailure(
            VOLUME_CHECK, measured, limit, "VEE_MIN_VOLUME_RATIO / VEE_MAX_VOLUME_RATIO",
            f"{VOLUME_CHECK}: {today} exceptions is {ratio:.2f}x the median {median:g} of the "
            f"last {len(counts)} days (allowed {settings.min_volume_ratio:g}x-"
            f"{settings.max_volume_ratio:g}x); if the day is real (an outage, a heat wave), "
            "rerun it with VEE_MIN_VOLUME_RATIO / VEE_MAX_VOLUME_RATIO widened",
        ), detail
    return None, detail


# Rows a warning line names by id; the rest it counts.
WARNING_EXAMPLES = 5


def row_warning(check: CheckResult, prepared: pd.DataFrame, quarantined) -> str | None:
    """The warning line of a warning-level check that rows going on to scoring failed (not
    the `quarantined` stage rows): how many, the first few in staging order by exception id
    and meter, and what to ask the MDMS."""
    if check.level != "warning":
        return None
    warned = [row for row in check.warned_rows if row not in quarantined]
    if not warned:
        return None
    rows = prepared[prepared["stage_row"].isin(warned[:WARNING_EXAMPLES])]
    if check.check == INSTALL_DATE_CHECK:
        named = ", ".join(
            f"{_id_text(r.exception_id)} on meter {r.meter_id!r} "
            f"(installed {-int(r.meter_age_days)} day(s) after the read date)"
            for r in rows.itertuples()
        )
        more = len(warned) - len(rows)
        return (
            f"{INSTALL_DATE_CHECK}: {len(warned)} exception(s) read before their meter's "
            f"install date in mdm.meter: {named}{f' and {more} more' if more > 0 else ''}. Scored "
            "and sent to review, never auto-applied; ask the MDMS team whether the install "
            "date or the exception's meter id is wrong."
        )
    return f"{check.check}: {len(warned)} row(s) ({check.notes})"


def _id_text(exception_id) -> str:
    return "exception (no id)" if pd.isna(exception_id) else f"exception {int(exception_id)}"


def empty_day_warning(volume: Mapping, settings: Settings) -> str:
    """What an empty day far below its recent days tells the operator."""
    return (
        f"{VOLUME_CHECK}: {volume['today']} exceptions on the read date, {volume['ratio']:.2f}x "
        f"the median {volume['median']:g} of the last {volume['history_days']} days (allowed "
        f"{settings.min_volume_ratio:g}x-{settings.max_volume_ratio:g}x), and none to decide: "
        "the run succeeds with zero counts. If the MDMS has not raised the day's exceptions "
        "yet, rerun this date once it has."
    )


def quarantine_share_check(selected: int, quarantined: int, settings: Settings) -> BatchFailure | None:
    """The batch fails when more than max_quarantine_share of its rows failed row checks,
    and at least quarantine_share_min_rows did (3 bad rows of 13 are quarantined, the rest
    scored)."""
    if selected == 0 or quarantined < settings.quarantine_share_min_rows:
        return None
    share = quarantined / selected
    if share > settings.max_quarantine_share:
        return BatchFailure(
            QUARANTINE_SHARE_CHECK,
            f"{share:.0%} ({quarantined} of {selected} rows failed row checks)",
            f"at most {settings.max_quarantine_share:.0%} (checked from "
            f"{settings.quarantine_share_min_rows} failing rows on)",
            "VEE_MAX_QUARANTINE_SHARE",
            f"{QUARANTINE_SHARE_CHECK}: {quarantined} of {selected} rows ({share:.0%}) failed "
            f"row checks (allowed {settings.max_quarantine_share:.0%}, "
            "VEE_MAX_QUARANTINE_SHARE): see the report's failed checks",
        )
    return None


def validate_frame(
    frame: pd.DataFrame,
    read_date: dt.date,
    timezone: str | None = None,
    *,
    settings: Settings | None = None,
    volume_today: int | None = None,
    volume_history: Mapping[dt.date, int] | None = None,
    report_dir: Path | None = None,
    run_name: str = "nightly",
    run_id: str | None = None,
) -> ValidationOutcome:
    """Row and batch checks of one read date's extracted exceptions (no database access).

    With `report_dir`: the folder is emptied and the operator's report written into it
    (index.html, and failed_rows.csv when rows failed); `run_id` names the run there.
    """
    settings = settings or get_settings()
    timezone = timezone or settings.timezone
    prepared = prepare_frame(frame, read_date, timezone)
    failures, counts, batch, checks = run_suite(prepared, run_name)
    selected = len(prepared)
    volume_detail: dict = {}
    if volume_history is not None:
        breach, volume_detail = volume_check(
            selected if volume_today is None else volume_today, volume_history, settings
        )
        if breach and selected == 0:
            # nothing to decide, so nothing a stop would protect: the empty day succeeds
            volume_detail["warning"] = empty_day_warning(volume_detail, settings)
        elif breach:
            batch.append(breach)
    share = quarantine_share_check(selected, len(failures), settings)
    if share:
        batch.append(share)
    outcome = ValidationOutcome(
        selected=selected,
        row_failures={k: sorted(set(v), key=v.index) for k, v in failures.items()},
        check_counts=counts,
        batch=batch,
        volume=volume_detail,
        checks=checks,
        # only for a run that goes on: a stopped one scores none of those rows
        row_warnings=[] if batch else [
            w for w in (row_warning(c, prepared, failures) for c in checks) if w],
    )
    if report_dir is not None:
        from vee_tasks.scoring.report import write_report

        index, failed_rows = write_report(
            Path(report_dir), prepared, outcome, read_date, timezone, run_id or run_name
        )
        outcome.report_path = str(index)
        outcome.failed_rows_path = str(failed_rows) if failed_rows else None
    return outcome
