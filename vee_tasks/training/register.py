"""MLflow logging, registration and the alias decision of one training run.

One parent MLflow run per training run, one child run per candidate (and the baseline)
with its params, metrics, confusion matrix and reliability diagram; the chosen candidate's
child run logs the pyfunc model (model from code + the predictor directory as artifact,
signature and input example) and registers it as a new version of `vee-resolution`.
Idempotent: a rerun of the same training run finds the version it registered (tag
vee.training_run_id) and re-applies the decision instead of registering another.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from vee_tasks.config import AIRFLOW_RUN_ID_PREFIXES, CHALLENGER_ALIAS, CHAMPION_ALIAS, Settings
from vee_tasks.features import FEATURE_COLUMNS, feature_schema_fingerprint
from vee_tasks.registry import (
    TAG_DECISION,
    TAG_FEATURE_SCHEMA,
    TAG_KIND,
    TAG_REASON,
    TAG_THRESHOLDS,
    TAG_WAREHOUSE,
    configure,
    ensure_experiment,
    mlflow_uris,
)

log = logging.getLogger(__name__)

TAG_TRAINING_RUN = "vee.training_run_id"
ENTRY = Path(__file__).resolve().parent / "pyfunc_entry.py"


def _pip_requirements() -> list[str]:
    from importlib.metadata import version

    pkgs = ["mlflow", "scikit-learn", "skops", "pandas", "numpy", "keras", "tensorflow-cpu"]
    out = []
    for p in pkgs:
        try:
            out.append(f"{p}=={version(p)}")
        except Exception:  # noqa: BLE001 - not installed: leave unpinned
            out.append(p)
    return out


TAG_DIGEST = "vee.training_set_digest"  # on each version: the frame it was trained on


def training_set_dataset(mlflow, frame: pd.DataFrame, digest: str):
    """The training set as an MLflow dataset, its schema set from `training_set_schema` before
    MLflow infers it value by value (0.14 ms a row: 54 s at 390,000 labels, measured
    2026-11-28)."""
    from vee_tasks.training.pipeline import LABEL

    dataset = mlflow.data.from_pandas(frame, name="training_set", targets=LABEL, digest=digest)
    schema = training_set_schema(frame)
    if schema is not None:
        dataset.__dict__["schema"] = schema  # PandasDataset.schema is a cached_property
    return dataset


def training_set_schema(frame: pd.DataFrame):
    """MLflow's schema of `frame`, inferred from a slice: the first 1,000 rows and, for every
    column, its first missing and first present value. Types of text columns come from their
    values and `required` from whether a column has a missing value, so the slice gives the
    schema of every row. None (let MLflow look at every value) for an empty frame or a text
    column whose values are of mixed types, where the first values do not say it all."""
    import mlflow

    if frame.empty:
        return None
    text = [c for c in frame.columns
            if pd.api.types.is_object_dtype(frame[c]) or pd.api.types.is_string_dtype(frame[c])]
    if any(pd.api.types.infer_dtype(frame[c], skipna=True).startswith("mixed") for c in text):
        return None
    missing = frame.isna().to_numpy()
    rows = set(range(min(len(frame), 1000)))
    for flags in (missing, ~missing):
        has = flags.any(axis=0)
        rows.update(flags.argmax(axis=0)[has].tolist())
    return mlflow.data.from_pandas(frame.iloc[sorted(rows)]).schema


def _run_versions(client, name: str, run_id: str) -> list:
    """The versions this training run registered. A registry error propagates: taken for
    "none", it would register the same run twice. (A model not registered yet is an empty
    search, not an error.)"""
    return [v for v in client.search_model_versions(f"name='{name}'")
            if v.tags.get(TAG_TRAINING_RUN) == run_id]


def _existing_version(client, name: str, run_id: str, digest: str | None = None,
                      warehouse_id: str | None = None, legacy_digest: str | None = None,
                      as_of: str | None = None, chosen: tuple[str, float] | None = None,
                      threshold_settings: str | None = None):
    """The version this training run registered from the same training set on the same
    warehouse, if any: a rerun on other data (`vee train` again after the labels were fixed)
    is a new model, and gets a version of its own rather than the old model with the new
    evaluation's decision; so is one on another warehouse holding the same data (the
    README's `vee simulate` on two warehouses; reviewed 2026-11-27), whose version would
    carry the other's warehouse tag. A version registered by an earlier release may carry
    the training set's `legacy_digest` (pipeline.frame_digest(legacy=True)); one from a
    release whose digest was neither (the unrounded hash of 2026-11-27) is not recognised,
    and the rerun registers a version of its own (upgrade probe, 2026-11-29).

    For a run Airflow started, also a version any run registered `as_of` the same date from
    the same training set on the same warehouse: each trigger or `airflow dags test` of a
    week gets a run id of its own, and registered the same model again (outside probe
    2026-11-29: v1 and v2 of one digest), as long as it chose the same model: `chosen`, its
    candidate kind and holdout macro-F1 (another candidate choice or split setting on the
    same training set is another model; review 2026-11-29). A `vee train --run-id` run is the
    operator's request for a run of its own.

    Either way only under the same `threshold_settings` (threshold_settings_tag): a rerun
    after the operator raised VEE_TARGET_PRECISION reported the new, stricter thresholds
    while the reused version, which the nightly run applies, kept the old ones (outside
    review, 2026-11-29). The settings, not the thresholds: those move in their last bits
    when a candidate is fitted again, and a rerun of the same week would then register the
    same model twice."""
    def same_thresholds(v) -> bool:
        stored = (v.tags or {}).get(TAG_THRESHOLD_SETTINGS)
        return threshold_settings is None or stored is None or stored == threshold_settings

    same_run = _run_versions(client, name, run_id)
    for v in same_run:
        if digest is not None and v.tags.get(TAG_DIGEST) not in (None, digest, legacy_digest):
            continue
        if warehouse_id and v.tags.get(TAG_WAREHOUSE) not in (None, warehouse_id):
            continue
        if not same_thresholds(v):
            continue
        return v
    if not (as_of and digest and chosen and run_id.startswith(AIRFLOW_RUN_ID_PREFIXES)):
        return None
    kind, macro_f1 = chosen
    for v in sorted(client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version)):
        tags = v.tags or {}
        if tags.get("vee.as_of") == as_of and tags.get(TAG_DIGEST) == digest \
                and tags.get(TAG_WAREHOUSE) == warehouse_id and tags.get(TAG_KIND) == kind \
                and tags.get("vee.macro_f1") == f"{macro_f1:.4f}" and same_thresholds(v):
            return v
    return None


# The settings a version's auto-apply thresholds were chosen under, as a tag.
TAG_THRESHOLD_SETTINGS = "vee.threshold_settings"


def threshold_settings_tag(settings: Settings) -> str:
    """The settings that choose the auto-apply thresholds (the target precision, the support
    a code needs, the calibration and holdout slices), as the tag's text."""
    return json.dumps({"target_precision": settings.target_precision,
                       "threshold_min_support": settings.threshold_min_support,
                       "calibration_days": settings.calibration_days,
                       "holdout_days": settings.holdout_days}, sort_keys=True)


