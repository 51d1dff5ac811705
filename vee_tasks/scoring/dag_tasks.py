"""What each task of the nightly DAG does, given the Airflow task context.

The DAG file stays orchestration only; each of its tasks calls one function here, which
calls one step of `vee_tasks.scoring.steps`. This module translates between Airflow and the
steps: the read date from the run's logical date, the run id, and the failure policy:
transient database errors are raised as they are (Airflow retries them with exponential
backoff); anything else (data quality, no champion, broken invariants, bugs) is raised as
`AirflowFailException`, which fails the task at once without retries.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Callable

from vee_tasks.config import get_settings
from vee_tasks.dates import nightly_read_date
from vee_tasks.warehouse import task_engine

log = logging.getLogger(__name__)


def read_date_from_context(context: Any, timezone: str) -> dt.date:
    """The read date this run scores: dates.nightly_read_date (one mapping, shared with the
    alerts)."""
    return nightly_read_date(context, timezone)


def _call(fn: Callable, *args, **kwargs):
    """Run a step with the failure policy of the module docstring."""
    from vee_tasks.scoring.errors import is_transient, short_reason

    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        if is_transient(exc):
            log.warning("transient warehouse error, Airflow will retry: %s", exc)
            raise
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(short_reason(exc)) from exc


def start_time_reached(run_type: str, data_interval_end: dt.datetime | None,
                       delay_hours: float, now: dt.datetime) -> bool:
    """Whether a run may start: a scheduled run once `delay_hours` have passed since its read
    date ended (its data interval's end), any other run (dags test, backfill, a trigger: an
    operator chose the moment) at once."""
    if run_type != "scheduled" or data_interval_end is None:
        return True
    return now >= data_interval_end + dt.timedelta(hours=delay_hours)


def mdm_ready(context: Any) -> bool:
    """Task wait_for_mdm (a sensor, rescheduled between pokes): see start_time_reached. The
    DAG is scheduled at local midnight so that its logical date is the read date; the MDMS
    raises that date's exceptions hours later, and a run started at midnight found none."""
    settings = get_settings()
    dag_run = context["dag_run"]
    run_type = str(getattr(dag_run.run_type, "value", dag_run.run_type))
    end = context.get("data_interval_end")
    now = dt.datetime.now(dt.timezone.utc)
    if start_time_reached(run_type, end, settings.nightly_start_delay_hours, now):
        return True
    log.info("scheduled run waits for the MDMS's VEE batch until %s (VEE_NIGHTLY_START_DELAY_HOURS=%s)",
             end + dt.timedelta(hours=settings.nightly_start_delay_hours),
             settings.nightly_start_delay_hours)
    return False


# The tasks after start_run_record, and the states in which a task has finished.
LATER_TASKS = ("resolve_champion", "extract", "validate", "refresh_usage_rollup", "score_shard",
               "finish_run_record")
_FINISHED_STATES = {"success", "failed", "upstream_failed", "skipped"}


def finished_task_ids(task_states: dict, run_id: str) -> tuple[str, ...]:
    """From Airflow's {run_id: {task_id (or task_id_mapindex): state}}: the finished ones."""
    states = task_states.get(run_id) or {}
    return tuple(sorted(task for task, state in states.items()
                        if str(getattr(state, "value", state)).lower() in _FINISHED_STATES))


def _later_tasks_done(context: Any, task_ids: tuple[str, ...] = LATER_TASKS) -> tuple[str, ...]:
    """The run's later tasks still in a finished state: this task was cleared without them.
    Unknown (an older API, no supervisor) counts as none: the run goes on as before."""
    ti = context.get("ti") or context.get("task_instance")
    try:
        states = ti.get_task_states(dag_id=ti.dag_id, task_ids=list(task_ids), run_ids=[ti.run_id])
    except Exception as exc:  # noqa: BLE001 - a safeguard, never a reason to fail a run
        log.debug("could not read the run's task states: %s", exc)
        return ()
    return finished_task_ids(states, ti.run_id)


def start(context: Any) -> dict:
    """Task start_run_record: returns {"dag_run_id", "read_date"} for the other tasks."""
    from vee_tasks.scoring import steps

    settings = get_settings()
    read_date = read_date_from_context(context, settings.timezone)
    return _call(steps.start_run, task_engine(), context["run_id"], read_date, settings.timezone,
                 _later_tasks_done(context))


def _current_context() -> dict:
    """Airflow's context of the running task; empty when called outside one."""
    from airflow.sdk import get_current_context

    try:
        return get_current_context()
    except RuntimeError:
        return {}


def resolve_champion(run: dict) -> str:
    from vee_tasks.scoring import steps

    done = _later_tasks_done(_current_context(), ("score_shard", "finish_run_record"))
    return _call(steps.resolve_champion, task_engine(), run["dag_run_id"], None, done)


def extract(run: dict) -> int:
    from vee_tasks.scoring import steps

    return _call(steps.extract, task_engine(), run["dag_run_id"], dt.date.fromisoformat(run["read_date"]))


def refresh_usage_rollup(run: dict) -> int:
    from vee_tasks.scoring import steps

    return _call(
        steps.refresh_usage_rollup, task_engine(), run["dag_run_id"], dt.date.fromisoformat(run["read_date"])
    )


def validate(run: dict) -> list[int]:
    from vee_tasks.scoring import steps

    return _call(steps.validate, task_engine(), run["dag_run_id"], dt.date.fromisoformat(run["read_date"]))


def score_shard(run: dict, shard: int, model_version: str) -> dict:
    from vee_tasks.scoring import steps

    return _call(
        steps.score_shard,
        task_engine(),
        run["dag_run_id"],
        dt.date.fromisoformat(run["read_date"]),
        int(shard),
        str(model_version),
    )


def finish(run: dict) -> str:
    from vee_tasks.scoring import steps

    return _call(steps.finish_run, task_engine(), run["dag_run_id"])


def on_task_failure(context: Any) -> None:
    """Task failure callback: the run record says FAILED with the reason (an earlier,
    more specific status such as DQ_FAILED is kept)."""
    try:
        from vee_tasks.scoring import steps
        from vee_tasks.scoring.errors import RunFinishedError, caused_by

        ti = context.get("task_instance") or context.get("ti")
        task_id = getattr(ti, "task_id", "?")
        exc = context.get("exception")
        if caused_by(exc, RunFinishedError):
            return  # a task of a finished run cleared alone: its record stays as it was
        steps.mark_failed(task_engine(), context["run_id"], f"task {task_id} failed: {exc}")
    except Exception:  # noqa: BLE001 - a callback must not hide the task's own failure
        log.exception("could not record the failure in vee.scoring_run")


def on_dag_run_finished(context: Any, state: str) -> None:
    """DAG-level callback (`state` "success" or "failed", from the callback that fired): the
    run record agrees with the Airflow run (steps.reconcile_with_airflow). Never raises."""
    from vee_tasks.callbacks import reconcile_on_dag_end

    def reconcile(*args, **kwargs):
        from vee_tasks.scoring import steps

        return steps.reconcile_with_airflow(*args, **kwargs)

    reconcile_on_dag_end(context, state, reconcile, "nightly run record")
