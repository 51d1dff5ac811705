"""The weekly retraining, as steps the DAG runs one task each, and `train()` runs in a row.

The run whose logical date is D (as_of) trains on labels resolved before the start of D in
the utility's zone and evaluates on the most recent of them. Steps share a run directory
(settings.data_dir/runs/<run id>/) and pass only its path:

  prepare_run           run dir + context.json
  extract_labels        labels.parquet  (fails clearly below settings.min_training_labels)
  build_training_frame  training.parquet: features (vee_tasks.features) + label + split
  validate_training_set GX suite expectations/training_set.json; failure stops the run
  train_candidate       candidates/<kind>/: fitted, calibrated model + holdout probabilities
  evaluate_candidates   baseline, candidates and the current champion on the same holdout
  register_and_promote  MLflow run, model version, alias champion or challenger, tags
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from vee_tasks.alerting import scrub
from vee_tasks.config import RESOLUTION_CODES, RULE_CODES, WEEKLY_DAG_ID, Settings, get_settings
from vee_tasks.dates import day_start

log = logging.getLogger(__name__)

SUITE_NAME = "training_set"
LABEL = "resolution_code"
KEY_COLUMNS = ["exception_id", "meter_id", "read_date", "raised_at", "resolved_at", LABEL]


def plausible_value_bounds() -> dict:
    """The nightly's bounds of a plausible observed/expected value and rule window, for the
    labels' query (the model learns from no row the nightly run would quarantine)."""
    from vee_tasks.scoring.validation import MAX_ABS_VALUE, MAX_WINDOW_DAYS, MIN_ABS_NONZERO

    return {"max_abs_value": MAX_ABS_VALUE, "min_abs_nonzero": MIN_ABS_NONZERO,
            "max_window_days": MAX_WINDOW_DAYS}


def _label_column_types() -> dict:
    """Arrow types of sql/queries/training_labels.sql's columns (labels move with COPY)."""
    import pyarrow as pa

    return {
        "exception_id": pa.int64(), "meter_id": pa.string(), "label_rule_code": pa.string(),
        "read_date": pa.date32(), "raised_at": pa.timestamp("us", tz="UTC"),
        "resolved_at": pa.timestamp("us", tz="UTC"), LABEL: pa.string(),
    }
FEATURE_CHUNK = 50_000


class TrainingError(RuntimeError):
    """The run cannot produce a model; the message says why and what to do."""


class InsufficientLabelsError(TrainingError):
    pass


class MissingContractTablesError(TrainingError):
    """The warehouse lacks some of the contract's mdm tables: no retry can help."""


class InvalidLabelsError(InsufficientLabelsError):
    """More labels than VEE_MAX_INVALID_LABEL_SHARE carry a resolution code outside the
    contract's: a systematic problem (the MDMS changed its codes), not a few bad rows."""


# --- run directory ---------------------------------------------------------------------