def _discard_unregistered_attempts(client, experiment_id: str, run_id: str, name: str) -> None:
    """MLflow runs an earlier attempt of this training run logged but never registered (it
    failed between logging and registering; the task's retry logs them again): deleted, so
    the experiment keeps one parent run per registered version. The runs behind a version
    this training run registered before (on other data) stay."""
    earlier = client.search_runs(
        [experiment_id], filter_string=f"tags.`{TAG_TRAINING_RUN}` = '{run_id}'", max_results=1000
    )
    parent_of = {r.info.run_id: r.data.tags.get("mlflow.parentRunId") for r in earlier}
    # a version's run is the chosen candidate's child run; its parent holds the siblings
    kept = set()
    for v in _run_versions(client, name, run_id):
        kept |= {v.run_id, parent_of.get(v.run_id)}
    kept.discard(None)
    earlier = [r for r in earlier
               if r.info.run_id not in kept and parent_of.get(r.info.run_id) not in kept]
    for run in earlier:
        client.delete_run(run.info.run_id)
    if earlier:
        log.warning("training run %s: deleted %d MLflow run(s) of an earlier attempt that "
                    "registered nothing", run_id, len(earlier))


def _alias_version(client, name: str, alias: str) -> str | None:
    """The version carrying `alias`, or None when no version does; a registry error propagates
    (it is no evidence that the alias is free)."""
    from mlflow.exceptions import MlflowException

    from vee_tasks.registry import is_missing

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if is_missing(exc):
            return None
        raise


def _log_candidate(mlflow, run_dir: Path, kind: str, result: dict, y, proba) -> None:
    from vee_tasks.training.metrics import plot_confusion, plot_reliability

    mlflow.log_params({f"{kind}.{k}": v for k, v in result.get("params", {}).items()} or {})
    mlflow.log_param("temperature", round(result.get("temperature", 1.0), 5))
    if result.get("class_bias"):
        mlflow.log_param("class_bias", [round(b, 4) for b in result["class_bias"]])
    mlflow.log_metrics({k: v for k, v in result["metrics"].items()})
    plots = run_dir / "candidates" / kind / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    plot_confusion(y, proba, plots / "confusion_matrix.png", f"{kind}: holdout")
    plot_reliability(y, proba, plots / "reliability_diagram.png", f"{kind}: holdout")
    mlflow.log_artifacts(str(plots), artifact_path="plots")
    mlflow.log_dict(result["thresholds"], "thresholds.json")


