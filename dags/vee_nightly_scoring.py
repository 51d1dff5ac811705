"""
### VEE nightly scoring (`vee_nightly_scoring`)

Decides the VEE exceptions of one **read date**: the run whose logical date is D scores read
date D. Scheduled after D has ended in the utility's time zone (`VEE_TIMEZONE`); the same
mapping holds for `airflow dags test vee_nightly_scoring D` and
`airflow backfill create --dag-id vee_nightly_scoring --from-date A --to-date B` (both ends
inclusive). Airflow 3.3 reads those CLI dates in its default time zone, which this project
sets to `VEE_TIMEZONE`. An installation left at UTC misses one end of a backfill: west of
UTC date B (its local midnight falls after B 00:00 UTC), east of UTC date A (its local
midnight falls before A 00:00 UTC). Keep `AIRFLOW__CORE__DEFAULT_TIMEZONE` equal to
`VEE_TIMEZONE`, or pass local midnights with their offset (docs/operations-backfills.md).

**Steps** (one task each; all logic in `vee_tasks.scoring.steps`):
0. `wait_for_mdm`: a scheduled run waits `VEE_NIGHTLY_START_DELAY_HOURS` (default 6) after
   the read date ended, for the MDMS's own VEE batch to raise that date's exceptions; a run
   an operator starts (dags test, backfill, trigger) goes on at once.
1. `start_run_record`: opens `vee.scoring_run` for this run (status RUNNING).
2. `resolve_champion`: pins the registry version carrying alias `champion`; every shard loads
   exactly that version, even if the alias moves during the run.
3. `extract`: copies the read date's OPEN / AUTO_RESOLVED / PENDING_REVIEW exceptions
   (never ANALYST_RESOLVED) into `vee.nightly_extract`, in SQL, with each meter's shard.
   Checks the contract's schema first.
4. `validate`: the Great Expectations suite `expectations/nightly_exceptions.json`. Rows that
   fail a row check go to `vee.quarantined_exception` with the failed checks' names and stay
   OPEN. A batch breach (schema, volume against recent days, too many quarantined rows)
   fails the run as DQ_FAILED before anything is written. Report page:
   `<reports_dir>/nightly/<read date>/<run id>/index.html`.
5. `refresh_usage_rollup` (beside 3-4): rolls up the settled days of the read date's usage
   lookback not yet in `vee.meter_daily`, for every meter (usually one day a night), so the
   shards read one row per meter-day instead of its interval reads. A cache: the features'
   values do not depend on it; an error here is logged and the run goes on.
6. `score_shard` (mapped, one per meter-hash shard: one per `VEE_SHARD_MIN_ROWS` decidable
   exceptions, at most `VEE_SHARD_COUNT`, chosen by extract): features (the same
   code as training), the pinned model, AUTO_APPLY when confidence reaches that version's
   threshold for the predicted code, else REVIEW; write-back in one transaction per shard
   that never overrides an analyst (rows locked FOR UPDATE, only non-analyst statuses).
7. `finish_run_record`: totals, the invariant selected = scored + quarantined + skipped, and
   the operator's summary (also in `vee.scoring_run.summary` and this task's log).

**Failures**: transient database errors retry with exponential backoff; data-quality
breaches and a missing champion fail at once (no retry) and say why in
`vee.scoring_run.message`. Reruns are idempotent: same rows, not more.

Owner: VEE automation team (vee-scoring).
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.sdk import BaseSensorOperator, CronDataIntervalTimetable, dag, get_current_context, task

from vee_tasks import alerting, reports
from vee_tasks.config import NIGHTLY_DAG_ID, get_settings

_settings = get_settings()

def _tasks():
    from vee_tasks.scoring import dag_tasks

    return dag_tasks


class WaitForMdm(BaseSensorOperator):
    """Task wait_for_mdm: see vee_tasks.scoring.dag_tasks.mdm_ready. (A sensor class, not
    `@task.sensor`: that decorator's module logs a deprecation warning at every parse.)"""

    def poke(self, context) -> bool:
        return _tasks().mdm_ready(context)


def _record_failure(context) -> None:
    _tasks().on_task_failure(context)


def _reconcile_success(context) -> None:
    _tasks().on_dag_run_finished(context, "success")


def _reconcile_failure(context) -> None:
    _tasks().on_dag_run_finished(context, "failed")


DEFAULT_ARGS = {
    "owner": "vee-scoring",
    # a hung query fails its task instead of holding the run (and the next) for good
    "execution_timeout": dt.timedelta(hours=_settings.task_timeout_hours),
    "retries": 3,
    "retry_delay": dt.timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": dt.timedelta(minutes=10),
    "on_failure_callback": [_record_failure, alerting.on_failure, reports.on_run_finished],
}


@dag(
    dag_id=NIGHTLY_DAG_ID,
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone=_settings.timezone),
    # Far back on purpose: a run (dags test, backfill) for a logical date before start_date
    # runs no task and still reports success, so an older read date would be silently
    # skipped. catchup=False keeps the scheduler from creating the runs in between.
    start_date=pendulum.datetime(2000, 1, 1, tz=_settings.timezone),
    catchup=False,
    # One scheduled date at a time: a run's shards already use the machine's cores. A
    # backfill has its own limit (`airflow backfill create --max-active-runs`, default 10),
    # see docs/operations-backfills.md.
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    # the run record agrees with the Airflow run when it ends without finish_run_record or a
    # task's failure callback (a task marked failed or success by hand, finish skipped)
    on_success_callback=_reconcile_success,
    on_failure_callback=_reconcile_failure,
    doc_md=__doc__,
    tags=["vee", "nightly", "scoring"],
)
def vee_nightly_scoring():
    @task(task_id="start_run_record")
    def start_run_record() -> dict:
        return _tasks().start(get_current_context())

    @task(task_id="resolve_champion")
    def resolve_champion(run: dict) -> str:
        return _tasks().resolve_champion(run)

    @task(task_id="extract")
    def extract(run: dict) -> int:
        return _tasks().extract(run)

    @task(task_id="validate")
    def validate(run: dict) -> list[int]:
        return _tasks().validate(run)

    @task(task_id="refresh_usage_rollup")
    def refresh_usage_rollup(run: dict) -> int:
        return _tasks().refresh_usage_rollup(run)

    @task(task_id="score_shard", map_index_template="shard {{ task.op_kwargs['shard'] }}")
    def score_shard(shard: int, run: dict, model_version: str) -> dict:
        return _tasks().score_shard(run, shard, model_version)

    @task(task_id="finish_run_record", on_success_callback=reports.on_run_finished)
    def finish_run_record(run: dict) -> str:
        return _tasks().finish(run)

    run = start_run_record()
    WaitForMdm(
        task_id="wait_for_mdm",
        poke_interval=300,
        mode="reschedule",
        timeout=(_settings.nightly_start_delay_hours + 12) * 3600,
    ) >> run
    version = resolve_champion(run)
    extracted = extract(run)
    version >> extracted
    shards = validate(run)
    extracted >> shards
    scored = score_shard.partial(run=run, model_version=version).expand(shard=shards)
    refresh_usage_rollup(run) >> scored
    scored >> finish_run_record(run)


vee_nightly_scoring()
