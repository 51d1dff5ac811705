"""The nightly DAG on real distributed execution (slow): CeleryExecutor with Redis, PostgreSQL
metadata, api-server, scheduler, dag-processor and two named Celery workers. The shards run on
both workers and the decisions equal a local `vee score` run on a copy of the warehouse."""

from __future__ import annotations

import time

import pytest

from vee_tasks.celery_runtime import create_database, drop_database, start_distributed_stack
from vee_tasks.config import NIGHTLY_DAG_ID
from vee_tasks.dates import day_start

from .conftest import SCORE_DATES, decisions_by_exception, scoring_counts, vee

pytestmark = pytest.mark.slow

REDIS_DB = 13  # this test's own Redis database number on 127.0.0.1:6379 (flushed at start)
WORKERS = ("w1", "w2")


def test_nightly_run_on_two_celery_workers_matches_a_local_run(
    champion_warehouse, server_url, tmp_path
):
    day = SCORE_DATES[-1]
    local_url = champion_warehouse.copy("local")
    celery_url = champion_warehouse.copy("celery")

    started = time.monotonic()
    vee(champion_warehouse.env(local_url), "score", "--read-date", day.isoformat())
    local_seconds = time.monotonic() - started

    meta_name = f"airflow_meta_celery_{champion_warehouse.tag}"
    metadata_url = create_database(server_url, meta_name)
    stack = start_distributed_stack(
        home=tmp_path / "airflow", metadata_url=metadata_url, executor="CeleryExecutor",
        broker_url=f"redis://127.0.0.1:6379/{REDIS_DB}", workers=WORKERS, concurrency=2,
        extra_env=champion_warehouse.airflow_env(celery_url),
    )
    try:
        stack.wait_for_dag(NIGHTLY_DAG_ID)
        stack.wait_for_workers()
        stack.airflow("dags", "unpause", NIGHTLY_DAG_ID)
        started = time.monotonic()
        stack.airflow("dags", "trigger", NIGHTLY_DAG_ID,
                      "--logical-date", day_start(day, "America/Toronto").isoformat())
        (run,) = stack.wait_for_runs(NIGHTLY_DAG_ID, 1, timeout=1800)
        celery_seconds = time.monotonic() - started
        assert run["state"] == "success", stack.stack.log_tail("scheduler", 60)

        tis = stack.task_instances(NIGHTLY_DAG_ID, run["run_id"])
        shards = {ti["map_index"]: ti["hostname"] for ti in tis if ti["task_id"] == "score_shard"}
        print(f"\nlocal `vee score` of {day}: {local_seconds:.1f} s; Celery DAG run: "
              f"{celery_seconds:.1f} s wall (trigger to success)")
        for ti in tis:
            print(f"  {ti['task_id']:<18} map {ti['map_index']:>2}  {ti['state']:<8} on "
                  f"{ti['hostname']}  ({(ti['end_date'] - ti['start_date']).total_seconds():.1f} s)")

        # Every task ran on one of the two named workers, and the shards on both of them.
        assert all(ti["state"] == "success" for ti in tis)
        assert {ti["hostname"].split("@")[0] for ti in tis} <= set(WORKERS)
        assert len(shards) >= 2
        assert {host.split("@")[0] for host in shards.values()} == set(WORKERS), shards
        # The workers' own logs agree with the metadata database.
        for worker in WORKERS:
            logged = {(t, m) for t, r, m in stack.worker_workloads(worker) if r == run["run_id"]}
            recorded = {(ti["task_id"], ti["map_index"]) for ti in tis
                        if ti["hostname"].split("@")[0] == worker}
            assert logged == recorded, (worker, logged, recorded)
        # The last task's success callback regenerated the summary page, which links to this
        # run's report (the callback may finish just after the run is marked done).
        summary = champion_warehouse.data_dir / "reports" / "summary" / "index.html"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (
                summary.exists() and run["run_id"] in summary.read_text()):
            time.sleep(2)
        page = summary.read_text()
        assert run["run_id"] in page and 'report</a>' in page
    finally:
        stack.stop()
        drop_database(server_url, meta_name)

    # Same decisions, statuses and counts as the local run on identical data.
    local, distributed = decisions_by_exception(local_url), decisions_by_exception(celery_url)
    assert local and distributed == local
    local_counts, celery_counts = scoring_counts(local_url, [day]), scoring_counts(celery_url, [day])
    assert celery_counts == local_counts
    assert celery_counts["runs"][0]["status"] == "SUCCESS"