def safe_run_id(run_id: str) -> str:
    """A run id as one directory name: never "." or ".." (Airflow allows those run ids; the
    run directory, which each attempt deletes, would then be runs/ or the data directory)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id).strip("_.") or "run"


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    tmp.replace(path)


def context(run_dir: str | Path) -> dict:
    return _read_json(Path(run_dir) / "context.json")


def prepare_run(as_of: dt.date, run_id: str | None = None, settings: Settings | None = None) -> str:
    """Create (or reuse, on a rerun) the run directory; returns its path."""
    settings = settings or get_settings()
    # One run id per date by default: `vee train` again for a date reruns that run (and finds
    # the version it registered) instead of registering another; pass a run id to train anew.
    run_id = run_id or f"cli__{as_of.isoformat()}"
    run_dir = settings.data_dir / "runs" / safe_run_id(run_id)
    # An earlier attempt's files describe its own labels, frame and models: evaluate picked up
    # its candidates when this attempt's training of that kind failed, and the run record
    # showed its version and decision (reviews, 2026-11-27). Each attempt starts empty; the
    # version a run registered is found in the registry, by run id and training digest.
    runs = (settings.data_dir / "runs").resolve()
    if run_dir.resolve().parent != runs:  # never anything but one run's own directory
        raise ValueError(f"run id {run_id!r} does not name a directory under {runs}")
    shutil.rmtree(run_dir, ignore_errors=True)
    remove_old_run_dirs(runs, settings.training_run_retention_days)
    run_dir.mkdir(parents=True, exist_ok=True)
    cutoff = day_start(as_of, settings.timezone)
    _write_json(
        run_dir / "context.json",
        {
            "run_id": run_id,
            "as_of": as_of.isoformat(),
            "cutoff": cutoff.isoformat(),
            "since": (cutoff - dt.timedelta(days=settings.training_lookback_days)).isoformat(),
            "timezone": settings.timezone,
        },
    )
    return str(run_dir)


def remove_old_run_dirs(runs: Path, retention_days: int, now: float | None = None) -> list[Path]:
    """Training run directories untouched for `retention_days`, deleted: each holds its
    labels, training frame and candidates (86 MB at 297,000 labels; outside probe,
    2026-11-27: nothing ever deleted them). The registry keeps what a version needs."""
    cutoff = (time.time() if now is None else now) - retention_days * 86400
    removed = []
    for path in sorted(runs.glob("*")) if runs.is_dir() else []:
        newest = max((p.stat().st_mtime for p in path.rglob("*")), default=path.stat().st_mtime)
        if path.is_dir() and max(newest, path.stat().st_mtime) < cutoff:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    if removed:
        log.info("deleted %d training run director%s older than %d days under %s", len(removed),
                 "y" if len(removed) == 1 else "ies", retention_days, runs)
    return removed


def _timed(run_dir: Path, step: str, seconds: float) -> None:
    path = run_dir / "steps" / f"{step}.json"
    _write_json(path, {"step": step, "seconds": round(seconds, 2)})


def step_seconds(run_dir: str | Path) -> dict[str, float]:
    out = {}
    for p in sorted((Path(run_dir) / "steps").glob("*.json")):
        data = _read_json(p)
        out[data["step"]] = data["seconds"]
    return out


# --- steps -----------------------------------------------------------------------------


def extract_labels(engine: Engine, run_dir: str | Path, settings: Settings | None = None) -> dict:
    from vee_tasks import registry
    from vee_tasks.warehouse import copy_query_frame, warehouse_identity

    settings = settings or get_settings()
    run_dir = Path(run_dir)
    t0 = time.monotonic()
    ctx = context(run_dir)
    try:
        registry.check_reachable(settings)  # before any training it could not register
        registry.check_champion_readable(settings)  # ... or compare
    except registry.RegistryError as exc:
        _record(engine, run_dir, status="FAILED", message=str(exc), settings=settings)
        raise
    from vee_tasks.migrations import missing_mdm_tables_message

    with engine.connect() as conn:
        missing = missing_mdm_tables_message(conn)
    if missing:  # named, not a driver's error from the labels' query (outside probe 2026-11-28)
        _record(engine, run_dir, status="FAILED", message=missing, settings=settings)
        raise MissingContractTablesError(missing)
    with engine.connect() as conn:
        labels = copy_query_frame(
            conn,
            "queries/training_labels.sql",
            {"cutoff": dt.datetime.fromisoformat(ctx["cutoff"]),
             "since": dt.datetime.fromisoformat(ctx["since"]), "tz": settings.timezone,
             **plausible_value_bounds()},
            _label_column_types(),
        )
        labels["exception_id"] = labels["exception_id"].astype("int64")  # a primary key
        # the warehouse these labels come from: the version records it, and a champion
        # trained on another one is not this warehouse's to keep (see promotion_decision)
        ctx["warehouse_id"] = warehouse_identity(conn)
    _write_json(run_dir / "context.json", ctx)
    labels, unknown_rules = _leave_out_unknown_rule_codes(labels)
    if unknown_rules and unknown_rules["rows"] > settings.max_invalid_label_share * (
            len(labels) + unknown_rules["rows"]):
        from vee_tasks.alerting import warn_data_quality

        # more than a stray few: a code the MDMS renamed leaves training for good, unseen
        warn_data_quality(WEEKLY_DAG_ID, ctx["run_id"], ctx["as_of"], unknown_rules["message"],
                          None, settings)
    labels, set_aside = _set_aside_invalid_labels(engine, run_dir, labels, settings)
    counts = labels[LABEL].value_counts().to_dict() if len(labels) else {}
    info = {"n_labels": int(len(labels)), "class_counts": {str(k): int(v) for k, v in counts.items()}}
    if set_aside:
        info["set_aside"] = set_aside
    if unknown_rules:
        info["unknown_rule_codes"] = unknown_rules
    stale = _stale_label_feed_warning(labels, dt.datetime.fromisoformat(ctx["cutoff"]))
    if stale:
        from vee_tasks.alerting import warn_data_quality

        log.warning("%s", stale)
        info["warning"] = stale
        # a green weekly run says nothing in the UI: the channels a failure uses (outside
        # probe 2026-11-29: three weeks of one digest, a log line each)
        warn_data_quality(WEEKLY_DAG_ID, ctx["run_id"], ctx["as_of"], stale, None, settings)
    _write_json(run_dir / "labels.json", info)
    if len(labels) < settings.min_training_labels:
        message = (
            f"only {len(labels)} analyst-resolved exception(s) with a resolution from "
            f"{ctx['since']} to before {ctx['cutoff']} (the last {settings.training_lookback_days} "
            f"days, setting VEE_TRAINING_LOOKBACK_DAYS; need at least "
            f"{settings.min_training_labels}, setting VEE_MIN_TRAINING_LABELS): wait for more "
            "analyst resolutions, lower the minimum or look back further"
            + (f"; {set_aside['rows']} more were left out for resolution codes outside the "
               "contract" if set_aside else "")
        )
        _record(engine, run_dir, status="FAILED", message=message, settings=settings)
        raise InsufficientLabelsError(message)
    labels.to_parquet(run_dir / "labels.parquet", index=False)
    _timed(run_dir, "extract_labels", time.monotonic() - t0)
    log.info("labels: %d %s", len(labels), info["class_counts"])
    return info


# A week without one analyst resolution is a weekly run's whole interval: most likely the
# MDMS's label feed has stopped, not the analysts.
STALE_LABELS_AFTER = dt.timedelta(days=7)


def _stale_label_feed_warning(labels: pd.DataFrame, cutoff: dt.datetime) -> str | None:
    """A warning when the newest label was resolved more than STALE_LABELS_AFTER before the
    cutoff: the run then trains on last week's labels again and registers a duplicate version,
    with nothing else to tell a stopped feed (outside probe, 2026-11-28)."""
    if labels.empty:
        return None
    newest = pd.Timestamp(labels["resolved_at"].max())
    cutoff_ts = pd.Timestamp(cutoff)  # aware, as both are (day_start, timestamptz)
    if cutoff_ts - newest <= STALE_LABELS_AFTER:
        return None
    return (f"the newest analyst resolution is from {newest.isoformat()}, "
            f"{(cutoff_ts - newest).days} days before this run's cutoff {cutoff_ts.isoformat()}: "
            "no label has arrived for a week, so this run trains on the same labels as the last "
            "one. Check the MDMS's feed of mdm.analyst_resolution")


def _leave_out_unknown_rule_codes(labels: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Labels of a check outside the contract's rule codes (a check the MDMS added) are left
    out, with a warning: the nightly run quarantines such exceptions (rule_code_known) and
    never scores one, and the training set's suite stopped every weekly run once they were
    1 % of a year's labels (review, 2026-11-29)."""
    unknown = ~labels["label_rule_code"].isin(RULE_CODES)
    if not unknown.any():
        return labels, {}
    values = {str(k): int(v) for k, v in
              labels.loc[unknown, "label_rule_code"].astype(object).fillna("NULL").value_counts().items()}
    message = (f"{int(unknown.sum())} of {len(labels)} analyst resolution(s) are of rule codes "
               f"outside the contract's {list(RULE_CODES)} ("
               + ", ".join(f"{value!r} x{n}" for value, n in values.items())
               + "): left out of training, as the nightly run quarantines such exceptions")
    log.warning("%s", message)
    return labels.loc[~unknown].reset_index(drop=True), {
        "rows": int(unknown.sum()), "values": values, "message": message}


def _set_aside_invalid_labels(
    engine: Engine, run_dir: Path, labels: pd.DataFrame, settings: Settings
) -> tuple[pd.DataFrame, dict]:
    """Labels whose resolution code is not one of the contract's ('accept', 'WONTFIX', NULL)
    teach nothing: left out with a warning, up to settings.max_invalid_label_share of them;
    more stop the run (InvalidLabelsError). Outside probe 2026-11-27: 5 such rows of 8,301
    failed the training set's suite and stopped every weekly retraining."""
    invalid = ~labels[LABEL].isin(RESOLUTION_CODES)
    if not invalid.any():
        return labels, {}
    bad = labels.loc[invalid]
    values = {str(k): int(v) for k, v in bad[LABEL].astype(object).fillna("NULL").value_counts().items()}
    examples = [int(x) for x in bad["exception_id"].head(5)]
    share = len(bad) / len(labels)
    described = (
        f"{len(bad)} of {len(labels)} analyst resolution(s) ({share:.2%}) carry a "
        f"resolution_code outside the contract's {list(RESOLUTION_CODES)}: "
        + ", ".join(f"{value!r} x{n}" for value, n in values.items())
        + f" (e.g. exception_id {examples})"
    )
    if share > settings.max_invalid_label_share:
        message = (
            f"{described}: more than VEE_MAX_INVALID_LABEL_SHARE "
            f"({settings.max_invalid_label_share:.2%}); nothing trained. Have the MDMS write "
            "the contract's codes, or raise the setting to train on the rest"
        )
        _write_json(run_dir / "labels.json", {
            "n_labels": int(len(labels)), "set_aside": {"rows": int(len(bad)), "values": values},
        })
        _record(engine, run_dir, status="DQ_FAILED", message=message, settings=settings)
        raise InvalidLabelsError(message)
    log.warning("%s: left out of training", described)
    return labels.loc[~invalid].reset_index(drop=True), {
        "rows": int(len(bad)), "values": values, "examples": examples,
    }