def register(run_dir: Path, settings: Settings) -> dict:
    with mlflow_uris(settings):
        return _register(run_dir, settings)


def _register(run_dir: Path, settings: Settings) -> dict:
    import mlflow
    from mlflow.models import infer_signature

    from vee_tasks.training.models import label_index
    from vee_tasks.training.pipeline import LABEL, _read_json, context

    ctx = context(run_dir)
    frame_info = _read_json(run_dir / "frame.json")
    evaluation = _read_json(run_dir / "evaluation.json")
    chosen = evaluation["chosen"]
    decision, reason = evaluation["decision"], evaluation["reason"]
    name = settings.registered_model_name
    client = configure(settings)
    experiment_id = ensure_experiment(settings)

    chosen_result = _read_json(run_dir / "candidates" / chosen / "result.json")
    # this run, registered before from the same training set
    existing = _existing_version(client, name, ctx["run_id"], frame_info["digest"],
                                 ctx.get("warehouse_id"), frame_info.get("legacy_digest"),
                                 ctx["as_of"], (chosen, chosen_result["metrics"]["macro_f1"]),
                                 threshold_settings_tag(settings))
    version = existing
    parent_run_id = version.run_id if version is not None else None
    thresholds = chosen_result["thresholds"]
    if existing is not None and (existing.tags or {}).get(TAG_THRESHOLDS):
        thresholds = json.loads(existing.tags[TAG_THRESHOLDS])  # what the nightly applies

    if version is None:
        _discard_unregistered_attempts(client, experiment_id, ctx["run_id"], name)
        frame = pd.read_parquet(run_dir / "training.parquet")
        hold = frame[frame["split"] == "holdout"]
        y_hold = label_index(hold[LABEL])
        with mlflow.start_run(
            experiment_id=experiment_id, run_name=f"weekly {ctx['as_of']}",
            tags={TAG_TRAINING_RUN: ctx["run_id"], "vee.as_of": ctx["as_of"]},
        ) as parent:
            parent_run_id = parent.info.run_id
            mlflow.log_params({
                "as_of": ctx["as_of"], "cutoff": ctx["cutoff"],
                "holdout_days": settings.holdout_days,
                "calibration_days": settings.calibration_days,
                "target_precision": settings.target_precision,
                "promotion_margin": settings.promotion_margin,
                "max_recall_drop": settings.max_recall_drop,
                "split_mode": frame_info["split_mode"],
                "n_train": frame_info["n_train"], "n_calibration": frame_info["n_calibration"],
                "n_holdout": frame_info["n_holdout"],
                # the train slice before VEE_MAX_TRAINING_ROWS sampled it
                "n_train_available": frame_info.get("n_train_available", frame_info["n_train"]),
                "max_training_rows": settings.max_training_rows,
                "training_set_rows": frame_info["rows"],
                "training_set_digest": frame_info["digest"],
                "feature_schema": feature_schema_fingerprint(),
                "chosen": chosen,
            })
            dataset = training_set_dataset(mlflow, frame.drop(columns=["split"]), frame_info["digest"])
            mlflow.log_input(dataset, context="training")
            summary = {"baseline": evaluation["baseline"], **evaluation["candidates"]}
            for kind, metrics in summary.items():
                mlflow.log_metrics({f"{kind}.{k}": v for k, v in metrics.items()
                                    if not k.startswith("support_")})
            champion = evaluation["champion"]
            if champion.get("usable"):
                mlflow.log_metrics({f"champion.{k}": v for k, v in champion["metrics"].items()
                                    if not k.startswith("support_")})
            mlflow.log_dict(evaluation, "evaluation.json")

            model_info = None
            for kind in ["baseline", *evaluation["candidates"]]:
                result = _read_json(run_dir / "candidates" / kind / "result.json")
                proba = pd.read_parquet(run_dir / "candidates" / kind / "holdout_proba.parquet")
                proba = proba.drop(columns=["exception_id"]).to_numpy()
                with mlflow.start_run(experiment_id=experiment_id, run_name=kind, nested=True,
                                      tags={TAG_TRAINING_RUN: ctx["run_id"], TAG_KIND: kind}):
                    _log_candidate(mlflow, run_dir, kind, result, y_hold, proba)
                    if kind == chosen:
                        model_info = _log_model(mlflow, run_dir / "candidates" / kind / "model",
                                                hold, infer_signature)
            version = mlflow.register_model(
                model_info.model_uri, name,
                tags={TAG_TRAINING_RUN: ctx["run_id"], TAG_KIND: chosen,
                      TAG_FEATURE_SCHEMA: feature_schema_fingerprint(),
                      TAG_THRESHOLDS: json.dumps(thresholds),
                      TAG_THRESHOLD_SETTINGS: threshold_settings_tag(settings),
                      "vee.as_of": ctx["as_of"],
                      **({TAG_WAREHOUSE: ctx["warehouse_id"]} if ctx.get("warehouse_id") else {}),
                      TAG_DIGEST: frame_info["digest"],
                      "vee.macro_f1": f"{chosen_result['metrics']['macro_f1']:.4f}",
                      "vee.ece": f"{chosen_result['metrics']['ece']:.4f}"},
            )
    v = str(version.version)
    rerun_note = None
    if existing is not None and decision != "champion" \
            and _alias_version(client, name, CHAMPION_ALIAS) == v:
        # A rerun of the run that promoted this version: its new evaluation compared the
        # candidate with that very version (a tie, "challenger"). It stays the champion, with
        # the reason it was promoted for, and is not also made the challenger.
        decision = "champion"
        promoted_for = (version.tags or {}).get(TAG_REASON)
        reason = promoted_for or reason
        # said as what it is, not as the first run's words ("first model: no champion yet"
        # beside an evaluation against itself read as a contradiction; outside probe)
        registered_by = (version.tags or {}).get(TAG_TRAINING_RUN)
        rerun_note = ("a rerun of the run that registered it" if registered_by in (None, ctx["run_id"])
                      else f"a run as of {ctx['as_of']} on the training set run {registered_by} "
                           "registered it from") + ", which stays the champion" + (
            f" (promoted: {promoted_for})" if promoted_for else "")
    elif decision == "champion":
        decision, reason = _still_the_champion_evaluated(client, name, v, evaluation, reason)
    client.set_model_version_tag(name, v, TAG_DECISION, decision)
    client.set_model_version_tag(name, v, TAG_REASON, reason)
    reason = rerun_note or reason  # what the log and the run record say; the tag keeps why
    alias = CHAMPION_ALIAS if decision == "champion" else CHALLENGER_ALIAS
    newer = newer_challenger(client, name, v, ctx["as_of"]) if alias == CHALLENGER_ALIAS else None
    if newer is not None:
        # a backfilled old week must not take the alias from a candidate trained on newer
        # labels (outside probe, 2026-11-28)
        reason = f"{reason}; alias challenger stays on v{newer}, trained as of a later date"
        alias = None
    else:
        client.set_registered_model_alias(name, alias, v)
    if decision == "champion":
        # The new champion is no longer "the challenger", nor is an older version that lost:
        # the alias names the latest candidate still waiting to beat the champion.
        challenger = _alias_version(client, name, CHALLENGER_ALIAS)
        if challenger is not None and int(challenger) <= int(v):
            client.delete_registered_model_alias(name, CHALLENGER_ALIAS)
    log.info("%s version %s: alias %s (%s)", name, v, alias or "none moved", reason)
    return {"model_name": name, "version": v, "decision": decision, "reason": reason,
            "chosen": chosen, "thresholds": thresholds, "mlflow_run_id": parent_run_id}


