"""Backfills through a running scheduler: the CLI and the REST API score exactly the asked
read dates, and reprocessing completed dates gives the same counts (slow)."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import sqlalchemy as sa

from vee_tasks.celery_runtime import create_database, drop_database, start_distributed_stack
from vee_tasks.config import NIGHTLY_DAG_ID
from vee_tasks.dates import day_start, read_date_for

from .conftest import SCORE_DATES, decisions_by_exception, scoring_counts

pytestmark = pytest.mark.slow
TZ = "America/Toronto"


def _read_dates(runs) -> list[dt.date]:
    return sorted(read_date_for(r["logical_date"], TZ) for r in runs)


def test_backfill_cli_then_api_reprocess(champion_warehouse, server_url, tmp_path):
    warehouse = champion_warehouse.copy("backfill")
    meta_name = f"airflow_meta_bf_{champion_warehouse.tag}"
    metadata_url = create_database(server_url, meta_name)
    stack = start_distributed_stack(
        home=tmp_path / "airflow", metadata_url=metadata_url, executor="LocalExecutor",
        extra_env=champion_warehouse.airflow_env(warehouse),
    )
    first, last = SCORE_DATES[0], SCORE_DATES[-1]
    # The API takes instants: local midnight of the first and last read date.
    api_range = {"dag_id": NIGHTLY_DAG_ID, "from_date": day_start(first, TZ).isoformat(),
                 "to_date": day_start(last, TZ).isoformat()}
    try:
        stack.wait_for_dag(NIGHTLY_DAG_ID)
        stack.airflow("dags", "unpause", NIGHTLY_DAG_ID)

        # 1. The CLI writes the backfill into the metadata database; the scheduler runs it.
        started = time.monotonic()
        stack.airflow("backfill", "create", "--dag-id", NIGHTLY_DAG_ID,
                      "--from-date", first.isoformat(), "--to-date", last.isoformat())
        runs = stack.wait_for_runs(NIGHTLY_DAG_ID, 3, timeout=2400,
                                   where=lambda r: r["run_type"] == "backfill")
        cli_seconds = time.monotonic() - started
        print(f"\nbackfill of 3 read dates (CLI, LocalExecutor): {cli_seconds:.1f} s wall")

        assert [r["state"] for r in runs] == ["success"] * 3, runs
        assert _read_dates(runs) == SCORE_DATES
        assert len(stack.dag_runs(NIGHTLY_DAG_ID)) == 3  # nothing but the backfill ran
        before = scoring_counts(warehouse, SCORE_DATES)
        decisions_before = decisions_by_exception(warehouse)
        assert [r["read_date"] for r in before["runs"]] == SCORE_DATES
        assert all(r["status"] == "SUCCESS" for r in before["runs"])
        assert all(r["selected"] > 0 and r["scored"] > 0 for r in before["runs"])
        engine = sa.create_engine(warehouse)
        with engine.connect() as conn:
            scored_dates = [r[0] for r in conn.execute(sa.text(
                "SELECT DISTINCT read_date FROM vee.exception_resolution ORDER BY 1"))]
            open_left = conn.execute(sa.text(
                "SELECT count(*) FROM mdm.vee_exception WHERE status = 'OPEN'"
                " AND read_date = ANY(:d)"), {"d": SCORE_DATES}).scalar()
            quarantined = conn.execute(sa.text(
                "SELECT count(*) FROM vee.quarantined_exception")).scalar()
            first_finished = conn.execute(sa.text(
                "SELECT max(finished_at) FROM vee.scoring_run")).scalar()
        assert scored_dates == SCORE_DATES  # exactly those read dates, no other
        assert open_left == quarantined  # everything decided except the quarantine

        # 2. The same dates through the REST API, reprocessing the completed runs.
        status, body = stack.api("POST", "backfills/dry_run",
                                 {**api_range, "reprocess_behavior": "none"})
        assert status == 200 and body["total_entries"] == 0, body  # completed: nothing to do
        # One active backfill per DAG: the scheduler marks the first one complete shortly
        # after its last run finished.
        status, body = stack.api("GET", f"backfills?dag_id={NIGHTLY_DAG_ID}")
        assert status == 200 and len(body["backfills"]) == 1, body
        _wait_backfill_complete(stack, body["backfills"][0]["id"])
        started = time.monotonic()
        status, body = stack.api("POST", "backfills", {
            **api_range, "reprocess_behavior": "completed", "max_active_runs": 1})
        assert status == 200, body
        backfill_id = body["id"]
        _wait_backfill_complete(stack, backfill_id)
        api_seconds = time.monotonic() - started
        print(f"backfill of 3 read dates (REST API, reprocess completed): {api_seconds:.1f} s wall")

        runs = stack.dag_runs(NIGHTLY_DAG_ID)
        assert [r["state"] for r in runs] == ["success"] * 3, runs
        assert all(r["backfill_id"] == backfill_id for r in runs)  # the same runs, reprocessed
        with engine.connect() as conn:
            second_started = conn.execute(sa.text(
                "SELECT min(started_at) FROM vee.scoring_run")).scalar()
        engine.dispose()
        assert second_started > first_finished  # every date was scored again
        after = scoring_counts(warehouse, SCORE_DATES)
        assert after == before
        # Same decisions row for row (an unchanged decision keeps its scored_at).
        assert decisions_by_exception(warehouse) == decisions_before
    finally:
        stack.stop()
        drop_database(server_url, meta_name)


def _wait_backfill_complete(stack, backfill_id: int, timeout: float = 2400) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.stack._check_alive()
        status, body = stack.api("GET", f"backfills/{backfill_id}")
        assert status == 200, body
        if body.get("completed_at"):
            return
        time.sleep(5)
    raise AssertionError(f"backfill {backfill_id} not complete after {timeout:.0f}s")
