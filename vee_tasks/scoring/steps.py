"""The steps of a nightly scoring run, shared by the DAG (one task each) and `pipeline`.

Every step takes the engine, the run id and plain values, and returns plain values (ids,
counts, the pinned model version): what may go through XCom. Data moves between steps
through the warehouse: `vee.nightly_extract` holds the run's rows, `vee.nightly_shard_ids`
each shard's ids to score (written by validate), `vee.nightly_shard_result` what each shard
wrote, `vee.scoring_run` the run record.

Order: start_run -> resolve_champion -> extract -> validate -> score_shard (each shard,
independent) -> finish_run. Every step is idempotent for a given run id: a retried or
cleared task redoes its own work and gives the same rows.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from sqlalchemy.engine import Connection, Engine

from vee_tasks.config import DECIDABLE_STATUSES, NIGHTLY_DAG_ID, RESOLUTION_CODES, Settings, get_settings
from vee_tasks.migrations import (
    WarehouseBehind,
    contract_column_problems,
    missing_mdm_tables_message,
    require_upgraded,
)
from vee_tasks.scoring.errors import (
    DataQualityError,
    RunFinishedError,
    RunStateError,
    ScoringError,
    is_transient,
    short_reason,
)
from vee_tasks.warehouse import (
    WRITE_SETTINGS,
    bound_query,
    copy_fixed_width,
    copy_query_frame,
    copy_rows,
    execute_sql_file,
    pinned_settings,
    warehouse_identity,
    warn_missing_supporting_indexes,
)

log = logging.getLogger(__name__)

AUTO_APPLY = "AUTO_APPLY"
REVIEW = "REVIEW"
RESULT_COLUMNS = [
    "exception_id",
    "predicted_resolution",
    "confidence",
    "p_accept",
    "p_estimate",
    "p_edit",
    "p_reread",
    "p_field_order",
    "decision",
    "audit",
]
# OpenMP/BLAS threads per shard while predicting. Shards are the unit of parallelism (the
# DAG maps them onto the workers); measured on 2 cores, a gradient-boosting predict fanned
# out per tree over OpenMP was 5x slower on 15 rows and 4x slower on 1,755 rows than one
# thread, because each of ~1,500 tree passes pays the fan-out.
PREDICT_THREADS = 1
# work_mem of the extract (its hash of mdm.meter's keys: ~10 MB per 200,000 meters)
EXTRACT_WORK_MEM_MB = 64
_PROB_COLUMN = {code: f"p_{code.lower()}" for code in RESOLUTION_CODES}


# --- the run record ----------------------------------------------------------------------


def _q(conn: Connection, name: str, params: dict | None = None):
    return execute_sql_file(conn, f"queries/{name}.sql", params or {})


def record_step_seconds(engine: Engine, dag_run_id: str, step: str, seconds: float) -> None:
    with engine.begin() as conn:
        _q(conn, "nightly_run_step", {"dag_run_id": dag_run_id, "step": step, "seconds": round(seconds, 3)})


def mark_failed(engine: Engine, dag_run_id: str, message: str, status: str = "FAILED",
                attempt_started: dt.datetime | None = None) -> None:
    """Mark the run FAILED (or DQ_FAILED); keeps an earlier, more specific failure, unless
    this one comes from an attempt started after it (`attempt_started`: a resumed shard that
    fails for a new reason). The message is stored with URL passwords and key=value secrets
    masked (operators read it)."""
    from vee_tasks.alerting import scrub

    with engine.begin() as conn:
        _q(conn, "nightly_run_fail", {"dag_run_id": dag_run_id, "status": status,
                                      "message": scrub(message), "attempt_started": attempt_started})


@contextmanager
def _step(engine: Engine, dag_run_id: str, name: str) -> Iterator[None]:
    """Time a step into step_seconds; on a permanent error mark the run FAILED."""
    started = time.perf_counter()
    attempt_started = dt.datetime.now(dt.timezone.utc)
    try:
        yield
    except (DataQualityError, RunFinishedError):
        raise  # validate() has recorded DQ_FAILED; a finished run's record stays as it is
    except Exception as exc:
        if not is_transient(exc):
            try:
                mark_failed(engine, dag_run_id, f"{name}: {short_reason(exc)}",
                            attempt_started=attempt_started)
            except Exception:  # noqa: BLE001 - the original error matters more
                log.exception("could not mark run %s failed", dag_run_id)
        raise
    record_step_seconds(engine, dag_run_id, name, time.perf_counter() - started)


_JOIN_METHODS = ("hashjoin", "mergejoin", "nestloop")


@contextmanager
def _join_methods_off(conn: Connection, *methods: str) -> Iterator[None]:
    """The planner without these join methods for the statements of the block (SET LOCAL:
    the transaction's other statements keep the defaults)."""
    assert set(methods) <= set(_JOIN_METHODS), methods
    with pinned_settings(conn, {f"enable_{method}": "off" for method in methods}):
        yield


def _require_staged(run, staged: int, dag_run_id: str, step: str) -> None:
    """The run's staged rows are all there (a run's staging is dropped when it finishes, and
    a failed run's after a few days): otherwise a step would see an empty day and succeed
    with nothing done."""
    from vee_tasks.scoring.report import rerun_command

    expected = run["staged_rows"] if run is not None else None
    if expected is not None and staged != expected:
        raise RunStateError(
            f"run {dag_run_id}: {staged} of the {expected} rows extract staged are left, so "
            f"{step} cannot go on; clear the whole run: {rerun_command(run['read_date'], dag_run_id)}"
        )


def _refuse_finished(run, dag_run_id: str, step: str, also: tuple[str, ...] = ()) -> None:
    """A step of a run that has finished, cleared on its own in Airflow: its record, staged
    rows and the other steps' results no longer go with it, so it must not run alone (an
    outside probe saw a lone validate rewrite the counts from an empty staging table, and a
    lone score_shard turn the record of a successful run to FAILED)."""
    from vee_tasks.scoring.report import rerun_command

    if run is not None and run["status"] in ("SUCCESS", *also):
        read_date = run["read_date"]
        raise RunFinishedError(
            f"run {dag_run_id} has finished ({run['status']}): {step} cannot rerun alone. To "
            f"rerun read date {read_date}, clear the whole run (every task, not -t {step}): "
            f"{rerun_command(read_date, dag_run_id)}"
        )


# A run record still RUNNING this long after it started belongs to an Airflow run that ended
# without finishing it (a night takes minutes; the wait for the MDMS comes before the record).
ABANDONED_AFTER_HOURS = 24


def start_run(engine: Engine, dag_run_id: str, read_date: dt.date, timezone: str | None = None,
              later_tasks_done: tuple[str, ...] = ()) -> dict:
    """Open the run record (a retried or cleared run starts afresh).

    `later_tasks_done`: the run's later tasks that keep a finished state in Airflow. A whole
    run cleared has none; with some, this task was cleared alone, and resetting a finished
    record would leave it RUNNING with nothing to finish it (outside probe, 2026-11-27):
    refused, the record kept."""
    from vee_tasks.dates import day_bounds

    started = time.perf_counter()
    try:
        require_upgraded(engine)  # before the record: it needs the tables
    except WarehouseBehind as exc:
        raise ScoringError(str(exc)) from None
    if later_tasks_done:
        with engine.connect() as conn:
            run = _run_row(conn, dag_run_id)
        _refuse_finished(run, dag_run_id, "start_run_record", also=("FAILED", "DQ_FAILED"))

    timezone = timezone or get_settings().timezone
    day_end = day_bounds(read_date, timezone)[1]
    if day_end > dt.datetime.now(dt.timezone.utc):
        log.warning(
            "read date %s has not ended yet in %s (it ends at %s UTC): exceptions the MDMS "
            "raises later are not in this run", read_date, timezone, day_end.isoformat())
    with engine.begin() as conn:
        earlier = _run_row(conn, dag_run_id)
        if earlier is not None and earlier["status"] != "RUNNING":
            # the audit trail of a rerun: what the record said before it is reset
            log.warning(
                "run %s was run before (%s, model %s v%s, selected %s, scored %s, quarantined "
                "%s): its record is reset, and its resolution rows are rewritten where this "
                "run decides otherwise", dag_run_id, earlier["status"], earlier["model_name"],
                earlier["model_version"], earlier["selected"], earlier["scored"],
                earlier["quarantined"])
        _q(conn, "nightly_run_start", {"dag_run_id": dag_run_id, "read_date": read_date})
        abandoned = _q(conn, "nightly_run_abandon",
                       {"dag_run_id": dag_run_id, "abandoned_hours": ABANDONED_AFTER_HOURS}).fetchall()
        # before any other step: each (the champion's check included) would fail on a missing
        # table with a less telling message (outside probe, 2026-11-28); the record says why
        missing = missing_mdm_tables_message(conn)
    if missing:
        mark_failed(engine, dag_run_id, missing)
        raise ScoringError(missing)
    for row in abandoned:
        log.warning("run %s (read date %s) was still RUNNING %d h after it started: recorded "
                    "FAILED as abandoned", row.dag_run_id, row.read_date, ABANDONED_AFTER_HOURS)
    record_step_seconds(engine, dag_run_id, "start", time.perf_counter() - started)
    log.info("nightly run %s: read date %s", dag_run_id, read_date)
    return {"dag_run_id": dag_run_id, "read_date": read_date.isoformat()}


def resolve_champion(engine: Engine, dag_run_id: str, settings: Settings | None = None,
                     later_tasks_done: tuple[str, ...] = ()) -> str:
    """Pin the run to the champion's version now; every shard loads exactly this version.

    Cleared alone: refused on a finished run (like the other steps); while shard tasks that
    will not rerun keep their results (`later_tasks_done`, from Airflow), the pinned version
    stays, so that one run never mixes two versions (outside probe, 2026-11-27: the record
    named the new champion, the rows the old one). Cleared with its downstream, it pins the
    champion of now: every shard then scores again."""
    settings = settings or get_settings()
    with engine.connect() as conn:
        run = _run_row(conn, dag_run_id)
    _refuse_finished(run, dag_run_id, "resolve_champion")
    kept = [t for t in later_tasks_done if t.startswith("score_shard")]
    if run is not None and run["model_version"] and kept:
        log.warning("run %s: %s keep what they wrote with %s v%s; the run keeps that version",
                    dag_run_id, ", ".join(kept), run["model_name"], run["model_version"])
        return str(run["model_version"])
    with _step(engine, dag_run_id, "resolve_champion"):
        from vee_tasks.registry import foreign_to, resolve_champion_version, version_info

        version = str(resolve_champion_version(settings))
        with engine.connect() as conn:
            ours = warehouse_identity(conn)
        other = foreign_to(version_info(version, settings).tags, ours)
        if other:
            # After `make demo` the local registry's champion was the demo's model: a real
            # warehouse was scored with it, unnoticed (outside probe, 2026-11-27).
            raise RunStateError(
                f"champion {settings.registered_model_name} v{version} was trained on another "
                f"warehouse ({other}; this one is {ours}) and does not score this one's "
                "exceptions. Train on this warehouse first (the weekly DAG, or `vee train "
                f"--as-of DATE`), or, if that model is meant for it, `vee model adopt {version}`"
            )
        with engine.begin() as conn:
            _q(
                conn,
                "nightly_run_model",
                {
                    "dag_run_id": dag_run_id,
                    "model_name": settings.registered_model_name,
                    "model_version": version,
                },
            )
    log.info("run %s pinned to %s version %s", dag_run_id, settings.registered_model_name, version)
    return version


# --- usage rollup ------------------------------------------------------------------------


def refresh_usage_rollup(
    engine: Engine, dag_run_id: str, read_date: dt.date, settings: Settings | None = None
) -> int:
    """Roll up the settled days of the read date's usage lookback that are missing
    (vee_tasks/usage_rollup.py); returns how many days were built.

    The rollup only makes the shards' features cheaper (a day without it is read from the
    interval reads, to the same values), so a permanent error here is logged and the run
    goes on; a transient one is raised for Airflow to retry.
    """
    from vee_tasks import usage_rollup

    settings = settings or get_settings()
    started = time.perf_counter()
    try:
        built = usage_rollup.refresh_for_read_date(engine, read_date, settings.timezone)
    except Exception as exc:
        if is_transient(exc):
            raise
        log.exception("run %s: usage rollup not refreshed; features read raw reads", dag_run_id)
        return 0
    record_step_seconds(engine, dag_run_id, "refresh_usage_rollup", time.perf_counter() - started)
    log.info(
        "run %s: usage rollup of %d day(s): %s", dag_run_id, len(built),
        ", ".join(f"{d.day} ({d.meters} meters, {d.seconds:.1f}s)" for d in built) or "none missing",
    )
    return len(built)


# --- extract -----------------------------------------------------------------------------


def contract_schema_problems(conn: Connection) -> list[str]:
    """Differences between mdm.vee_exception and the contract's columns (batch check)."""
    rows = _q(conn, "nightly_contract_columns").fetchall()
    return contract_column_problems("vee_exception", {r.column_name: r.data_type for r in rows})


def shards_for(decidable: int, settings: Settings) -> int:
    """One shard per settings.shard_min_rows exceptions, at least 1, at most shard_count."""
    wanted = -(-decidable // max(1, settings.shard_min_rows))
    return max(1, min(settings.shard_count, wanted))


def run_shard_count(conn: Connection, dag_run_id: str, settings: Settings) -> int:
    """The shards this run's extract used (runs recorded before the column: shard_count)."""
    run = _run_row(conn, dag_run_id)
    return int(run["shard_count"] or settings.shard_count) if run else settings.shard_count


def extract(engine: Engine, dag_run_id: str, read_date: dt.date, settings: Settings | None = None) -> int:
    """Stage the read date's decidable exceptions in vee.nightly_extract, in SQL; returns
    the number of rows staged."""
    settings = settings or get_settings()
    with _step(engine, dag_run_id, "extract"):
        with engine.begin() as conn:
            _refuse_finished(_run_row(conn, dag_run_id), dag_run_id, "extract")
            # cleared after a failure: open again, the extract starts the run's data afresh
            _q(conn, "nightly_run_restage", {"dag_run_id": dag_run_id})
            problems = contract_schema_problems(conn)
            key_enforced = bool(_q(conn, "nightly_exception_key_enforced").scalar())
            warn_missing_supporting_indexes(conn, f"run {dag_run_id}")
        if problems:
            failures = ["schema: " + "; ".join(problems)]
            _record_dq_failure(engine, dag_run_id, read_date, failures, None, 0, 0)
            raise DataQualityError(_dq_failure_message(failures, read_date, dag_run_id, None))
        with engine.begin() as conn:
            _q(conn, "nightly_extract_clear", {"dag_run_id": dag_run_id})
            decidable = int(_q(conn, "nightly_decidable_count", {"read_date": read_date}).scalar())
            shards = shards_for(decidable, settings)
            _q(conn, "nightly_stage_row_sequence")
            # the meters' hash table in memory: at the default 4 MB a day's rows spilled to disk
            _q(conn, "session_setting_set", {"name": "work_mem", "value": f"{EXTRACT_WORK_MEM_MB}MB"})
            result = _q(
                conn,
                "nightly_extract",
                {"dag_run_id": dag_run_id, "read_date": read_date, "shard_count": shards,
                 "check_duplicates": not key_enforced},
            )
            selected = result.rowcount
            _q(conn, "nightly_run_shards",
               {"dag_run_id": dag_run_id, "shard_count": shards, "staged": selected})
            if _q(conn, "nightly_extract_analyze_allowed").scalar():
                _q(conn, "nightly_extract_analyze")
            else:
                log.warning("run %s: this login may not execute vee.analyze_nightly_extract(): "
                            "the staged rows are not analyzed and the next steps plan on old "
                            "statistics; `vee db upgrade` grants it to vee_scoring (`vee db "
                            "status` names what is missing)", dag_run_id)
    log.info("run %s: staged %d decidable exceptions of %s in %d shard(s)", dag_run_id, selected,
             read_date, shards)
    return int(selected)


# --- validate ----------------------------------------------------------------------------


def read_extract_frame(conn: Connection, dag_run_id: str):
    """The run's staged rows as a DataFrame, moved with COPY and parsed by Arrow's CSV reader
    (for a million rows ~0.5 s, against ~1.1 s for pandas' parser)."""
    import pyarrow as pa

    from vee_tasks.scoring.validation import FRAME_COLUMNS

    types = {
        "stage_row": pa.int64(), "shard": pa.int64(), "exception_id": pa.int64(),
        "meter_id": pa.string(), "rule_code": pa.string(),
        "window_start_epoch": pa.float64(), "window_end_epoch": pa.float64(),
        "raised_at_epoch": pa.float64(),
        "observed_value": pa.float64(), "expected_value": pa.float64(),
        "observed_null": pa.bool_(), "expected_null": pa.bool_(), "meter_known": pa.bool_(),
        "meter_age_days": pa.float64(), "id_copies": pa.int64(),
    }
    frame = copy_query_frame(conn, "queries/nightly_extract_frame.sql",
                             {"dag_run_id": dag_run_id}, types)
    for column in ("stage_row", "shard", "id_copies"):
        frame[column] = frame[column].astype("int64")
    for flag in ("observed_null", "expected_null", "meter_known"):
        frame[flag] = frame[flag].astype(object).where(frame[flag].notna(), False).astype(bool)
    return frame[list(FRAME_COLUMNS)]


def report_dir_for(settings: Settings, read_date: dt.date, dag_run_id: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", dag_run_id)[:120]
    return settings.reports_dir / "nightly" / read_date.isoformat() / safe


def _write_marker(report_dir: Path, read_date: dt.date, dag_run_id: str, outcome: str, summary: dict) -> None:
    report_dir.mkdir(parents=True, exist_ok=True)
    marker = {
        "kind": "nightly",
        "date": read_date.isoformat(),
        "run_id": dag_run_id,
        "outcome": outcome,
        "summary": summary,
    }
    (report_dir / "run.json").write_text(json.dumps(marker, indent=2, default=str), encoding="utf-8")


def _dq_failure_message(failures: list[str], read_date: dt.date, dag_run_id: str,
                        report_path: str | None) -> str:
    """Why a batch check stopped the run, and how to rerun it once the data is fixed (the
    command was only in the HTML report; the README promises it in the record and the task
    log too: outside probe, 2026-11-28)."""
    from vee_tasks.scoring.report import rerun_command

    where = f" (report {report_path})" if report_path else ""
    fix = ("the mdm tables match the contract" if all(f.startswith("schema") for f in failures)
           else "the data is fixed, or the limit widened for one run as the report says")
    return (f"data quality: {' | '.join(failures)}{where}. Once {fix}, rerun: "
            f"{rerun_command(read_date, dag_run_id)}")


def _record_dq_failure(
    engine: Engine, dag_run_id: str, read_date: dt.date, failures: list[str],
    report_path: str | None, selected: int, quarantined: int, summary: dict | None = None,
) -> None:
    with engine.begin() as conn:
        _q(
            conn,
            "nightly_run_dq",
            {
                "dag_run_id": dag_run_id,
                "dq_outcome": "FAILED",
                "dq_report_path": report_path,
                "dq_summary": json.dumps(summary or {"batch_failures": failures}, default=str),
                "selected": selected,
                "quarantined": quarantined,
            },
        )
        _q(conn, "nightly_run_fail", {"dag_run_id": dag_run_id, "status": "DQ_FAILED",
                                      "message": _dq_failure_message(failures, read_date,
                                                                     dag_run_id, None),
                                      "attempt_started": None})


def _withdraw_earlier_decisions(conn: Connection, dag_run_id: str) -> None:
    """Quarantined rows stay OPEN (the contract): undo an earlier run's decision on any of
    them, e.g. after the MDMS changed its values (see nightly_quarantine_withdraw.sql)."""
    done = _q(conn, "nightly_quarantine_withdraw", {"dag_run_id": dag_run_id}).one()
    if done.reopened or done.withdrawn:
        log.warning(
            "run %s: quarantined exceptions had earlier decisions: %d set back to OPEN, "
            "%d resolution row(s) withdrawn", dag_run_id, done.reopened, done.withdrawn,
        )


def validate(engine: Engine, dag_run_id: str, read_date: dt.date, settings: Settings | None = None) -> list[int]:
    """Run the GX suite over the staged rows; quarantine failing rows, or stop the run.

    On a batch-level breach: DQ_FAILED in the run record, the report kept, nothing
    written anywhere else, DataQualityError raised. Otherwise the failing rows are marked in
    the extract and (re)written to vee.quarantined_exception in one transaction, where an
    earlier run's decision on any of them is withdrawn (status OPEN again). Returns the
    shards to score (all of them: an empty shard finishes at once).
    """
    settings = settings or get_settings()
    from vee_tasks.scoring.validation import dq_words, preload_great_expectations, validate_frame

    with _step(engine, dag_run_id, "validate"):
        gx_import = preload_great_expectations()
        try:
            with engine.connect() as conn:
                run = _run_row(conn, dag_run_id)
                _refuse_finished(run, dag_run_id, "validate", also=("DQ_FAILED",))
                # an earlier attempt's page ("PASSED") must not outlive this one failing
                # before it writes its own (reviewed 2026-11-27)
                from vee_tasks.quality import fresh_report_dir

                fresh_report_dir(report_dir_for(settings, read_date, dag_run_id))
                frame = read_extract_frame(conn, dag_run_id)
                _require_staged(run, len(frame), dag_run_id, "validate")
                history_rows = _q(
                    conn,
                    "nightly_volume_history",
                    {"read_date": read_date, "lookback_days": settings.volume_lookback_days},
                ).fetchall()
        finally:
            gx_import.join()  # never leave an import running into interpreter shutdown
        counts = {r.read_date: r.exceptions for r in history_rows}
        today = counts.pop(read_date, 0)
        report_dir = report_dir_for(settings, read_date, dag_run_id)
        outcome = validate_frame(
            frame,
            read_date,
            settings.timezone,
            settings=settings,
            volume_today=today,
            volume_history=counts,
            report_dir=report_dir,
            run_name=f"{read_date.isoformat()}_{dag_run_id}",
            run_id=dag_run_id,
        )
        summary = outcome.summary()
        _write_marker(report_dir, read_date, dag_run_id, outcome.outcome, summary)
        log.info("run %s: data quality %s %s", dag_run_id, dq_words(outcome.outcome, outcome.quarantined),
                 json.dumps(summary, default=str))
        from vee_tasks.alerting import warn_data_quality

        for warning in outcome.warnings:
            log.warning("run %s: %s", dag_run_id, warning)
            warn_data_quality(NIGHTLY_DAG_ID, dag_run_id, read_date.isoformat(), warning,
                              outcome.report_path, settings)
        if not outcome.passed:
            _record_dq_failure(  # nothing quarantined: the run stops before writing
                engine, dag_run_id, read_date, outcome.batch_failures, outcome.report_path,
                outcome.selected, 0, summary,
            )
            raise DataQualityError(_dq_failure_message(
                outcome.batch_failures, read_date, dag_run_id, outcome.report_path))

        import pandas as pd

        failed = pd.DataFrame(
            {
                "stage_row": list(outcome.row_failures.keys()),
                "failed_checks": ["{" + ",".join(v) + "}" for v in outcome.row_failures.values()],
            }
        )
        with engine.begin() as conn:
            _q(conn, "nightly_reset_failed_rows", {"dag_run_id": dag_run_id})
            _q(conn, "nightly_failed_rows_temp")
            copy_rows(conn, "nightly_failed_rows", ["stage_row", "failed_checks"], failed)
            _q(conn, "nightly_mark_failed_rows", {"dag_run_id": dag_run_id})
            _q(conn, "nightly_shard_ids_store",
               {"dag_run_id": dag_run_id, "shard_count": run_shard_count(conn, dag_run_id, settings)})
            _q(conn, "nightly_quarantine_lock", {"read_date": read_date})
            _q(conn, "nightly_quarantine_delete", {"dag_run_id": dag_run_id, "read_date": read_date})
            with _join_methods_off(conn, "nestloop", "mergejoin"):  # see the query's comment
                _q(conn, "nightly_quarantine_delete_moved",
                   {"dag_run_id": dag_run_id, "read_date": read_date})
            with pinned_settings(conn, WRITE_SETTINGS):  # the payload's jsonb text
                _q(conn, "nightly_quarantine_insert", {"dag_run_id": dag_run_id, "read_date": read_date})
            if outcome.row_failures:
                _withdraw_earlier_decisions(conn, dag_run_id)
            _q(
                conn,
                "nightly_run_dq",
                {
                    "dag_run_id": dag_run_id,
                    "dq_outcome": "PASSED",
                    "dq_report_path": outcome.report_path,
                    "dq_summary": json.dumps(summary, default=str),
                    "selected": outcome.selected,
                    "quarantined": outcome.quarantined,
                },
            )
    with engine.connect() as conn:
        return list(range(run_shard_count(conn, dag_run_id, settings)))


# --- score one shard ---------------------------------------------------------------------


def audit_draw(exception_ids) -> "np.ndarray":
    """A uniform number in [0, 1) per exception id, the same on every run and machine
    (`hashing.splitmix64` of the id): which confident decisions the audit sends to the analysts."""
    import numpy as np

    from vee_tasks.hashing import splitmix64

    x = splitmix64(exception_ids, stream=AUDIT_HASH_STREAM)
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


AUDIT_HASH_STREAM = 0


def decide(proba, thresholds: dict[str, float], auto_apply_codes=RESOLUTION_CODES,
           audit_share: float = 0.0, review_only=None):
    """Predicted code, its confidence, and AUTO_APPLY when the confidence reaches the pinned
    version's threshold for that code (no threshold for a code, or a code outside
    `auto_apply_codes` (setting VEE_AUTO_APPLY_CODES): always REVIEW). Of those, the
    `audit_share` drawn by id (VEE_AUDIT_SHARE) go to REVIEW instead, marked `audit`.
    `review_only` (a boolean per row, in proba's order) marks rows an analyst must see
    whatever the confidence (review_only_rows): REVIEW, not audited."""
    import numpy as np
    import pandas as pd

    proba = proba[list(RESOLUTION_CODES)].astype("float64")
    values = proba.to_numpy()
    if not np.isfinite(values).all():
        raise ValueError("the model returned non-finite probabilities")
    best = values.argmax(axis=1)
    predicted = np.asarray(RESOLUTION_CODES, dtype=object)[best]
    confidence = np.clip(values[np.arange(len(values)), best], 0.0, 1.0)
    per_code = np.array([float(thresholds.get(code, np.inf)) if code in auto_apply_codes
                         else np.inf for code in RESOLUTION_CODES])
    limit = per_code[best]
    ids = proba.index.to_numpy(dtype="int64")
    confident = confidence >= limit
    if review_only is not None:
        confident &= ~np.asarray(review_only, dtype=bool)
    audit = confident & (audit_draw(ids) < audit_share)
    decision = np.where(confident & ~audit, AUTO_APPLY, REVIEW)
    out = pd.DataFrame(
        {
            "exception_id": ids,
            "predicted_resolution": predicted,
            "confidence": confidence,
            "decision": decision,
            "audit": audit,
        }
    )
    for code in RESOLUTION_CODES:
        out[_PROB_COLUMN[code]] = proba[code].to_numpy()
    return out[RESULT_COLUMNS]


def review_only_rows(features):
    """Rows scored but never auto-applied: a read before its meter's install date
    (validation's warning meter_installed_by_read_date; a meter exchange recorded late, or a
    read booked to the wrong meter). Estimating or accepting it unseen could bill the wrong
    premise (outside probe, 2026-11-29: such a row was auto-applied as ESTIMATE)."""
    # an unknown meter's age (NaN; 0 once the features are finished) is no such read
    return features["meter_age_days"].to_numpy(dtype="float64") < 0


def copy_decisions(conn: Connection, decided) -> int:
    """decide()'s rows into the shard's temp table nightly_result (nightly_result_temp.sql)
    as fixed-width binary rows: the code as its 1-based position in RESOLUTION_CODES, the
    decision as a flag; the table derives both texts from them."""
    import numpy as np

    codes = decided["predicted_resolution"].map({c: i + 1 for i, c in enumerate(RESOLUTION_CODES)})
    if codes.isna().any():
        raise ValueError("a decision with a code outside RESOLUTION_CODES")
    columns = {
        "exception_id": decided["exception_id"].to_numpy(dtype=np.int64),
        "predicted_code": codes.to_numpy(dtype=np.int16),
        "confidence": decided["confidence"].to_numpy(dtype=np.float64),
        **{_PROB_COLUMN[c]: decided[_PROB_COLUMN[c]].to_numpy(dtype=np.float64)
           for c in RESOLUTION_CODES},
        "auto_apply": (decided["decision"] == AUTO_APPLY).to_numpy(dtype=bool),
        "audit": decided["audit"].to_numpy(dtype=bool),
    }
    return copy_fixed_width(conn, "nightly_result", columns)


def _shard_id_chunks(conn: Connection, dag_run_id: str, shard: int, rows: int):
    """The shard's exception ids to score, a meter's together, `rows` at a time as plain ints,
    through a server-side cursor (a shard of millions never sits whole in this process):
    the list validate stored, or for a run validated before it stored lists, the shard's
    staged rows that passed."""
    raw = conn.connection.driver_connection
    params = {"dag_run_id": dag_run_id, "shard": shard}
    with raw.cursor() as cursor:
        cursor.execute(bound_query(raw, "queries/nightly_shard_listed.sql", params))
        listed = cursor.fetchone() is not None
    if not listed:
        log.warning("run %s shard %d: no id list stored by validate; reading the staged rows",
                    dag_run_id, shard)
    query = "queries/nightly_shard_ids.sql" if listed else "queries/nightly_shard_ids_scan.sql"
    with raw.cursor(name=f"vee_shard_{shard}_ids") as cursor:
        cursor.itersize = rows
        cursor.execute(bound_query(raw, query, params))
        while batch := cursor.fetchmany(rows):
            yield [row[0] for row in batch]


def _run_row(conn: Connection, dag_run_id: str):
    return _q(conn, "nightly_run_get", {"dag_run_id": dag_run_id}).mappings().first()


def score_shard(
    engine: Engine,
    dag_run_id: str,
    read_date: dt.date,
    shard: int,
    model_version: str,
    settings: Settings | None = None,
    model=None,
    before_write=None,
) -> dict:
    """Score one shard with the pinned model version and write it back in one transaction.

    Features, predictions and decisions are made chunk by chunk (settings.scoring_chunk_rows)
    and COPYed into a temp table, so memory stays bounded; the write-back is set-based SQL:
    set the statuses of the still-decidable rows (which locks them), lock those already at
    their new status, upsert the locked rows' resolutions, record the shard's counts. Rows
    an analyst resolved meanwhile are skipped.
    `before_write(conn)` is a test seam to act between scoring and the lock.
    """
    settings = settings or get_settings()
    started = time.perf_counter()
    name = f"score_shard_{shard}"
    with _step(engine, dag_run_id, name):
        with engine.connect() as conn:
            run = _run_row(conn, dag_run_id)
            _refuse_finished(run, dag_run_id, "score_shard")
            any_staged = _q(conn, "nightly_staged_any", {"dag_run_id": dag_run_id}).scalar()
        if run is not None and (run["staged_rows"] or 0) > 0 and not any_staged:
            _require_staged(run, 0, dag_run_id, "score_shard")
        if run is None or run["dq_outcome"] != "PASSED" or run["status"] not in ("RUNNING", "FAILED"):
            raise RunStateError(
                f"run {dag_run_id} is not validated and running "
                f"(status {run and run['status']}, data quality {run and run['dq_outcome']})"
            )
        if run["status"] == "FAILED":
            # A shard of a validated run that failed: an operator's resume, or a sibling shard
            # that started after another failed (fewer slots than shards). Either way its rows
            # are worth scoring, but the record keeps FAILED and the reason until
            # finish_run_record succeeds (a sibling had erased a failure, outside probe
            # 2026-11-27: the DAG run failed, the record said RUNNING).
            log.warning("run %s has FAILED (%s): scoring shard %d anyway; the record stays "
                        "FAILED until finish_run_record succeeds", dag_run_id, run["message"], shard)
        if model is None:
            from vee_tasks.registry import load_model_version

            model = load_model_version(model_version, settings)
        if str(model.version) != str(model_version):
            raise RunStateError(f"loaded version {model.version}, pinned {model_version}")
        from threadpoolctl import threadpool_limits

        from vee_tasks.features import build_features

        with engine.begin() as conn:
            _q(conn, "nightly_result_temp", {"resolution_codes": list(RESOLUTION_CODES)})
            for ids in _shard_id_chunks(conn, dag_run_id, shard, max(1, settings.scoring_chunk_rows)):
                features = build_features(conn, ids, settings.timezone)
                with threadpool_limits(limits=PREDICT_THREADS):
                    proba = model.predict_proba(features)
                proba = proba.reindex(features.index)
                decided = decide(proba, model.thresholds, settings.auto_apply_codes,
                                 settings.audit_share, review_only=review_only_rows(features))
                copy_decisions(conn, decided)
            _q(conn, "nightly_result_analyze")
            if before_write is not None:
                before_write(conn)
            params = {
                "dag_run_id": dag_run_id,
                "read_date": read_date,
                "model_name": getattr(model, "name", None) or settings.registered_model_name,
                "model_version": str(model_version),
            }
            # One primary-key probe per decided row: a hash join read all of mdm.vee_exception
            # (every day's exceptions) for each shard, 0.28 s more per 125,000 rows on the
            # bench and growing with the table's history. For this statement only.
            with _join_methods_off(conn, "hashjoin", "mergejoin"):
                _q(conn, "nightly_update_status")
            moved = _q(conn, "nightly_lock_unchanged").scalar()
            if moved:
                log.warning(
                    "run %s shard %d: %d exception(s) of %s were moved meanwhile to another "
                    "system status by another run of the same read date: this run's "
                    "decisions replace that run's", dag_run_id, shard, moved, read_date)
                _q(conn, "nightly_update_moved")
            with pinned_settings(conn, WRITE_SETTINGS):  # the probabilities' jsonb text
                _q(conn, "nightly_upsert_resolution", params)
            counts = dict(_q(conn, "nightly_shard_counts").mappings().one())
            counts["seconds"] = round(time.perf_counter() - started, 3)
            _q(conn, "nightly_shard_result_upsert", {"dag_run_id": dag_run_id, "shard": shard, **counts})
    counts["shard"] = shard
    log.info("run %s shard %d: %s", dag_run_id, shard, counts)
    return counts


# --- finish ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoringRun:
    """A nightly run as recorded in vee.scoring_run."""

    dag_run_id: str
    read_date: dt.date
    status: str
    model_name: str | None
    model_version: str | None
    selected: int
    scored: int
    quarantined: int
    auto_applied: int
    sent_to_review: int
    skipped_analyst: int
    dq_outcome: str | None
    dq_report_path: str | None
    step_seconds: dict
    message: str | None
    dq_warnings: tuple[str, ...] = ()

    @classmethod
    def load(cls, engine: Engine, dag_run_id: str) -> "ScoringRun":
        with engine.connect() as conn:
            row = _run_row(conn, dag_run_id)
        if row is None:
            raise RunStateError(f"no run record {dag_run_id}")
        return cls(
            dag_run_id=row["dag_run_id"],
            read_date=row["read_date"],
            status=row["status"],
            model_name=row["model_name"],
            model_version=row["model_version"],
            selected=row["selected"] or 0,
            scored=row["scored"] or 0,
            quarantined=row["quarantined"] or 0,
            auto_applied=row["auto_applied"] or 0,
            sent_to_review=row["sent_to_review"] or 0,
            skipped_analyst=row["skipped_analyst"] or 0,
            dq_outcome=row["dq_outcome"],
            dq_report_path=row["dq_report_path"],
            step_seconds=dict(row["step_seconds"] or {}),
            message=row["message"],
            dq_warnings=tuple((row["dq_summary"] or {}).get("warnings") or ()),
        )

    def describe(self) -> str:
        """The operator's summary: one line of outcome, one of counts, one of where to look."""
        from vee_tasks.scoring.validation import dq_words

        model = f"{self.model_name} v{self.model_version}" if self.model_version else "no model"
        total = sum(v for k, v in self.step_seconds.items() if not k.startswith("score_shard_"))
        shards = [v for k, v in self.step_seconds.items() if k.startswith("score_shard_")]
        lines = [
            f"nightly run {self.dag_run_id}: read date {self.read_date} {self.status}"
            + (f" ({self.message})" if self.message else ""),
            f"  selected {self.selected} = scored {self.scored} + quarantined {self.quarantined}"
            f" + skipped (analyst resolved meanwhile) {self.skipped_analyst}",
            f"  auto-applied {self.auto_applied}, sent to review {self.sent_to_review}; model {model}",
            f"  data quality {dq_words(self.dq_outcome, self.quarantined)}; "
            f"report {self.dq_report_path or '-'}",
            *(f"  WARNING {warning}" for warning in self.dq_warnings),
            f"  steps {total + sum(shards):.1f}s (slowest shard {max(shards, default=0):.1f}s): "
            + ", ".join(f"{k} {v:.1f}s" for k, v in self.step_seconds.items()),
        ]
        return "\n".join(lines)


def finish_run(engine: Engine, dag_run_id: str, settings: Settings | None = None) -> str:
    """Close the run: totals from the shards, the invariant checked, staging dropped.

    Invariant: selected = scored + quarantined + skipped_analyst (skipped: an analyst
    resolved the exception between extract and write-back). Returns the summary text.
    """
    settings = settings or get_settings()
    with _step(engine, dag_run_id, "finish"):
        with engine.begin() as conn:
            run = _run_row(conn, dag_run_id)
            totals = _q(conn, "nightly_shard_totals", {"dag_run_id": dag_run_id}).mappings().one()
            expected_shards = run_shard_count(conn, dag_run_id, settings)
            if totals["shards"] != expected_shards:
                raise RunStateError(
                    f"{totals['shards']} of {expected_shards} shards recorded results"
                )
            accounted = totals["scored"] + (run["quarantined"] or 0) + totals["skipped_analyst"]
            if accounted != (run["selected"] or 0):
                raise RunStateError(
                    f"selected {run['selected']} != scored {totals['scored']} + quarantined "
                    f"{run['quarantined']} + skipped {totals['skipped_analyst']}"
                )
            _q(conn, "nightly_run_finish", {"dag_run_id": dag_run_id, "summary": None})
            _q(conn, "nightly_extract_cleanup", {"dag_run_id": dag_run_id})
    summary = ScoringRun.load(engine, dag_run_id).describe()
    with engine.connect() as conn:
        late = _q(conn, "nightly_unscored_earlier",
                  {"read_date": run["read_date"], "lookback_days": UNSCORED_LOOKBACK_DAYS}).fetchall()
        # A backfill's own runs fill history in whatever order it goes (--run-backwards):
        # the dates still queued in it are not missed nights.
        unrun = ([] if dag_run_id.startswith("backfill__") else _q(
            conn, "unrun_read_dates",
            {"since": run["read_date"] - dt.timedelta(days=UNSCORED_LOOKBACK_DAYS),
             "before": run["read_date"]}).fetchall())
        no_weather = _q(conn, "nightly_weather_missing", {"read_date": run["read_date"]}).fetchall()
        late_reads = (_q(conn, "nightly_reads_received_late",
                         {"read_date": run["read_date"], "tz": settings.timezone,
                          "sample_size": LATE_READS_SAMPLE}).one()
                      if totals["scored"] else None)
        empty = (_q(conn, "nightly_empty_date_context", {"read_date": run["read_date"]}).one()
                 if not run["selected"] else None)
    notes = [_empty_date_note(run["read_date"], empty) if empty else None,
             _late_exceptions_note(late) if late else None,
             _unrun_dates_note(unrun) if unrun else None,
             _missing_weather_note(run["read_date"], no_weather) if no_weather else None,
             _late_reads_note(run["read_date"], late_reads) if late_reads else None]
    note = "\n".join(n for n in notes if n) or None
    if note:
        summary += "\n" + note
    with engine.begin() as conn:
        _q(conn, "nightly_run_summary", {"dag_run_id": dag_run_id, "summary": summary})
    log.info("%s", summary)
    if note:
        log.warning("%s", note)
    return summary


def reconcile_with_airflow(engine: Engine, dag_run_id: str, airflow_state: str, reason: str,
                           ended_at: dt.datetime | None = None) -> str | None:
    """Make a record still RUNNING agree with its Airflow run, which has ended without
    finish_run_record or a task's failure callback (a task or the run marked failed or
    success by hand, finish skipped; outside probe, 2026-11-27: RUNNING for good). A failed
    run is recorded FAILED with Airflow's reason; a successful one is finished now (totals,
    invariant), or recorded FAILED with why it cannot be. Returns the new status, or None
    when the record needed nothing, or belongs to a newer attempt than the run that ended
    (`ended_at`: the callback came after an operator had cleared the run again)."""
    with engine.connect() as conn:
        run = _run_row(conn, dag_run_id)
    if run is None or run["status"] != "RUNNING":
        return None
    if ended_at is not None and run["started_at"] is not None and run["started_at"] > ended_at:
        return None
    if airflow_state == "success":
        try:
            finish_run(engine, dag_run_id)
            return "SUCCESS"
        except Exception as exc:  # noqa: BLE001 - recorded below
            # finish_run records a permanent error itself (that reason is kept); this records
            # a transient one, which finish_run leaves to a retry that will not come
            log.warning("run %s ended success in Airflow but cannot finish: %s", dag_run_id, exc)
            mark_failed(engine, dag_run_id, f"the Airflow run was marked success without "
                        f"finishing: {short_reason(exc)}")
            return "FAILED"
    mark_failed(engine, dag_run_id, f"the Airflow run ended {airflow_state} before "
                f"finish_run_record ({reason or 'no reason given'}); clear the failed or "
                "missing tasks with their downstream to resume")
    return "FAILED"


# How far back a run looks for exceptions of earlier read dates that no run decided, and
# for earlier read dates no run has started on.
UNSCORED_LOOKBACK_DAYS = 7


def _empty_date_note(read_date, found) -> str:
    """A run that selected nothing: a date the MDMS has no exceptions for (a backfill or test
    outside the warehouse's data reported SUCCESS and 0 selected with no word of why; outside
    probe, 2026-11-28), or one whose exceptions analysts have all resolved."""
    if found.on_date:
        return (f"  read date {read_date}: none of its {found.on_date} exception(s) is still "
                "to decide (OPEN, AUTO_RESOLVED or PENDING_REVIEW): analysts have resolved them")
    nearest = [f"{side} {day}" for side, day in (("before", found.before), ("after", found.after)) if day]
    where = ("; the nearest read dates with exceptions: " + ", ".join(nearest)) if nearest else (
        "; mdm.vee_exception holds none at all")
    return (f"  read date {read_date}: mdm.vee_exception holds no exception of this date{where}. "
            "A date outside the warehouse's data, or the MDMS's batch for it has not arrived")


def _missing_weather_note(read_date, regions) -> str:
    """Weather the features needed that had not arrived: those exceptions were scored with
    their temperature features unknown (filled as neutral), which moves some decisions."""
    total = sum(row.exceptions for row in regions)
    names = ", ".join(f"{row.region} ({row.exceptions})" for row in regions[:10])
    more = f" and {len(regions) - 10} more" if len(regions) > 10 else ""
    return (
        f"  weather for {read_date} is missing for {len(regions)} region(s) holding {total} of "
        f"its exception(s): {names}{more}; they were scored without temperature features. "
        f"Rerun the date once mdm.weather_daily has it (e.g. `airflow dags test "
        f"{NIGHTLY_DAG_ID} {read_date}`)"
    )


# The decided exceptions whose meters' reads are looked at, and the share of those reads
# received after the exception was raised beyond which the summary says so.
LATE_READS_SAMPLE = 500
LATE_READS_WARN_SHARE = 0.5


def _late_reads_note(read_date, found) -> str | None:
    """Most of the day's reads arrived after the exceptions were raised: the point-in-time
    features saw none of them (see nightly_reads_received_late.sql)."""
    if not found.reads or found.received_after_raise <= LATE_READS_WARN_SHARE * found.reads:
        return None
    share = found.received_after_raise / found.reads
    return (
        f"  {share:.0%} of read date {read_date}'s reads on {found.meters} sampled meter(s) "
        "with exceptions arrived after their exception was raised (mdm.interval_read."
        "received_at > raised_at): the features see only reads received by raised_at, as in "
        "training, so these exceptions were scored without the day's usage. If received_at "
        "holds the time of a later bulk load rather than of the head-end's delivery, have the "
        "loader keep the delivery time"
    )


def _late_exceptions_note(late) -> str:
    """Exceptions the MDMS raised after their own date's run: named with the way to score them
    (the run for D scores exactly read date D, so they wait for a rerun of their date)."""
    total = sum(row.exceptions for row in late)
    dates = ", ".join(f"{row.read_date} ({row.exceptions})" for row in late)
    first = late[0].read_date
    return (
        f"  {total} exception(s) of earlier read dates are OPEN and undecided, raised after their "
        f"date's last successful run: {dates}; rerun each date: clear its run (`airflow tasks "
        f"clear {NIGHTLY_DAG_ID} -s {first} -e {first} -y`, or in the UI), or without a "
        f"scheduler `airflow dags test {NIGHTLY_DAG_ID} {first}`"
    )


def _unrun_dates_note(unrun) -> str:
    """Earlier read dates with OPEN exceptions that no run has started on: a night the
    scheduler missed (catchup is off) left them waiting with no word anywhere (outside probe,
    2026-11-29). Named with the backfill that scores them."""
    from vee_tasks.scoring.report import backfill_command

    total = sum(row.exceptions for row in unrun)
    dates = ", ".join(f"{row.read_date} ({row.exceptions})" for row in unrun)
    first, last = unrun[0].read_date, unrun[-1].read_date
    return (
        f"  {len(unrun)} earlier read date(s) hold {total} OPEN exception(s) and no nightly run "
        f"has started on them (a missed night, or a date left out of a backfill): {dates}; "
        f"unless a backfill or a run of theirs is under way (the DAG's grid view), score them: "
        f"`{backfill_command(first, last)}` (an Airflow run that failed before it recorded "
        f"anything is rerun too), or without a scheduler `airflow dags test {NIGHTLY_DAG_ID} "
        f"<date>` for each"
    )


__all__ = [
    "AUTO_APPLY",
    "REVIEW",
    "DECIDABLE_STATUSES",
    "ScoringRun",
    "decide",
    "extract",
    "finish_run",
    "mark_failed",
    "resolve_champion",
    "score_shard",
    "start_run",
    "validate",
]