# Rows a part of the by-date split needs, whatever the share: the holdout and calibration
# slices hold the last VEE_HOLDOUT_DAYS and VEE_CALIBRATION_DAYS, so on a warehouse with a
# long history they are a small share of the labels by design. As shares alone (10 % and 5 %)
# every warehouse with more than ~210 days of labels fell back to the split by position, whose
# holdout and calibration then covered the last ~4 months and whose model never learnt from
# them (outside probe, 2026-11-28: 365 days of labels trained on nothing after June). The
# shares still guard a young installation, whose last weeks may hold a few dozen labels.
SPLIT_HOLDOUT_ENOUGH_ROWS = 1_000
SPLIT_CALIBRATION_ENOUGH_ROWS = 500


def assign_split(frame: pd.DataFrame, as_of: dt.date, settings: Settings) -> tuple[pd.Series, str]:
    """train / calibration / holdout by read date; by time order when the dates give too
    few rows in a part (a young installation)."""
    holdout_from = as_of - dt.timedelta(days=settings.holdout_days)
    calib_from = holdout_from - dt.timedelta(days=settings.calibration_days)
    read_date = pd.to_datetime(frame["read_date"]).dt.date
    split = pd.Series("train", index=frame.index)
    split[read_date >= calib_from] = "calibration"
    split[read_date >= holdout_from] = "holdout"
    n = len(frame)
    counts = split.value_counts()
    if (
        counts.get("holdout", 0) >= max(50, min(int(0.1 * n), SPLIT_HOLDOUT_ENOUGH_ROWS))
        and counts.get("calibration", 0) >= max(30, min(int(0.05 * n), SPLIT_CALIBRATION_ENOUGH_ROWS))
        and counts.get("train", 0) >= max(100, int(0.3 * n))
    ):
        return split, "by_date"
    # Time-ordered fallback: frame is sorted by raised_at.
    position = np.arange(n)
    split = pd.Series("train", index=frame.index)
    split[position >= int(n * 0.65)] = "calibration"
    split[position >= int(n * 0.8)] = "holdout"
    return split, "by_order"


def sample_train_slice(labels: pd.DataFrame, max_rows: int) -> tuple[pd.DataFrame, int]:
    """At most `max_rows` labels of the train slice, and the number it had.

    A fixed sample: the labels of smallest hash of the exception id, not a position or a
    random draw. A rerun trains on the same rows, a smaller cap's rows stay in under a larger
    one, and from one week to the next only labels near the cut-off move in or out as others
    enter and age out. Uniform over the lookback, so every season keeps its share. The
    calibration and holdout slices are kept whole: they set the thresholds and decide
    promotion."""
    train = (labels["split"] == "train").to_numpy()
    available = int(train.sum())
    if available <= max_rows:
        return labels, available
    positions = np.flatnonzero(train)
    from vee_tasks.hashing import splitmix64

    hashes = splitmix64(labels["exception_id"].to_numpy()[positions], TRAINING_SAMPLE_HASH_STREAM)
    order = np.argsort(hashes, kind="stable")
    keep = ~train
    keep[positions[order[:max_rows]]] = True
    return labels[keep].reset_index(drop=True), available


# another draw per id than the audit's (scoring.steps.AUDIT_HASH_STREAM): sampling by the
# same hash would keep every audited exception and a third of the rest
TRAINING_SAMPLE_HASH_STREAM = 1


def build_training_frame(
    engine: Engine, run_dir: str | Path, settings: Settings | None = None
) -> dict:
    from vee_tasks.features import build_features
    from vee_tasks.warehouse import warn_missing_supporting_indexes

    settings = settings or get_settings()
    run_dir = Path(run_dir)
    t0 = time.monotonic()
    as_of = dt.date.fromisoformat(context(run_dir)["as_of"])
    labels = pd.read_parquet(run_dir / "labels.parquet")
    # Split on every label, then sample the train slice down to VEE_MAX_TRAINING_ROWS before
    # the features are built: their time and the models' memory grow with the rows.
    labels = labels.sort_values(["raised_at", "exception_id"]).reset_index(drop=True)
    labels["split"], mode = assign_split(labels, as_of, settings)
    labels, train_available = sample_train_slice(labels, settings.max_training_rows)
    if train_available > settings.max_training_rows:
        log.info("training on %d of the train slice's %d labels, a fixed sample by exception id "
                 "(VEE_MAX_TRAINING_ROWS); calibration and holdout slices whole",
                 settings.max_training_rows, train_available)
    parts = []
    # Chunks by read date, then meter: the exceptions that share a usage context fall in one
    # chunk and their context is computed once (see nightly_shard_ids_store.sql), and a
    # chunk spans few days (the query's calendar covers them all, joined to every context).
    by_context = labels.sort_values(
        ["read_date", "meter_id", "raised_at", "exception_id"])["exception_id"]
    with engine.connect() as conn:
        warn_missing_supporting_indexes(conn, f"training as of {as_of}")
        for start in range(0, len(by_context), FEATURE_CHUNK):
            ids = by_context.iloc[start : start + FEATURE_CHUNK].tolist()
            parts.append(build_features(conn, ids, timezone=settings.timezone))
            conn.commit()
    features = pd.concat(parts)
    frame = labels[[*KEY_COLUMNS, "split"]].merge(features, left_on="exception_id", right_index=True)
    frame = frame.sort_values(["raised_at", "exception_id"]).reset_index(drop=True)
    frame["split"] = frame.pop("split")  # the last column, as the frame has always had it
    frame.to_parquet(run_dir / "training.parquet", index=False)
    counts = frame["split"].value_counts().to_dict()
    info = {
        "rows": int(len(frame)),
        "split_mode": mode,
        "n_train": int(counts.get("train", 0)),
        "n_calibration": int(counts.get("calibration", 0)),
        "n_holdout": int(counts.get("holdout", 0)),
        "n_train_available": train_available,
        "digest": frame_digest(frame),
        "legacy_digest": frame_digest(frame, legacy=True),
    }
    _write_json(run_dir / "frame.json", info)
    _timed(run_dir, "build_features", time.monotonic() - t0)
    log.info("training frame: %s", info)
    return info