def newer_challenger(client, name: str, v: str, as_of: str) -> str | None:
    """The version holding alias challenger when it was trained as of a later date than
    `as_of` (and is not `v`), else None."""
    current = _alias_version(client, name, CHALLENGER_ALIAS)
    if current is None or current == v:
        return None
    their_as_of = (client.get_model_version(name, current).tags or {}).get("vee.as_of")
    return current if their_as_of and str(their_as_of) > str(as_of) else None


def _still_the_champion_evaluated(client, name: str, v: str, evaluation: dict,
                                  reason: str) -> tuple[str, str]:
    """A "champion" decision holds only against the champion it was evaluated against. A
    rerun of an older run's register step (cleared after a registry outage, say) after a
    newer run promoted another version must not move the alias back (outside probe,
    2026-11-27): the version stays a challenger, and the reason says why."""
    evaluated = evaluation.get("champion") or {}
    expected = str(evaluated["version"]) if evaluated.get("present") else None
    current = _alias_version(client, name, CHAMPION_ALIAS)
    if current in (expected, v):
        return "champion", reason
    then = f"v{expected}" if expected else "no champion"
    return "challenger", (
        f"{reason}; not promoted: the champion is v{current} now, not {then} as when this run "
        "evaluated (run the training again to compare with it)"
    )


def _log_model(mlflow, model_dir: Path, hold: pd.DataFrame, infer_signature):
    from vee_tasks.training.predictor import MODEL_DIR_ARTIFACT, ResolutionPredictor

    example = hold[list(FEATURE_COLUMNS)].head(5).reset_index(drop=True)
    predictor = ResolutionPredictor.load(model_dir)
    signature = infer_signature(example, predictor.predict_proba(example))
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=str(ENTRY),
        artifacts={MODEL_DIR_ARTIFACT: str(model_dir)},
        signature=signature,
        input_example=example,
        pip_requirements=_pip_requirements(),
    )
