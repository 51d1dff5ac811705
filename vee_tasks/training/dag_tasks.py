"""What each task of the weekly retraining DAG does, given the Airflow task context.

The DAG file stays orchestration only. Tasks pass the run directory
(settings.data_dir/runs/<run id>/, a path string) through XCom, never frames. Failure
policy: a failing data-quality suite, too few labels, missing contract tables or a schema vee
behind this release fail the task at once
(`AirflowFailException`, no retry: rerunning cannot fix the data); anything else is raised as
it is and Airflow retries it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

from vee_tasks.config import get_settings
from vee_tasks.dates import weekly_as_of
from vee_tasks.warehouse import task_engine

log = logging.getLogger(__name__)


def _call(fn: Callable, *args, **kwargs):
    from vee_tasks.migrations import WarehouseBehind
    from vee_tasks.quality import DataQualityError
    from vee_tasks.training.pipeline import InsufficientLabelsError, MissingContractTablesError

    try:
        return fn(*args, **kwargs)
    except (DataQualityError, InsufficientLabelsError, MissingContractTablesError,
            WarehouseBehind) as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc


def as_of_from_context(context: Any):
    """The date this run trains as of: dates.weekly_as_of (one mapping, shared with the
    alerts)."""
    return weekly_as_of(context, get_settings().timezone)


def run_dir_for(run_id: str) -> str:
    from vee_tasks.training.pipeline import safe_run_id

    return str(get_settings().data_dir / "runs" / safe_run_id(run_id))


def extract_labels(context: Any) -> str:
    from vee_tasks.training import pipeline

    from vee_tasks.migrations import require_upgraded

    run_dir = pipeline.prepare_run(as_of_from_context(context), context["run_id"])
    engine = task_engine()
    _call(require_upgraded, engine)  # before the run record, which needs the tables
    pipeline.record_status(engine, run_dir, "RUNNING")
    pipeline.abandon_stale_records(engine, context["run_id"])
    _call(pipeline.extract_labels, engine, run_dir)
    return run_dir


def build_features(run_dir: str) -> str:
    from vee_tasks.training import pipeline

    _call(pipeline.build_training_frame, task_engine(), run_dir)
    return run_dir


def validate(run_dir: str) -> str:
    from vee_tasks.training import pipeline

    _call(pipeline.validate_training_set, run_dir, engine=task_engine())
    return run_dir


def train(run_dir: str, kind: str) -> dict:
    from vee_tasks.training import pipeline

    result = _call(pipeline.train_candidate, run_dir, kind)
    return {"kind": kind, "macro_f1": result["metrics"]["macro_f1"], "ece": result["metrics"]["ece"]}


def evaluate(run_dir: str) -> dict:
    from vee_tasks.training import pipeline

    evaluation = _call(pipeline.evaluate_candidates, run_dir)
    return {"chosen": evaluation["chosen"], "decision": evaluation["decision"],
            "reason": evaluation["reason"]}


def register(run_dir: str) -> dict:
    from vee_tasks.training import pipeline

    info = _call(pipeline.register_and_promote, task_engine(), run_dir)
    log.info("%s version %s -> %s: %s", info["model_name"], info["version"], info["decision"],
             info["reason"])
    return {k: info[k] for k in ("model_name", "version", "decision", "reason")}


def on_task_failure(context: Any) -> None:
    """Failure callback: vee.training_run says FAILED (an earlier DQ_FAILED is kept). The
    alert is the DAG's own callback (alerting.on_failure), as in the nightly DAG. Never
    raises."""
    try:
        from vee_tasks.alerting import is_data_quality_failure
        from vee_tasks.training import pipeline

        run_dir = Path(run_dir_for(context["run_id"]))
        if (run_dir / "context.json").exists():
            # from this failure, not from a file an earlier attempt may have left
            exception = context.get("exception")
            status = "DQ_FAILED" if is_data_quality_failure(exception) else "FAILED"
            ti = context.get("task_instance") or context.get("ti")
            message = f"task {getattr(ti, 'task_id', '?')} failed: {exception}"
            pipeline.record_status(task_engine(), run_dir, status, message)
    except Exception:  # noqa: BLE001 - a callback must not hide the task's own failure
        log.exception("could not record the failure in vee.training_run")


def on_dag_run_finished(context: Any, state: str) -> None:
    """DAG-level callback: a vee.training_run record still RUNNING is recorded FAILED with why
    (pipeline.reconcile_with_airflow). Never raises."""
    from vee_tasks.callbacks import reconcile_on_dag_end

    def reconcile(*args, **kwargs):
        from vee_tasks.training import pipeline

        return pipeline.reconcile_with_airflow(*args, **kwargs)

    reconcile_on_dag_end(context, state, reconcile, "training run record")
