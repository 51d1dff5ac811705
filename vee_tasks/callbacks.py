"""What both DAGs' DAG-level callbacks share: a run record that agrees with its Airflow run.

Kept free of heavy imports: the DAG files reach it through their task modules at callback
time only.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Callable

log = logging.getLogger(__name__)

# (engine, run_id, airflow_state, reason, ended_at=...) -> the record's new status, or None
Reconcile = Callable[..., "str | None"]


def reconcile_on_dag_end(context: Any, state: str, reconcile: Reconcile, record: str) -> None:
    """DAG-level callback body (`state` "success" or "failed", from the callback that fired):
    `reconcile` makes the run's `record` agree with the Airflow run that ended (a record still
    RUNNING when no task callback ran: a task or the run marked failed or success by hand).
    Never raises: a callback must never fail the scheduler's work."""
    try:
        from vee_tasks.warehouse import callback_engine

        dag_run = context.get("dag_run")
        run_id = context.get("run_id") or getattr(dag_run, "run_id", None)
        engine = callback_engine()
        if engine is None or run_id is None:
            log.warning("%s %s: no warehouse to reconcile it with", record, run_id)
            return
        ended_at: dt.datetime | None = getattr(dag_run, "end_date", None)
        outcome = reconcile(engine, run_id, state, str(context.get("reason") or ""),
                            ended_at=ended_at)
        if outcome:
            log.warning("%s %s was still RUNNING after the Airflow run ended %s: now %s",
                        record, run_id, state, outcome)
    except Exception:  # noqa: BLE001 - logged; the scheduler's work goes on
        log.exception("could not reconcile the %s with the Airflow run", record)
