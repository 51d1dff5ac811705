"""
### VEE weekly retraining (`vee_weekly_retraining`)

Trains the model that resolves VEE exceptions from analysts' decisions. The run whose logical
date is **D** trains on labels (ANALYST_RESOLVED exceptions with a row in
`mdm.analyst_resolution`) resolved **before the start of D** in the utility's time zone
(`VEE_TIMEZONE`), and evaluates on the most recent of them (read dates in the last
`VEE_HOLDOUT_DAYS` days: a time-ordered holdout). `vee train --as-of D` runs the same steps
without a scheduler; `airflow dags test vee_weekly_retraining D` runs this DAG for D.

**Steps** (one task each; all logic in `vee_tasks.training`; tasks pass the run directory
`<data dir>/runs/<run id>/` through XCom):
1. `extract_labels`: labels into `labels.parquet`; a label whose resolution code is not one
   of the contract's is left out with a warning. Fails at once (no retry) below
   `VEE_MIN_TRAINING_LABELS` labels, or above `VEE_MAX_INVALID_LABEL_SHARE` left out.
2. `build_features`: the same feature code as the nightly scoring
   (`vee_tasks.features.build_features`, point in time at each exception's `raised_at`),
   joined to the labels, split into train / calibration / holdout by read date.
3. `validate`: Great Expectations suite `expectations/training_set.json` (schema, label
   domain, nulls, ranges, class balance). A failure stops the run: nothing is trained or
   registered. Data Docs: `<reports_dir>/training/<D>/<run id>/index.html`.
4. `train_sklearn` and `train_keras` (in parallel): gradient boosting and a Keras network with
   embeddings, each calibrated by temperature scaling on the calibration slice, with per-class
   auto-apply thresholds for `VEE_TARGET_PRECISION` chosen on that slice too; scored on the
   holdout, which so measures the thresholds out of sample.
5. `evaluate`: the per-rule majority baseline, both candidates and the current champion on
   the same holdout; the best candidate by macro-F1. Runs if at least one candidate trained.
6. `register_and_promote`: an MLflow run (params, metrics, confusion matrix, reliability
   diagram, training-set digest), the best candidate registered as a new version of
   `vee-resolution`. Alias `champion` moves only if it beats the per-rule baseline and the
   champion's macro-F1 by `VEE_PROMOTION_MARGIN` and beyond the holdout's noise (paired
   bootstrap, `VEE_PROMOTION_SE_MULTIPLE`), with no class's recall dropping more than
   `VEE_MAX_RECALL_DROP` and no class of the training set missing from the holdout (with no
   usable champion: if it beats the baseline); otherwise the version gets alias `challenger`. Decision and reason are version tags and a row in
   `vee.training_run`.

**Failures**: the failure callback marks `vee.training_run` FAILED (or DQ_FAILED) and alerts.
A run that ends without register_and_promote and without a task callback (a task marked
failed or success by hand) is recorded FAILED by the DAG's own callback, a whole run marked
failed in the UI by the next run (after 24 h).
Reruns are idempotent: each attempt starts its run directory afresh, and the version a run id
registered is found again in the registry (by run id and training-set digest).

Owner: VEE automation team (vee-training).
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.sdk import CronTriggerTimetable, dag, get_current_context, task

from vee_tasks import alerting
from vee_tasks.config import WEEKLY_DAG_ID, get_settings

_settings = get_settings()


def _tasks():
    from vee_tasks.training import dag_tasks

    return dag_tasks


def _record_failure(context) -> None:
    _tasks().on_task_failure(context)


def _reconcile_success(context) -> None:
    _tasks().on_dag_run_finished(context, "success")


def _reconcile_failure(context) -> None:
    _tasks().on_dag_run_finished(context, "failed")


DEFAULT_ARGS = {
    "owner": "vee-training",
    # a hung query fails its task instead of holding the run (and the next) for good
    "execution_timeout": dt.timedelta(hours=_settings.task_timeout_hours),
    "retries": 1,
    "retry_delay": dt.timedelta(minutes=2),
    "on_failure_callback": [_record_failure, alerting.on_failure],
}


@dag(
    dag_id=WEEKLY_DAG_ID,
    # Sundays 02:00 in the utility's zone, after Saturday's nightly scoring. A trigger
    # timetable: the run's logical date is the Sunday it fires, so it trains on every label
    # resolved before that Sunday (a data-interval timetable would date it a week earlier,
    # and each run would miss the last week's labels).
    schedule=CronTriggerTimetable("0 2 * * 0", timezone=_settings.timezone),
    # Far back on purpose (a Sunday): a logical date before start_date runs no task and
    # still reports success. catchup=False: no runs are created for the weeks in between.
    start_date=pendulum.datetime(2000, 1, 2, tz=_settings.timezone),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    on_success_callback=_reconcile_success,
    on_failure_callback=_reconcile_failure,
    doc_md=__doc__,
    tags=["vee", "weekly", "training"],
)
def vee_weekly_retraining():
    @task(task_id="extract_labels")
    def extract_labels() -> str:
        return _tasks().extract_labels(get_current_context())

    @task(task_id="build_features")
    def build_features(run_dir: str) -> str:
        return _tasks().build_features(run_dir)

    @task(task_id="validate", retries=0)
    def validate(run_dir: str) -> str:
        return _tasks().validate(run_dir)

    @task(task_id="train_sklearn")
    def train_sklearn(run_dir: str) -> dict:
        return _tasks().train(run_dir, "sklearn")

    @task(task_id="train_keras")
    def train_keras(run_dir: str) -> dict:
        return _tasks().train(run_dir, "keras")

    @task(task_id="evaluate", trigger_rule="all_done_min_one_success")
    def evaluate(run_dir: str) -> dict:
        return _tasks().evaluate(run_dir)

    @task(task_id="register_and_promote")
    def register_and_promote(run_dir: str) -> dict:
        return _tasks().register(run_dir)

    run_dir = validate(build_features(extract_labels()))
    trained = [train_sklearn(run_dir), train_keras(run_dir)]
    evaluated = evaluate(run_dir)
    trained >> evaluated
    evaluated >> register_and_promote(run_dir)


weekly_dag = vee_weekly_retraining()