# Significant bits of the float features a training set's digest sees: the usage rollup
# (vee.meter_daily) gives the same values as the raw reads up to rounding in the last bits,
# and a day rolled up between two runs of one training date made the second register a new
# version (outside probe, 2026-11-27). Rounded to 20 bits (~6 decimal digits), such noise is
# left out and a corrected read kept in. A binary grid, not a decimal one: meters report
# kWh with a fixed number of decimals, so means of their reads land exactly on a decimal
# rounding boundary (9.597625 at six digits; 35 values of a 2,000-label training set, outside
# probe 2026-11-27), where last-bit noise decided the digit; they almost never land on a
# binary one. Since 2026-11-28 the features add a history's days in day order and are exact
# with or without the rollup (tests/test_usage_rollup.py); the rounding stays, so that digests
# registered before still match and a value that differs only in its last bit (a warehouse's
# own re-sum, say) is no new training set.
DIGEST_SIGNIFICANT_BITS = 20
# ... and below this size a float is 0: a sum that cancels (a day of import and export, a
# share of ~0) is 1e-17 one way and 0 the other.
DIGEST_ZERO_BELOW = 1e-9


def _significant_bits(values: np.ndarray, bits: int) -> np.ndarray:
    """`values` rounded to `bits` significant bits (0, NaN and infinities unchanged)."""
    values = np.asarray(values, dtype="float64")
    finite = np.isfinite(values)
    mantissa, exponent = np.frexp(np.where(finite, values, 0.0))  # |mantissa| in [0.5, 1)
    with np.errstate(over="ignore"):  # the largest floats round up to infinity
        rounded = np.ldexp(np.round(mantissa * 2.0**bits), exponent - bits)
    return np.where(finite, rounded, values)


# The digest before 2026-11-27 (six decimal significant digits): a version registered then
# carries it, and a rerun of its training run must still find it (not register another).
LEGACY_DIGEST_SIGNIFICANT_DIGITS = 6


def _significant_digits(values: np.ndarray, digits: int) -> np.ndarray:
    """`values` rounded to `digits` significant decimal digits (the legacy digest's rule)."""
    values = np.asarray(values, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        magnitude = np.floor(np.log10(np.abs(values)))
        scale = 10.0 ** (digits - 1 - np.where(np.isfinite(magnitude), magnitude, 0.0))
        rounded = np.round(values * scale) / scale
    return np.where(np.isfinite(rounded), rounded, values)


def frame_digest(frame: pd.DataFrame, legacy: bool = False) -> str:
    """A content hash of the training frame: the same for reruns on the same data (floats
    compared to DIGEST_SIGNIFICANT_BITS), another for other labels or reads. `legacy`: the
    digest versions registered before 2026-11-27 carry (six decimal digits)."""
    import hashlib

    frame = frame.drop(columns=["split"], errors="ignore").copy()
    for column in frame.columns[[pd.api.types.is_float_dtype(t) for t in frame.dtypes]]:
        values = frame[column].to_numpy(dtype="float64")
        values = np.where(np.abs(values) < DIGEST_ZERO_BELOW, 0.0, values)
        frame[column] = (_significant_digits(values, LEGACY_DIGEST_SIGNIFICANT_DIGITS) if legacy
                         else _significant_bits(values, DIGEST_SIGNIFICANT_BITS))
    hashed = pd.util.hash_pandas_object(frame, index=False)
    return hashlib.sha256(hashed.to_numpy().tobytes()).hexdigest()[:20]


def validate_training_set(
    run_dir: str | Path, settings: Settings | None = None, engine: Engine | None = None,
    suite_spec: dict | None = None,
) -> dict:
    """Run the GX suite; raises DataQualityError (nothing is trained or registered)."""
    from vee_tasks.quality import DataQualityError, run_suite

    settings = settings or get_settings()
    run_dir = Path(run_dir)
    t0 = time.monotonic()
    ctx = context(run_dir)
    frame = pd.read_parquet(run_dir / "training.parquet")
    report_dir = settings.reports_dir / "training" / ctx["as_of"] / safe_run_id(ctx["run_id"])
    spec = suite_spec or training_suite_spec(settings)
    result = run_suite(frame, SUITE_NAME, report_dir, suite_spec=spec)
    info = {
        "success": result.success,
        "evaluated": result.evaluated,
        "failed": result.failed,
        "report": str(result.docs_index or report_dir),
    }
    _write_json(run_dir / "quality.json", info)
    _write_json(
        report_dir / "run.json",
        {"run_id": ctx["run_id"], "date": ctx["as_of"], "kind": "training",
         "outcome": "passed" if result.success else "failed"},
    )
    _timed(run_dir, "validate", time.monotonic() - t0)
    if not result.success:
        message = result.describe()
        dominant = _dominant_classes(frame, settings.max_class_share)
        if dominant:
            message += "\n  " + dominant
        _record(engine, run_dir, status="DQ_FAILED", message=message, settings=settings)
        raise DataQualityError(message, result)
    return info


def training_suite_spec(settings: Settings) -> dict:
    """expectations/training_set.json with the class-share gate at settings.max_class_share
    (VEE_MAX_CLASS_SHARE): each code's "not this code" expectation holds for at least
    1 - max_class_share of the labels; and the row-count floor at VEE_MIN_TRAINING_LABELS
    (a fixed 50 there stopped a run the label step had let through on the operator's
    lower setting, outside probe 2026-11-27)."""
    from vee_tasks.quality import load_suite_spec

    spec = load_suite_spec(SUITE_NAME)
    for expectation in spec["expectations"]:
        kwargs = expectation.get("kwargs", {})
        if expectation["type"] == "expect_column_values_to_not_be_in_set" and kwargs.get("column") == LABEL:
            kwargs["mostly"] = round(1.0 - settings.max_class_share, 6)
        if expectation["type"] == "expect_table_row_count_to_be_between":
            kwargs["min_value"] = settings.min_training_labels
    return spec


def _dominant_classes(frame: pd.DataFrame, max_share: float) -> str | None:
    """The gate's failure in an operator's words: which code holds too large a share."""
    shares = frame[LABEL].value_counts(normalize=True)
    over = shares[shares > max_share]
    if over.empty:
        return None
    return "; ".join(
        f"{code} is {share:.1%} of the {len(frame)} labels, above VEE_MAX_CLASS_SHARE {max_share:.0%}"
        for code, share in over.items()
    )


def _split_xy(frame: pd.DataFrame, part: str):
    from vee_tasks.training.models import label_index

    rows = frame[frame["split"] == part]
    return rows, label_index(rows[LABEL])


def train_candidate(run_dir: str | Path, kind: str, settings: Settings | None = None) -> dict:
    """Fit, calibrate and choose thresholds on the calibration slice, score the holdout;
    files under candidates/."""
    from vee_tasks.training import models
    from vee_tasks.training.metrics import (
        choose_thresholds,
        evaluate,
        withdraw_missed_thresholds,
    )

    settings = settings or get_settings()
    run_dir = Path(run_dir)
    t0 = time.monotonic()
    frame = pd.read_parquet(run_dir / "training.parquet")
    train, y_train = _split_xy(frame, "train")
    calib, y_calib = _split_xy(frame, "calibration")
    hold, y_hold = _split_xy(frame, "holdout")
    if kind == "sklearn":
        predictor = models.fit_sklearn(train, y_train, max_iter=settings.hgb_max_iter)
    elif kind == "keras":
        predictor = models.fit_keras(train, y_train, epochs=settings.keras_epochs)
    elif kind == models.BASELINE:
        predictor = models.fit_baseline(train, y_train)
    else:
        raise ValueError(f"unknown candidate {kind!r}")
    if kind != models.BASELINE:
        models.calibrate(predictor, calib, y_calib)
    # The auto-apply thresholds come from the calibration slice, so that the holdout, which
    # decides promotion, also measures them out of sample: chosen and reported on the same
    # holdout rows, their precision was the target by construction (ML review, 2026-11-27).
    thresholds = choose_thresholds(
        y_calib, predictor.predict_proba(calib).to_numpy(), settings.target_precision,
        settings.threshold_min_support,
    )
    proba = predictor.predict_proba(hold)
    # A threshold the holdout shows missing the target (95 % confidence) is withdrawn: a
    # calibration slice can be lucky, and a miss auto-applies wrong resolutions every night.
    thresholds, withdrawn = withdraw_missed_thresholds(
        y_hold, proba.to_numpy(), thresholds, settings.target_precision)
    for note in withdrawn:
        log.warning("%s: auto-apply withdrawn for %s", kind, note)
    if kind != models.BASELINE and thresholds and all(t > 1.0 for t in thresholds.values()):
        # said, not only shown as "never" per code: an operator reads it as the model's
        # share of automation, 0 (outside probe, 2026-11-28: analysts 92-95 % consistent)
        log.warning("%s: no resolution code keeps an auto-apply threshold (none reaches %.0f%% "
                    "precision, VEE_TARGET_PRECISION, on the calibration slice, or the holdout "
                    "withdrew it): as champion it would auto-apply nothing and send every "
                    "exception to review", kind, 100 * settings.target_precision)
    metrics, _ = evaluate(
        y_hold, proba.to_numpy(), thresholds=thresholds, target=settings.target_precision,
        min_support=settings.threshold_min_support,
    )
    predictor.thresholds = thresholds
    out = run_dir / "candidates" / kind
    if out.exists():
        import shutil

        shutil.rmtree(out)  # a rerun replaces the candidate
    predictor.save(out / "model")
    proba.assign(exception_id=hold["exception_id"].to_numpy()).to_parquet(
        out / "holdout_proba.parquet", index=False
    )
    seconds = time.monotonic() - t0
    result = {"kind": kind, "metrics": metrics, "thresholds": thresholds,
              "thresholds_withdrawn": withdrawn,
              "temperature": predictor.temperature,
              "class_bias": predictor.meta.get("class_bias"),
              "params": predictor.meta.get("params", {}),
              "seconds": round(seconds, 2)}
    _write_json(out / "result.json", result)
    _timed(run_dir, f"train_{kind}", seconds)
    log.info("%s: macro-F1 %.4f ECE %.4f", kind, metrics["macro_f1"], metrics["ece"])
    return result


def _champion_on_holdout(hold: pd.DataFrame, y_hold: np.ndarray, settings: Settings,
                         warehouse_id: str | None = None) -> dict:
    from vee_tasks import registry
    from vee_tasks.training.metrics import evaluate

    try:
        version = registry.resolve_champion_version(settings)
    except registry.NoChampionError:
        newest = registry.newest_training(settings, warehouse_id)
        return {"present": False, **({"newest": newest} if newest else {})}
    try:
        loaded = registry.load_model_version(version, settings)
    except registry.IncompatibleModelError as exc:
        # corrupt, or for another feature set or classes: a new model may replace it. Any
        # other registry error (its store down) fails the run: promoting past a champion
        # that could not be read would be a decision without a comparison.
        return {"present": True, "version": version, "usable": False, "error": str(exc)}
    proba = loaded.predict_proba(hold).to_numpy()
    metrics, _ = evaluate(y_hold, proba, thresholds=loaded.thresholds)
    # the date it was trained as of, the warehouse it was trained on and those that adopted
    # it (a version registered before a tag existed has none)
    tags = dict(registry.version_info(version, settings).tags or {})
    return {"present": True, "version": version, "usable": True, "kind": loaded.kind,
            "metrics": metrics, "as_of": tags.get("vee.as_of"),
            "foreign_to": registry.foreign_to(tags, warehouse_id),
            "predictions": proba.argmax(axis=1).tolist()}


# The fewest holdout rows a per-class recall drop must cost to block a promotion: below,
# it is one row that went the other way.
MIN_RECALL_DROP_ROWS = 2


def holdout_blind_spots(frame: pd.DataFrame, min_support: int) -> list[str]:
    """Resolution codes the training set knows well (at least `min_support` labels) that the
    holdout does not hold at all: a comparison on that holdout cannot see those classes."""
    counts = frame.groupby(["split", LABEL]).size()
    train = counts.get("train", pd.Series(dtype="int64"))
    hold = counts.get("holdout", pd.Series(dtype="int64"))
    return [code for code in RESOLUTION_CODES
            if int(train.get(code, 0)) >= min_support and int(hold.get(code, 0)) == 0]


def promotion_decision(
    challenger: dict, champion: dict, settings: Settings, baseline: dict | None = None,
    blind_spots: list[str] | None = None, as_of: str | None = None, gain_se: float = 0.0,
) -> tuple[str, str]:
    """('champion' | 'challenger', reason). See module docstring of the DAG for the policy.

    A model must always beat the per-rule majority `baseline` on the holdout: neither a few
    dozen labels (VEE_MIN_TRAINING_LABELS lowered) nor a holdout of one class (outside probe,
    2026-11-27: 0.765 against the baseline's 0.935 was promoted) may make a model that knows
    less than a lookup table the one that decides. A champion is not replaced on a holdout
    with `blind_spots` (classes the training set knows and the holdout lacks): the comparison
    cannot see whether the challenger lost them. Nor by a run `as_of` an earlier date than the
    champion's (a backfill): the champion was fitted and calibrated on read dates of this
    holdout, so it is compared on its own training data (ML review, 2026-11-27: refused a
    challenger by -0.14 that way), and an older view of the labels should not replace a
    newer one anyway."""
    new_f1 = challenger["metrics"]["macro_f1"]
    if baseline is not None and new_f1 <= baseline["macro_f1"]:
        from vee_tasks.registry import BELOW_BASELINE

        return "challenger", (
            f"macro-F1 {new_f1:.4f} {BELOW_BASELINE} {baseline['macro_f1']:.4f}"
            + ("" if champion.get("present") and champion.get("usable")
               else ": no champion until a model does")
        )
    if not champion.get("present") or not champion.get("usable"):
        newest = champion.get("newest")
        if not champion.get("present") and newest and as_of and str(newest["as_of"]) > str(as_of):
            return "challenger", (
                f"no champion, but v{newest['version']} was trained as of {newest['as_of']}, "
                f"after this run's {as_of}: a run as of an earlier date does not take the "
                "champion's place; make a version champion with `vee model champion N`, or "
                "run the weekly DAG as of a recent date"
            )
        if not champion.get("present") and newest:
            return "champion", (
                f"no champion: this run, as of {as_of}, is the registry's latest training "
                f"(v{newest['version']}, as of {newest['as_of']}, before it)"
            )
        if not champion.get("present"):
            return "champion", "first model: no champion yet"
        return "champion", f"current champion v{champion['version']} unusable: {champion['error']}"
    if champion.get("foreign_to"):
        # the demo's model in the default local registry, or another site's: it was never
        # this warehouse's, whatever its score here (outside probe, 2026-11-27: it blocked
        # a model trained here, as "trained as of a later date")
        return "champion", (
            f"champion v{champion['version']} was trained on another warehouse "
            f"({champion['foreign_to']}): the first model of this one"
        )
    if as_of and champion.get("as_of") and str(champion["as_of"]) > str(as_of):
        return "challenger", (
            f"champion v{champion['version']} was trained as of {champion['as_of']}, after this "
            f"run's {as_of}: it learned from this holdout's read dates, so no fair comparison; "
            "a run as of an earlier date does not replace it"
        )
    champion_below_baseline = (baseline is not None
                               and champion["metrics"]["macro_f1"] <= baseline["macro_f1"])
    # a champion the per-rule lookup table beats on the classes this holdout holds is not
    # kept for the classes it lacks (review, 2026-11-29: a code gone quiet froze it)
    if blind_spots and not champion_below_baseline:
        return "challenger", (
            f"the holdout has no {', '.join(blind_spots)} labels, which the training set has: "
            f"champion v{champion['version']} stays until a holdout can compare them"
        )
    new, old = challenger["metrics"], champion["metrics"]
    gain = new["macro_f1"] - old["macro_f1"]
    if gain < settings.promotion_margin:
        return "challenger", (
            f"macro-F1 {new['macro_f1']:.4f} vs champion v{champion['version']} "
            f"{old['macro_f1']:.4f}: gain {gain:+.4f} below margin {settings.promotion_margin}"
        )
    noise = settings.promotion_se_multiple * gain_se
    if gain < noise:
        return "challenger", (
            f"macro-F1 {new['macro_f1']:.4f} vs champion v{champion['version']} "
            f"{old['macro_f1']:.4f}: gain {gain:+.4f} within the holdout's noise "
            f"({settings.promotion_se_multiple:g} x standard error {gain_se:.4f}, paired "
            "bootstrap; VEE_PROMOTION_SE_MULTIPLE)"
        )
    if baseline is not None and old["macro_f1"] <= baseline["macro_f1"] < new["macro_f1"]:
        # a champion that knows less than the per-rule lookup table does not get to keep its
        # place on a per-class recall it only has by chance (outside probe, 2026-11-27)
        return "champion", (
            f"macro-F1 {new['macro_f1']:.4f} beats champion v{champion['version']} "
            f"{old['macro_f1']:.4f}, which does not beat the per-rule baseline "
            f"{baseline['macro_f1']:.4f}"
        )
    drops = []
    for code in RESOLUTION_CODES:
        support = old.get(f"support_{code}", 0)
        if support <= 0:
            continue
        drop = old[f"recall_{code}"] - new[f"recall_{code}"]
        # a drop counts when it is beyond the setting and more than a one-row swing
        if drop > settings.max_recall_drop and drop * support >= MIN_RECALL_DROP_ROWS:
            drops.append(f"{code} recall -{drop:.3f}")
    if drops:
        return "challenger", (
            f"macro-F1 gain {gain:+.4f} but recall drops beyond {settings.max_recall_drop}: "
            + ", ".join(drops)
        )
    return "champion", (
        f"macro-F1 {new['macro_f1']:.4f} beats champion v{champion['version']} "
        f"{old['macro_f1']:.4f} by {gain:+.4f} with no recall drop beyond {settings.max_recall_drop}"
    )


def choose_candidate(candidates: dict[str, dict], max_ece: float,
                     max_f1_cost: float = float("inf")) -> str:
    """Best macro-F1 (ties: lower log-loss) among the candidates calibrated within max_ece;
    among all of them when none is (the ECE is then visible in the run's metrics), or when
    the best of all is ahead of the best calibrated one by more than max_f1_cost
    (VEE_MAX_CALIBRATION_F1_COST). Calibration breaks near-ties; it does not buy a worse model:
    the auto-apply thresholds are set on the calibration slice's actual precision, not on
    the stated probabilities, and an ECE measured on a few hundred holdout rows moves by more
    than its limit's margin (outside probe 2026-11-29: a candidate 0.25 lower in macro-F1
    chosen for an ECE of 0.037 against 0.056)."""
    def best(pool):
        return min(pool, key=lambda k: (-candidates[k]["macro_f1"], candidates[k]["log_loss"]))

    overall = best(candidates)
    calibrated = [k for k, m in candidates.items() if m["ece"] <= max_ece]
    if not calibrated:
        return overall
    chosen = best(calibrated)
    if candidates[overall]["macro_f1"] - candidates[chosen]["macro_f1"] > max_f1_cost:
        return overall
    return chosen


def calibration_limit(settings: Settings, champion: dict) -> float:
    """The ECE a candidate may have: VEE_MAX_CALIBRATION_ERROR, or the champion's own ECE on
    the same holdout when that is higher. The limit holds the champion too: a challenger
    calibrated no worse than the model now deciding is not set aside for its calibration."""
    limit = settings.max_calibration_error
    if champion.get("usable") and champion.get("metrics", {}).get("ece") is not None:
        limit = max(limit, float(champion["metrics"]["ece"]))
    return limit


def set_aside(candidates: dict[str, dict], chosen: str, max_ece: float,
              max_f1_cost: float | None = None) -> list[str]:
    """The candidates with a better macro-F1 than the chosen one, left out for calibration,
    and the calibrated ones left out for a chosen one above the limit: said in the
    decision's reason, so neither choice is made silently."""
    best = candidates[chosen]["macro_f1"]
    lines = [
        f"{kind} (macro-F1 {m['macro_f1']:.4f}) set aside: ECE {m['ece']:.3f} above {max_ece:.3f}"
        for kind, m in sorted(candidates.items())
        if kind != chosen and m["macro_f1"] > best and m["ece"] > max_ece
    ]
    if candidates[chosen]["ece"] > max_ece:
        lines += [
            f"{kind} (macro-F1 {m['macro_f1']:.4f}, ECE {m['ece']:.3f}) set aside although "
            f"calibrated within {max_ece:.3f}: {best - m['macro_f1']:.4f} lower in macro-F1"
            + (f", more than VEE_MAX_CALIBRATION_F1_COST {max_f1_cost:g}"
               if max_f1_cost is not None else "")
            for kind, m in sorted(candidates.items())
            if kind != chosen and m["ece"] <= max_ece
        ]
    return lines


def evaluate_candidates(run_dir: str | Path, settings: Settings | None = None) -> dict:
    """Baseline and current champion on the holdout; choose the best trained candidate."""
    from vee_tasks.training import models

    settings = settings or get_settings()
    run_dir = Path(run_dir)
    t0 = time.monotonic()
    baseline = train_candidate(run_dir, models.BASELINE, settings)
    results = {}
    for kind in models.CANDIDATES:
        path = run_dir / "candidates" / kind / "result.json"
        if path.exists():
            results[kind] = _read_json(path)
        else:
            log.warning("candidate %s has no result (its training failed); skipping it", kind)
    if not results:
        raise TrainingError("no candidate finished training; see the train_* task logs")
    frame = pd.read_parquet(run_dir / "training.parquet")
    hold, y_hold = _split_xy(frame, "holdout")
    champion = _champion_on_holdout(hold, y_hold, settings, context(run_dir).get("warehouse_id"))
    metrics = {k: v["metrics"] for k, v in results.items()}
    max_ece = calibration_limit(settings, champion)
    best = choose_candidate(metrics, max_ece, settings.max_calibration_f1_cost)
    blind_spots = holdout_blind_spots(frame, settings.threshold_min_support)
    if blind_spots:
        log.warning("the holdout holds no %s labels (the training set does)", ", ".join(blind_spots))
    gain_se = 0.0
    champion_predictions = champion.pop("predictions", None)
    if champion_predictions is not None:
        from vee_tasks.training.metrics import paired_gain_se

        chosen = pd.read_parquet(run_dir / "candidates" / best / "holdout_proba.parquet")
        chosen_predictions = chosen[list(RESOLUTION_CODES)].to_numpy().argmax(axis=1)
        gain_se = paired_gain_se(y_hold, chosen_predictions, np.asarray(champion_predictions))
        champion["gain_se"] = round(gain_se, 6)
    decision, reason = promotion_decision(
        results[best], champion, settings, baseline["metrics"], blind_spots,
        as_of=context(run_dir)["as_of"], gain_se=gain_se)
    aside = set_aside(metrics, best, max_ece, settings.max_calibration_f1_cost)
    if aside:
        reason = f"{reason}; {best} chosen: " + "; ".join(aside)
    withdrawn = results[best].get("thresholds_withdrawn") or []
    if withdrawn:
        reason = f"{reason}; auto-apply withdrawn for " + ", ".join(withdrawn)
    failed = [kind for kind in models.CANDIDATES if kind not in results]
    if failed:
        # the version's reason and the run record say so: a green run whose task for one
        # candidate had failed read as a full comparison (review, 2026-11-29)
        reason = (f"{reason}; without candidate {', '.join(failed)}, whose training failed "
                  "(see its train_* task log)")
    evaluation = {
        "chosen": best,
        "calibration_limit": max_ece,
        "candidates": metrics,
        "baseline": baseline["metrics"],
        "champion": champion,
        "holdout_blind_spots": blind_spots,
        "decision": decision,
        "reason": reason,
    }
    _write_json(run_dir / "evaluation.json", evaluation)
    _timed(run_dir, "evaluate", time.monotonic() - t0)
    # the table `vee train` prints, in the DAG's task log too (an operator reading the weekly
    # run in the UI saw only the decision's line; outside probe, 2026-11-28)
    log.info("holdout metrics (%d rows):\n%s", len(y_hold), holdout_metrics_table(evaluation))
    log.info("chosen %s; decision %s: %s", best, decision, reason)
    return evaluation


def holdout_metrics_table(evaluation: dict) -> str:
    """The holdout's metrics of the baseline, each candidate and the champion, as a table."""
    from vee_tasks.training.metrics import metrics_table

    rows = {"baseline": evaluation["baseline"], **evaluation["candidates"]}
    champion = evaluation["champion"]
    if champion.get("usable"):
        rows[f"champion_v{champion['version']}"] = champion["metrics"]
    return metrics_table(rows)


def register_and_promote(
    engine: Engine | None, run_dir: str | Path, settings: Settings | None = None
) -> dict:
    from vee_tasks.training.register import register

    settings = settings or get_settings()
    run_dir = Path(run_dir)
    t0 = time.monotonic()
    info = register(run_dir, settings)
    _write_json(run_dir / "registration.json", info)
    _timed(run_dir, "register", time.monotonic() - t0)
    _record(engine, run_dir, status="SUCCESS", settings=settings)
    return info


# --- the record in vee.training_run ---------------------------------------------------


def _record(engine: Engine | None, run_dir: Path, status: str, message: str | None = None,
            settings: Settings | None = None) -> None:
    if engine is None:
        return
    run_dir = Path(run_dir)
    ctx = context(run_dir)
    frame = _read_json(run_dir / "frame.json")
    labels = _read_json(run_dir / "labels.json")
    evaluation = _read_json(run_dir / "evaluation.json")
    reg = _read_json(run_dir / "registration.json")
    candidates = dict(evaluation.get("candidates", {}))
    if evaluation.get("baseline"):
        candidates["baseline"] = evaluation["baseline"]
    params = {
        "run_id": ctx["run_id"], "as_of": dt.date.fromisoformat(ctx["as_of"]),
        "cutoff": dt.datetime.fromisoformat(ctx["cutoff"]), "status": status,
        "n_labels": labels.get("n_labels"), "n_train": frame.get("n_train"),
        "n_calibration": frame.get("n_calibration"), "n_holdout": frame.get("n_holdout"),
        "training_digest": frame.get("digest"), "candidates": json.dumps(candidates),
        "chosen_kind": evaluation.get("chosen"), "model_name": reg.get("model_name"),
        "model_version": reg.get("version"), "decision": reg.get("decision"),
        "decision_reason": reg.get("reason"), "mlflow_run_id": reg.get("mlflow_run_id"),
        "step_seconds": json.dumps(step_seconds(run_dir)),
        "message": scrub(message) if message else message,
        "finished_at": None if status == "RUNNING" else dt.datetime.now(dt.timezone.utc),
    }
    from vee_tasks.warehouse import execute_sql_file

    try:
        with engine.begin() as conn:
            execute_sql_file(conn, "queries/training_run_upsert.sql", params)
    except sa.exc.ProgrammingError as exc:  # migration 0010 not applied: not fatal
        log.warning("vee.training_run not written (run `vee db upgrade`): %s", exc.orig)


def mark_failed(engine: Engine | None, run_dir: str | Path, message: str) -> None:
    _record(engine, Path(run_dir), status="FAILED", message=message)


def record_status(engine: Engine | None, run_dir: str | Path, status: str,
                  message: str | None = None) -> None:
    """Write the run's row in vee.training_run with this status (DAG tasks and callbacks)."""
    _record(engine, Path(run_dir), status=status, message=message)


# A record still RUNNING this long after it started belongs to an Airflow run that ended
# without finishing it; the next training run records it FAILED (abandon_stale_records).
ABANDONED_AFTER_HOURS = 24


def reconcile_with_airflow(engine: Engine, run_id: str, airflow_state: str, reason: str = "",
                           ended_at: dt.datetime | None = None) -> str | None:
    """Make a record still RUNNING agree with its Airflow run, which has ended without
    register_and_promote or a task's failure callback (a task or the run marked failed or
    success by hand). Returns "FAILED" when it changed the record, None when the record needed
    nothing or belongs to an attempt started after the run ended (`ended_at`)."""
    from vee_tasks.warehouse import execute_sql_file

    if airflow_state == "success":
        message = ("the Airflow run was marked success before register_and_promote recorded a "
                   "model: nothing was registered or promoted by it; clear register_and_promote "
                   "with its upstream tasks to finish")
    else:
        message = (f"the Airflow run ended {airflow_state} before register_and_promote "
                   f"({reason or 'no reason given'}); clear the failed or missing tasks with "
                   "their downstream to resume")
    with engine.begin() as conn:
        changed = execute_sql_file(
            conn, "queries/training_run_reconcile.sql",
            {"run_id": run_id, "message": message, "ended_at": ended_at},
        ).fetchall()
    return "FAILED" if changed else None


def abandon_stale_records(engine: Engine, run_id: str) -> list[str]:
    """Other runs' records still RUNNING ABANDONED_AFTER_HOURS after they started: FAILED
    (Airflow 3.3 runs no DAG callback for a whole run marked failed through the UI)."""
    from vee_tasks.warehouse import execute_sql_file

    with engine.begin() as conn:
        rows = execute_sql_file(
            conn, "queries/training_run_abandon.sql",
            {"run_id": run_id, "abandoned_hours": ABANDONED_AFTER_HOURS},
        ).fetchall()
    for row in rows:
        log.warning("training run %s (as of %s) was still RUNNING %d h after it started: "
                    "recorded FAILED as abandoned", row.run_id, row.as_of, ABANDONED_AFTER_HOURS)
    return [row.run_id for row in rows]


# --- the whole run without a scheduler --------------------------------------------------


@dataclass
class TrainingResult:
    run_id: str
    run_dir: str
    as_of: dt.date
    frame: dict
    evaluation: dict
    registration: dict
    seconds: dict = field(default_factory=dict)

    @property
    def version(self) -> str:
        return self.registration["version"]

    @property
    def decision(self) -> str:
        return self.registration["decision"]

    def _train_sample(self) -> str:
        available = self.frame.get("n_train_available", self.frame["n_train"])
        return f" (a sample of {available})" if available > self.frame["n_train"] else ""

    def describe(self) -> str:
        metrics_table = holdout_metrics_table(self.evaluation)
        total = sum(self.seconds.values())
        lines = [
            f"training run {self.run_id} (as of {self.as_of}): {self.frame['rows']} labels, "
            f"train {self.frame['n_train']}{self._train_sample()} / "
            f"calibration {self.frame['n_calibration']} / "
            f"holdout {self.frame['n_holdout']} ({self.frame['split_mode']})",
            metrics_table,
            f"chosen {self.evaluation['chosen']} -> {self.registration['model_name']} "
            f"version {self.registration['version']}, alias {self.registration['decision']}: "
            f"{self.registration['reason']}",
            "thresholds " + ", ".join(
                f"{c}={v:.3f}" if v <= 1 else f"{c}=never"
                for c, v in self.registration["thresholds"].items()
            ),
            "steps " + ", ".join(f"{k} {v:.1f}s" for k, v in self.seconds.items())
            + f" (total {total:.1f}s)",
        ]
        return "\n".join(lines)


def train(
    engine: Engine,
    as_of: dt.date,
    progress: bool = False,
    run_id: str | None = None,
    settings: Settings | None = None,
) -> TrainingResult:
    """All steps in order (the weekly DAG without a scheduler)."""
    from vee_tasks.training import models

    settings = settings or get_settings()
    say = (lambda msg: print(msg, flush=True)) if progress else log.info
    run_dir = prepare_run(as_of, run_id, settings)
    ctx = context(run_dir)
    try:
        say(f"[train] labels resolved before {ctx['cutoff']}")
        extract_labels(engine, run_dir, settings)
        say("[train] building features")
        build_training_frame(engine, run_dir, settings)
        say("[train] validating the training set")
        validate_training_set(run_dir, settings, engine=engine)
        for kind in models.CANDIDATES:
            say(f"[train] training {kind}")
            try:
                train_candidate(run_dir, kind, settings)
            except Exception as exc:  # noqa: BLE001 - the other candidate may still win
                log.exception("candidate %s failed: %s", kind, exc)
        say("[train] evaluating against the champion")
        evaluate_candidates(run_dir, settings)
        say("[train] registering")
        registration = register_and_promote(engine, run_dir, settings)
    except Exception as exc:
        from vee_tasks.quality import DataQualityError

        if not isinstance(exc, (DataQualityError, InsufficientLabelsError)):
            mark_failed(engine, run_dir, f"{type(exc).__name__}: {exc}")
        raise
    return TrainingResult(
        run_id=ctx["run_id"], run_dir=str(run_dir), as_of=as_of,
        frame=_read_json(Path(run_dir) / "frame.json"),
        evaluation=_read_json(Path(run_dir) / "evaluation.json"),
        registration=registration, seconds=step_seconds(run_dir),
    )
