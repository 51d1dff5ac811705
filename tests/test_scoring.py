"""Nightly scoring on a simulated warehouse with a trained champion (no scheduler).

`score_read_date` and the step functions the DAG calls: every decidable exception scored or
quarantined, one resolution row each, statuses per the contract, reruns identical, analysts
always win, empty days and a missing champion.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from vee_tasks import registry
from vee_tasks.config import RESOLUTION_CODES, get_settings
from vee_tasks.registry import NoChampionError
from vee_tasks.scoring import steps
from vee_tasks.scoring.pipeline import score_read_date
from vee_tasks.scoring.steps import decide

DECIDABLE = ("OPEN", "AUTO_RESOLVED", "PENDING_REVIEW")
STATUS_FOR = {"AUTO_APPLY": "AUTO_RESOLVED", "REVIEW": "PENDING_REVIEW"}


def _exceptions(conn, day):
    return pd.read_sql(
        sa.text(
            "SELECT exception_id, status, status_changed_at FROM mdm.vee_exception "
            "WHERE read_date = :d ORDER BY exception_id"
        ),
        conn,
        params={"d": day},
    )


def _resolutions(conn, day):
    return pd.read_sql(
        sa.text(
            "SELECT exception_id, read_date, predicted_resolution, confidence, "
            "probabilities::text AS probabilities, decision, model_name, model_version, "
            "dag_run_id, scored_at FROM vee.exception_resolution WHERE read_date = :d "
            "ORDER BY exception_id"
        ),
        conn,
        params={"d": day},
    )


def _steps_until_validated(engine, run_id, day, settings):
    steps.start_run(engine, run_id, day)
    version = steps.resolve_champion(engine, run_id, settings)
    steps.extract(engine, run_id, day, settings)
    shards = steps.validate(engine, run_id, day, settings)
    return version, shards


def test_decide_applies_the_threshold_of_the_predicted_code():
    proba = pd.DataFrame(
        [[0.97, 0.01, 0.01, 0.005, 0.005], [0.2, 0.7, 0.05, 0.05, 0.0], [0.1, 0.1, 0.1, 0.1, 0.6]],
        columns=["ACCEPT", "ESTIMATE", "EDIT", "REREAD", "FIELD_ORDER"],
        index=pd.Index([11, 12, 13], name="exception_id"),
    )
    out = decide(proba, {"ACCEPT": 0.95, "ESTIMATE": 0.75, "FIELD_ORDER": 0.6})
    assert list(out["predicted_resolution"]) == ["ACCEPT", "ESTIMATE", "FIELD_ORDER"]
    assert list(out["decision"]) == ["AUTO_APPLY", "REVIEW", "AUTO_APPLY"]
    assert out["confidence"].tolist() == [0.97, 0.7, 0.6]
    # codes the operator keeps for analysts (VEE_AUTO_APPLY_CODES) are never auto-applied
    kept = decide(proba, {"ACCEPT": 0.95, "ESTIMATE": 0.75, "FIELD_ORDER": 0.6},
                  auto_apply_codes=("ACCEPT", "ESTIMATE"))
    assert list(kept["decision"]) == ["AUTO_APPLY", "REVIEW", "REVIEW"]


def test_a_night_scores_every_decidable_exception_and_a_rerun_is_identical(world_engine, scoring_world):
    engine, day = world_engine, scoring_world.days[-1]
    with engine.connect() as conn:
        before = _exceptions(conn, day)
        analyst_before = conn.execute(sa.text(
            "SELECT exception_id, status, status_changed_at FROM mdm.vee_exception "
            "WHERE status = 'ANALYST_RESOLVED' ORDER BY 1")).fetchall()
    decidable = before[before["status"].isin(DECIDABLE)]
    assert len(decidable) > 0

    run = score_read_date(engine, day, run_id="night_1")
    assert run.status == "SUCCESS", run.message
    assert run.selected == len(decidable)
    assert run.selected == run.scored + run.quarantined + run.skipped_analyst
    assert run.scored == run.auto_applied + run.sent_to_review
    assert run.model_version == scoring_world.version
    assert run.dq_outcome == "PASSED" and run.dq_report_path.endswith("index.html")
    assert "selected" in run.describe()

    with engine.connect() as conn:
        after = _exceptions(conn, day).set_index("exception_id")
        first = _resolutions(conn, day)
        quarantined = conn.execute(sa.text(
            "SELECT count(*) FROM vee.quarantined_exception WHERE read_date = :d"), {"d": day}).scalar()
        analyst_after = conn.execute(sa.text(
            "SELECT exception_id, status, status_changed_at FROM mdm.vee_exception "
            "WHERE status = 'ANALYST_RESOLVED' ORDER BY 1")).fetchall()
    assert quarantined == run.quarantined
    assert len(first) == run.scored and first["exception_id"].is_unique
    assert set(first["exception_id"]) <= set(decidable["exception_id"])
    for row in first.itertuples():
        assert after.loc[row.exception_id, "status"] == STATUS_FOR[row.decision]
        assert row.model_version == scoring_world.version and row.dag_run_id == "night_1"
        # the code is the most probable one, its confidence that probability (the shard
        # sends the code as a position in RESOLUTION_CODES: a shifted vocabulary shows here)
        probabilities = json.loads(row.probabilities)
        assert set(probabilities) == set(RESOLUTION_CODES)
        assert row.predicted_resolution == max(probabilities, key=probabilities.get)
        assert row.confidence == pytest.approx(probabilities[row.predicted_resolution], abs=1e-12)
    assert set(first["decision"]) <= {"AUTO_APPLY", "REVIEW"} and "REVIEW" in set(first["decision"])
    assert analyst_after == analyst_before  # analysts' rows untouched

    again = score_read_date(engine, day, run_id="night_2")
    assert (again.selected, again.scored, again.quarantined) == (run.selected, run.scored, run.quarantined)
    with engine.connect() as conn:
        second = _resolutions(conn, day)
        after_again = _exceptions(conn, day).set_index("exception_id")
    # same rows, not more; unchanged decisions are not rewritten (scored_at, run id kept)
    pd.testing.assert_frame_equal(first, second)
    pd.testing.assert_frame_equal(after, after_again)

    # `vee score --read-date D` twice: one run id per date, so one run record, not two
    # (found in review on 2026-11-27: each call added a record and a report folder)
    from vee_tasks.scoring.pipeline import default_run_id

    for _ in range(2):
        cli_run = score_read_date(engine, day)
        assert cli_run.status == "SUCCESS" and cli_run.dag_run_id == default_run_id(day)
    with engine.connect() as conn:
        cli_records = conn.execute(sa.text(
            "SELECT count(*) FROM vee.scoring_run WHERE dag_run_id LIKE 'cli\\_\\_%'")).scalar()
        pd.testing.assert_frame_equal(_exceptions(conn, day).set_index("exception_id"), after)
    assert cli_records == 1
    report_dirs = list((get_settings().reports_dir / "nightly" / day.isoformat()).glob("cli__*"))
    assert len(report_dirs) == 1


def test_an_analyst_resolution_during_the_run_wins(world_engine, scoring_world):
    """Resolved after extract and before write-back: status kept, no resolution row."""
    engine, day = world_engine, scoring_world.days[-2]
    settings = get_settings()
    version, shards = _steps_until_validated(engine, "race_1", day, settings)
    with engine.begin() as conn:
        target = conn.execute(sa.text(
            "SELECT exception_id FROM vee.nightly_extract WHERE dag_run_id = 'race_1' "
            "AND failed_checks IS NULL ORDER BY exception_id LIMIT 1")).scalar()
        conn.execute(sa.text(
            "UPDATE mdm.vee_exception SET status = 'ANALYST_RESOLVED', status_changed_at = now() "
            "WHERE exception_id = :e"), {"e": target})
    results = [steps.score_shard(engine, "race_1", day, s, version, settings) for s in shards]
    summary = steps.finish_run(engine, "race_1", settings)
    assert sum(r["skipped_analyst"] for r in results) == 1
    run = steps.ScoringRun.load(engine, "race_1")
    assert run.skipped_analyst == 1 and run.selected == run.scored + run.quarantined + 1
    assert "skipped" in summary
    with engine.connect() as conn:
        status = conn.execute(sa.text("SELECT status FROM mdm.vee_exception WHERE exception_id = :e"),
                              {"e": target}).scalar()
        written = conn.execute(sa.text("SELECT count(*) FROM vee.exception_resolution WHERE exception_id = :e"),
                               {"e": target}).scalar()
    assert status == "ANALYST_RESOLVED" and written == 0


class _CommitWhenBlocking:
    """A transaction of another session (an analyst, another run) that commits only once the
    server shows the shard's connection waiting for it: `before_write` starts the watch,
    `join()` waits for the commit. Commits whatever happens: a shard never waits for good."""

    def __init__(self, engine, holder, tx):
        self.engine, self.tx = engine, tx
        self.holder_pid = holder.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        self.blocked = False
        self.thread = None

    def _watch(self, shard_pid: int) -> None:
        try:
            with self.engine.connect() as watcher:
                for _ in range(600):
                    if watcher.execute(sa.text("SELECT CAST(:a AS int) = ANY(pg_blocking_pids(:s))"),
                                       {"a": self.holder_pid, "s": shard_pid}).scalar():
                        self.blocked = True
                        break
                    time.sleep(0.1)
        finally:
            self.tx.commit()

    def before_write(self, conn) -> None:
        shard_pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        self.thread = threading.Thread(target=self._watch, args=(shard_pid,))
        self.thread.start()

    def join(self) -> None:
        self.thread.join()


def test_an_analyst_committing_while_the_shard_waits_for_its_lock_wins(world_engine, scoring_world):
    """The analyst holds the row when the shard locks; the shard waits, then skips it."""
    engine, day = world_engine, scoring_world.days[-3]
    settings = get_settings()
    version, shards = _steps_until_validated(engine, "race_2", day, settings)
    with engine.connect() as conn:
        target, shard = conn.execute(sa.text(
            "SELECT exception_id, shard FROM vee.nightly_extract WHERE dag_run_id = 'race_2' "
            "AND failed_checks IS NULL ORDER BY exception_id LIMIT 1")).one()
    analyst = engine.connect()
    tx = analyst.begin()
    analyst.execute(sa.text(
        "UPDATE mdm.vee_exception SET status = 'ANALYST_RESOLVED', status_changed_at = now() "
        "WHERE exception_id = :e"), {"e": target})
    commit = _CommitWhenBlocking(engine, analyst, tx)  # the analyst commits once the shard waits
    result = steps.score_shard(engine, "race_2", day, shard, version, settings,
                               before_write=commit.before_write)
    commit.join()
    analyst.close()
    assert commit.blocked  # the shard did wait for the analyst's transaction
    assert result["skipped_analyst"] == 1
    with engine.connect() as conn:
        status = conn.execute(sa.text("SELECT status FROM mdm.vee_exception WHERE exception_id = :e"),
                              {"e": target}).scalar()
        written = conn.execute(sa.text("SELECT count(*) FROM vee.exception_resolution WHERE exception_id = :e"),
                               {"e": target}).scalar()
    assert status == "ANALYST_RESOLVED" and written == 0


@pytest.fixture
def own_world(databases, scoring_world, monkeypatch):
    """A copy of the scoring world of the test's own (its statuses change as it likes)."""
    from robustness_support import clone_database
    from scoring_fixtures import _apply_env

    from vee_tasks.config import reset_settings_cache

    url = clone_database(databases, scoring_world.pristine_url, "own")
    _apply_env(monkeypatch, {**scoring_world.env(), "VEE_WAREHOUSE_URL": url})
    reset_settings_cache()
    engine = sa.create_engine(url)
    yield engine, scoring_world
    engine.dispose()
    reset_settings_cache()


@pytest.mark.parametrize("moved_to", ["the other decided status", "OPEN"])
def test_a_row_another_run_of_the_date_moves_while_the_shard_waits_is_written_not_skipped(own_world, moved_to):
    """Two runs of one read date at once (a scheduled run and an operator's, models apart):
    the other run moved a row from this run's status to another system status after this
    run's status UPDATE had read it. The shard's lock waited for it, then dropped the row
    and counted it "skipped (analyst resolved meanwhile)" though no analyst had touched it,
    and the other run's status stayed beside this run's counts (outside probe, 2026-11-29).
    Now the row is locked and written: the run that writes last decides, status and
    resolution row alike, and no analyst is blamed. A row the other run set back to OPEN
    (it quarantined the exception) is left OPEN: a quarantined exception is not decided."""
    engine, world = own_world
    day = world.days[-2]
    settings = get_settings()
    version, shards = _steps_until_validated(engine, "first", day, settings)
    for shard in shards:
        steps.score_shard(engine, "first", day, shard, version, settings)
    steps.finish_run(engine, "first", settings)
    version, shards = _steps_until_validated(engine, "second", day, settings)
    with engine.connect() as conn:
        target, shard, status = conn.execute(sa.text(
            "SELECT x.exception_id, x.shard, e.status FROM vee.nightly_extract x "
            "JOIN mdm.vee_exception e USING (exception_id) WHERE x.dag_run_id = 'second' "
            "AND x.failed_checks IS NULL ORDER BY x.exception_id LIMIT 1")).one()
    # "the other run": the row at the other system status, not yet committed
    elsewhere = "AUTO_RESOLVED" if status == "PENDING_REVIEW" else "PENDING_REVIEW"
    if moved_to == "OPEN":
        elsewhere = "OPEN"
    other = engine.connect()
    tx = other.begin()
    other.execute(sa.text("UPDATE mdm.vee_exception SET status = :s, status_changed_at = now() "
                          "WHERE exception_id = :e"), {"s": elsewhere, "e": target})
    commit = _CommitWhenBlocking(engine, other, tx)
    result = steps.score_shard(engine, "second", day, shard, version, settings,
                               before_write=commit.before_write)
    commit.join()
    other.close()
    assert commit.blocked  # the shard did wait for the other run's transaction
    if moved_to == "OPEN":
        assert result["skipped_analyst"] == 1
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT status FROM mdm.vee_exception WHERE "
                                        "exception_id = :e"), {"e": target}).scalar() == "OPEN"
        return
    assert result["skipped_analyst"] == 0
    with engine.connect() as conn:
        now_status, decision, run_id = conn.execute(sa.text(
            "SELECT e.status, r.decision, r.dag_run_id FROM mdm.vee_exception e "
            "JOIN vee.exception_resolution r USING (exception_id) WHERE exception_id = :e"),
            {"e": target}).one()
    assert now_status == status == STATUS_FOR[decision]  # this run's status, and its row's
    assert run_id in ("first", "second")  # an unchanged decision keeps the first run's row


_VALIDATE_IN_A_PROCESS = """
import datetime as dt, sys
import sqlalchemy as sa
from vee_tasks.scoring import steps
engine = sa.create_engine(sys.argv[1])
steps.validate(engine, sys.argv[2], dt.date.fromisoformat(sys.argv[3]))
"""


@pytest.mark.slow
def test_two_runs_of_a_date_validating_at_once_leave_one_quarantine_row_per_exception(own_world):
    """Two runs of one read date validate at once (a scheduled run and an operator's): each
    deleted the date's quarantine rows of its exceptions and inserted its own, and neither
    DELETE saw the other's uncommitted INSERT, so both sets stayed; an analyst's resolution
    then kept the duplicates for good (outside probe, 2026-11-29, made certain as there: a
    session holds the date's quarantine rows while both runs reach their DELETE)."""
    import os
    import subprocess
    import sys

    engine, world = own_world
    day = world.days[-3]
    settings = get_settings()
    with engine.begin() as conn:
        bad = conn.execute(sa.text(
            "UPDATE mdm.vee_exception SET observed_value = 'NaN' WHERE exception_id IN ("
            "SELECT exception_id FROM mdm.vee_exception WHERE read_date = :d AND status = 'OPEN' "
            "ORDER BY exception_id LIMIT 2) RETURNING exception_id"), {"d": day}).scalars().all()
    assert len(bad) == 2
    _steps_until_validated(engine, "earlier", day, settings)  # the date's quarantine rows
    for run_id in ("run_a", "run_b"):
        steps.start_run(engine, run_id, day)
        steps.resolve_champion(engine, run_id, settings)
        steps.extract(engine, run_id, day, settings)
    url = engine.url.render_as_string(hide_password=False)
    holder = engine.connect()
    tx = holder.begin()
    held = holder.execute(sa.text("SELECT quarantine_id FROM vee.quarantined_exception "
                                  "WHERE read_date = :d FOR UPDATE"), {"d": day}).fetchall()
    assert len(held) == 2
    processes = [subprocess.Popen([sys.executable, "-c", _VALIDATE_IN_A_PROCESS, url, run_id,
                                   day.isoformat()],
                                  env=dict(os.environ), stderr=subprocess.PIPE, text=True)
                 for run_id in ("run_a", "run_b")]
    try:
        waiting = 0
        with engine.connect() as watcher:
            for _ in range(1800):  # both runs at their quarantine write, waiting on a lock
                waiting = watcher.execute(sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND pid <> :h"),
                    {"h": holder.exec_driver_sql("SELECT pg_backend_pid()").scalar()}).scalar()
                watcher.rollback()  # pg_stat_activity is a snapshot per transaction
                if waiting >= 2 or any(p.poll() is not None for p in processes):
                    break
                time.sleep(0.1)
    finally:
        tx.commit()
        holder.close()
    outputs = [p.communicate(timeout=600)[1] for p in processes]
    codes = [p.returncode for p in processes]
    assert codes == [0, 0], [o[-2000:] for o in outputs]
    assert waiting >= 2
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT exception_id, count(*) FROM vee.quarantined_exception WHERE read_date = :d "
            "GROUP BY exception_id ORDER BY exception_id"), {"d": day}).fetchall()
    assert [(r[0], r[1]) for r in rows] == [(e, 1) for e in sorted(bad)]


def _score_validated_run(engine, run_id, day, shards, version, settings, model) -> None:
    """Every shard of a validated run scored with `model`, then the run finished."""
    for shard in shards:
        steps.score_shard(engine, run_id, day, shard, version, settings, model=model)
    steps.finish_run(engine, run_id, settings)


def _with_threshold(champion, threshold: float):
    """The champion's own predictor under one threshold for every code: 0 applies every
    decision, 2 none."""
    return registry.LoadedModel(
        name=champion.name, version=champion.version, predictor=champion.predictor,
        thresholds={code: threshold for code in champion.thresholds},
    )


def test_auto_apply_sets_auto_resolved_and_a_newer_decision_replaces_the_row(world_engine, scoring_world):
    """The champion's real predictor with a permissive policy: AUTO_APPLY -> AUTO_RESOLVED.
    A later run under the strict policy (a newer model's view) updates the same rows."""
    engine, day = world_engine, scoring_world.days[-4]
    settings = get_settings()
    version, shards = _steps_until_validated(engine, "auto_1", day, settings)
    champion = registry.load_model_version(version, settings)
    permissive = _with_threshold(champion, 0.0)
    _score_validated_run(engine, "auto_1", day, shards, version, settings, permissive)
    run = steps.ScoringRun.load(engine, "auto_1")
    assert run.scored > 0 and run.auto_applied == run.scored and run.sent_to_review == 0
    with engine.connect() as conn:
        statuses = conn.execute(sa.text(
            "SELECT DISTINCT e.status FROM mdm.vee_exception e JOIN vee.exception_resolution r "
            "USING (exception_id) WHERE r.read_date = :d"), {"d": day}).scalars().all()
    assert statuses == ["AUTO_RESOLVED"]

    strict = _with_threshold(champion, 2.0)
    _steps_until_validated(engine, "auto_2", day, settings)
    _score_validated_run(engine, "auto_2", day, shards, version, settings, strict)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT r.decision, r.dag_run_id, e.status FROM vee.exception_resolution r "
            "JOIN mdm.vee_exception e USING (exception_id) WHERE r.read_date = :d"), {"d": day}).fetchall()
    assert len(rows) == run.scored
    assert {tuple(r) for r in rows} == {("REVIEW", "auto_2", "PENDING_REVIEW")}
    # the operator's policy holds whatever the model says: codes left out of
    # VEE_AUTO_APPLY_CODES always go to review (here: every code but one)
    only_edit = settings.with_overrides(auto_apply_codes=("EDIT",))
    _steps_until_validated(engine, "auto_policy", day, only_edit)
    _score_validated_run(engine, "auto_policy", day, shards, version, only_edit, permissive)
    with engine.connect() as conn:
        applied = conn.execute(sa.text(
            "SELECT DISTINCT predicted_resolution FROM vee.exception_resolution "
            "WHERE read_date = :d AND decision = 'AUTO_APPLY'"), {"d": day}).scalars().all()
        reviewed = conn.execute(sa.text(
            "SELECT count(*) FROM vee.exception_resolution WHERE read_date = :d "
            "AND decision = 'REVIEW' AND predicted_resolution <> 'EDIT'"), {"d": day}).scalar()
    assert set(applied) <= {"EDIT"} and reviewed > 0


def test_a_read_before_its_meters_install_date_is_never_auto_applied(world_engine, scoring_world):
    """Validation warns of such a row (a meter exchange recorded late, or a read booked to the
    wrong meter) and scores it; under a policy that applies everything it was still
    auto-applied (outside probe, 2026-11-29: an ESTIMATE on a read that may be another
    meter's). It goes to review, not as an audit sample; the meter's other days and the
    day's other meters are decided as before."""
    engine, day = world_engine, scoring_world.days[-4]
    settings = get_settings()
    with engine.connect() as conn:
        meter, installed_on = conn.execute(sa.text(
            "SELECT m.meter_id, m.installed_on FROM mdm.vee_exception e JOIN mdm.meter m "
            "USING (meter_id) WHERE e.read_date = :d GROUP BY 1, 2 ORDER BY count(*) DESC, 1 "
            "LIMIT 1"), {"d": day}).one()
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE mdm.meter SET installed_on = :i WHERE meter_id = :m"),
                     {"i": day + dt.timedelta(days=3), "m": meter})
    try:
        version, shards = _steps_until_validated(engine, "install_doubt", day, settings)
        champion = registry.load_model_version(version, settings)
        permissive = _with_threshold(champion, 0.0)
        _score_validated_run(engine, "install_doubt", day, shards, version, settings, permissive)
        run = steps.ScoringRun.load(engine, "install_doubt")
        assert run.status == "SUCCESS", run.message
        assert any(w.startswith("meter_installed_by_read_date: ") and "sent to review" in w
                   for w in run.dq_warnings), run.dq_warnings
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT e.meter_id = :m AS doubted, r.decision, r.audit, e.status "
                "FROM vee.exception_resolution r JOIN mdm.vee_exception e USING (exception_id) "
                "WHERE r.read_date = :d AND r.dag_run_id = 'install_doubt'"),
                {"d": day, "m": meter}).fetchall()
        doubted = {(r.decision, r.audit, r.status) for r in rows if r.doubted}
        others = {(r.decision, r.status) for r in rows if not r.doubted}
        assert doubted == {("REVIEW", False, "PENDING_REVIEW")}
        assert others == {("AUTO_APPLY", "AUTO_RESOLVED")}
        assert run.sent_to_review == sum(r.doubted for r in rows) > 0
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE mdm.meter SET installed_on = :i WHERE meter_id = :m"),
                         {"i": installed_on, "m": meter})


def test_decide_sends_rows_marked_review_only_to_review_unaudited():
    import numpy as np

    from vee_tasks.scoring.steps import review_only_rows

    proba = pd.DataFrame(
        [[0.99, 0.0025, 0.0025, 0.0025, 0.0025]] * 4,
        columns=["ACCEPT", "ESTIMATE", "EDIT", "REREAD", "FIELD_ORDER"],
        index=pd.Index([21, 22, 23, 24], name="exception_id"),
    )
    features = pd.DataFrame({"meter_age_days": [-3.0, 0.0, np.nan, 400.0]}, index=proba.index)
    marked = review_only_rows(features)
    assert marked.tolist() == [True, False, False, False]
    out = decide(proba, {"ACCEPT": 0.95}, audit_share=1.0, review_only=marked)
    assert out["decision"].tolist() == ["REVIEW", "REVIEW", "REVIEW", "REVIEW"]
    assert out["audit"].tolist() == [False, True, True, True]  # the audit draws only the others
    out = decide(proba, {"ACCEPT": 0.95}, review_only=marked)
    assert out["decision"].tolist() == ["REVIEW", "AUTO_APPLY", "AUTO_APPLY", "AUTO_APPLY"]


def test_a_decided_exception_whose_data_turns_bad_is_quarantined_and_reopened(world_engine, scoring_world):
    """The MDMS changed a scored exception's value to NaN after the run: the rerun quarantines
    it, sets it back to OPEN and withdraws its resolution row (quarantined exceptions stay
    OPEN). A row an analyst resolved since is not selected, and keeps its status and row."""
    engine, day = world_engine, scoring_world.days[-4]
    first = score_read_date(engine, day, run_id="turns_bad_1")
    assert first.status == "SUCCESS", first.message
    with engine.connect() as conn:
        decided = conn.execute(sa.text(
            "SELECT e.exception_id, e.status, e.observed_value FROM vee.exception_resolution r "
            "JOIN mdm.vee_exception e USING (exception_id) WHERE r.read_date = :d "
            "AND e.status IN ('AUTO_RESOLVED', 'PENDING_REVIEW') ORDER BY 1 LIMIT 2"), {"d": day}).fetchall()
    assert len(decided) == 2
    (bad, bad_status, bad_value), (analyst, analyst_status, analyst_value) = decided
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(
                "UPDATE mdm.vee_exception SET observed_value = 'NaN' WHERE exception_id IN (:a, :b)"),
                {"a": bad, "b": analyst})
            conn.execute(sa.text(
                "UPDATE mdm.vee_exception SET status = 'ANALYST_RESOLVED', status_changed_at = now() "
                "WHERE exception_id = :b"), {"b": analyst})
            analyst_row = conn.execute(sa.text(
                "SELECT status, status_changed_at FROM mdm.vee_exception WHERE exception_id = :b"),
                {"b": analyst}).one()

        again = score_read_date(engine, day, run_id="turns_bad_2")
        assert again.status == "SUCCESS", again.message
        assert again.selected == first.selected - 1
        assert again.quarantined == first.quarantined + 1
        with engine.connect() as conn:
            def status(exception_id):
                return conn.execute(sa.text(
                    "SELECT status, status_changed_at FROM mdm.vee_exception WHERE exception_id = :e"),
                    {"e": exception_id}).one()

            def resolution_rows(exception_id):
                return conn.execute(sa.text(
                    "SELECT count(*) FROM vee.exception_resolution WHERE exception_id = :e"),
                    {"e": exception_id}).scalar()

            checks = conn.execute(sa.text(
                "SELECT failed_checks FROM vee.quarantined_exception WHERE exception_id = :e"),
                {"e": bad}).scalars().all()
            assert status(bad).status == "OPEN"
            assert resolution_rows(bad) == 0
            assert checks == [["observed_value_finite"]]
            assert tuple(status(analyst)) == tuple(analyst_row)
            assert resolution_rows(analyst) == 1
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(
                "UPDATE mdm.vee_exception SET observed_value = :v WHERE exception_id = :e"),
                [{"v": bad_value, "e": bad}, {"v": analyst_value, "e": analyst}])
            conn.execute(sa.text("UPDATE mdm.vee_exception SET status = :s WHERE exception_id = :e"),
                         {"s": analyst_status, "e": analyst})
    restored = score_read_date(engine, day, run_id="turns_bad_3")
    assert (restored.selected, restored.quarantined) == (first.selected, first.quarantined)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT status FROM mdm.vee_exception WHERE exception_id = :e"),
                            {"e": bad}).scalar() == bad_status


def test_an_empty_day_succeeds_with_zero_counts(world_engine, scoring_world, caplog):
    """...and says why nothing was selected: a date outside the warehouse's data (an outside
    probe's backfill of dates before its data reported SUCCESS, 0 selected, with no word),
    naming the nearest read dates that have exceptions."""
    day = scoring_world.days[-1] + dt.timedelta(days=60)
    with caplog.at_level(logging.WARNING):
        run = score_read_date(world_engine, day, run_id="empty_day")
    assert run.status == "SUCCESS"
    assert (run.selected, run.scored, run.quarantined, run.auto_applied, run.sent_to_review) == (0, 0, 0, 0, 0)
    with world_engine.connect() as conn:
        summary = conn.execute(sa.text("SELECT summary FROM vee.scoring_run WHERE dag_run_id = 'empty_day'")).scalar()
        latest = conn.execute(sa.text("SELECT max(read_date) FROM mdm.vee_exception")).scalar()
    expected = (f"read date {day}: mdm.vee_exception holds no exception of this date; the nearest "
                f"read dates with exceptions: before {latest}")
    assert expected in summary
    assert any(expected in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_an_empty_day_right_after_busy_days_succeeds_and_warns(world_engine, scoring_world, caplog):
    """An empty day succeeds with zero counts even when the days before it were busy: there is
    nothing to decide, so nothing a data-quality stop would protect. Its volume far below
    theirs is a warning (has the MDMS raised the day yet?) in the log, the run's summary, its
    report and an alert. It failed the run as a volume breach (contract review, 2026-11-28)."""
    day = scoring_world.days[-1] + dt.timedelta(days=1)
    with caplog.at_level(logging.INFO):
        run = score_read_date(world_engine, day, run_id="empty_after_busy")
    assert run.status == "SUCCESS" and run.dq_outcome == "PASSED"
    assert (run.selected, run.scored, run.quarantined, run.auto_applied, run.sent_to_review) == (0, 0, 0, 0, 0)
    assert len(run.dq_warnings) == 1 and run.dq_warnings[0].startswith("volume: 0 exceptions")
    assert "none to decide" in run.dq_warnings[0] and "rerun this date" in run.dq_warnings[0]
    assert "WARNING volume: 0 exceptions" in run.describe()
    assert any("none to decide" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    # and an alert (no channel configured here: the alerting module says what it did not send)
    assert any("data-quality warning" in r.getMessage() for r in caplog.records
               if r.name == "vee_tasks.alerting")
    page = Path(run.dq_report_path).read_text(encoding="utf-8")
    assert "with a warning" in page and 'id="warnings"' in page and "none to decide" in page


def test_no_champion_fails_clearly_and_writes_nothing(world_engine, scoring_world):
    """The alias is removed (as after a rollback that left none): the run fails, says why,
    and writes nothing but its run record."""
    engine, day = world_engine, scoring_world.days[-5]
    settings = get_settings()
    client = registry.configure(settings)
    with engine.connect() as conn:
        before = (_exceptions(conn, day), conn.execute(sa.text("SELECT count(*) FROM vee.exception_resolution")).scalar(),
                  conn.execute(sa.text("SELECT count(*) FROM vee.quarantined_exception")).scalar())
    client.delete_registered_model_alias(settings.registered_model_name, "champion")
    try:
        with pytest.raises(NoChampionError):
            score_read_date(engine, day, run_id="no_champion")
    finally:
        client.set_registered_model_alias(settings.registered_model_name, "champion", scoring_world.version)
    run = steps.ScoringRun.load(engine, "no_champion")
    assert run.status == "FAILED" and "champion" in run.message
    assert "none carries the alias" in run.message  # versions exist: not "train first"
    with engine.connect() as conn:
        after = (_exceptions(conn, day), conn.execute(sa.text("SELECT count(*) FROM vee.exception_resolution")).scalar(),
                 conn.execute(sa.text("SELECT count(*) FROM vee.quarantined_exception")).scalar())
    pd.testing.assert_frame_equal(before[0], after[0])
    assert before[1:] == after[1:]


def test_a_champion_trained_on_another_warehouse_scores_nothing_here_until_adopted(
        scoring_world, fresh_engine, monkeypatch):
    """The world's champion, asked to score a warehouse it was not trained on (after `make
    demo`, a real warehouse met the demo's model in the default local registry and was
    scored with it; outside probe, 2026-11-27): the run fails at resolve_champion, before
    any row is read or written, saying how to go on; `vee model adopt` lets it."""
    from scoring_fixtures import _apply_env
    from vee_tasks.cli import main
    from vee_tasks.warehouse import warehouse_identity

    url = fresh_engine.url.render_as_string(hide_password=False)
    _apply_env(monkeypatch, {**scoring_world.env(), "VEE_WAREHOUSE_URL": url,
                             "AIRFLOW_CONN_VEE_WAREHOUSE": url.replace("+psycopg2", "")})
    settings = get_settings()
    with fresh_engine.connect() as conn:
        here = warehouse_identity(conn)
    trained_on = registry.version_info(scoring_world.version, settings).tags[registry.TAG_WAREHOUSE]
    assert here and trained_on and here != trained_on
    day = scoring_world.days[-1]
    steps.start_run(fresh_engine, "foreign", day)
    with pytest.raises(steps.RunStateError, match=f"trained on another warehouse \\({trained_on}; this one is {here}\\)"):
        steps.resolve_champion(fresh_engine, "foreign", settings)
    with fresh_engine.connect() as conn:
        run = conn.execute(sa.text("SELECT status, model_version, message FROM vee.scoring_run "
                                   "WHERE dag_run_id = 'foreign'")).one()
    assert run.status == "FAILED" and run.model_version is None
    assert f"vee model adopt {scoring_world.version}" in run.message
    assert main(["model", "adopt", scoring_world.version]) == 0
    steps.start_run(fresh_engine, "adopted", day)
    assert steps.resolve_champion(fresh_engine, "adopted", settings) == scoring_world.version
    # the world itself still scores with it
    with sa.create_engine(scoring_world.url).connect() as conn:
        assert registry.foreign_to(registry.version_info(scoring_world.version, settings).tags,
                                   warehouse_identity(conn)) is None


def test_an_attempt_that_fails_before_its_report_leaves_no_earlier_report(cloned_world, scoring_world,
                                                                          monkeypatch):
    """A retry of validate that failed before writing its page left the earlier attempt's
    page ("PASSED") in place, and `vee reports` showed it (reviewed 2026-11-27)."""
    engine, day = cloned_world, scoring_world.days[-6]
    settings = get_settings()
    steps.start_run(engine, "stale_report", day)
    steps.resolve_champion(engine, "stale_report", settings)
    steps.extract(engine, "stale_report", day, settings)
    report_dir = steps.report_dir_for(settings, day, "stale_report")
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "index.html").write_text("an earlier attempt: PASSED")

    def lost_connection(*args, **kwargs):
        raise ConnectionError("server closed the connection unexpectedly")

    monkeypatch.setattr(steps, "read_extract_frame", lost_connection)
    with pytest.raises(ConnectionError):
        steps.validate(engine, "stale_report", day, settings)
    assert not (report_dir / "index.html").exists()


def test_an_operator_rolls_the_champion_back_with_one_command(world_engine, scoring_world, capsys,
                                                             tmp_path):
    """`vee model champion N`: the next run pins version N (the README's earlier recipe
    used an unset MLFLOW_TRACKING_URI; reviewed 2026-11-27)."""
    from vee_tasks.cli import main

    settings = get_settings()
    client = registry.configure(settings)
    name = settings.registered_model_name
    source = client.get_model_version(name, scoring_world.version)
    other = client.create_model_version(name, source.source, run_id=source.run_id, tags=source.tags)
    kept = dict(source.tags)
    try:
        assert main(["model", "champion", str(other.version)]) == 0
        assert registry.resolve_champion_version(settings) == str(other.version)
        tags = registry.version_info(other.version, settings).tags
        assert tags[registry.TAG_DECISION] == "champion"
        assert "made champion by an operator" in tags[registry.TAG_REASON]
        assert f"replacing v{scoring_world.version}" in tags[registry.TAG_REASON]
        # the version it replaced no longer says champion, and keeps why training chose it
        old = registry.version_info(scoring_world.version, settings).tags
        assert old[registry.TAG_DECISION] == "replaced"
        assert f"by v{other.version}" in old[registry.TAG_REASON]
        assert old[registry.TAG_TRAINING_DECISION] == (
            f"{kept[registry.TAG_DECISION]}: {kept[registry.TAG_REASON]}")
        # rolled back: the training decision is kept once, not overwritten by the operator's
        assert main(["model", "champion", scoring_world.version]) == 0
        back = registry.version_info(scoring_world.version, settings).tags
        assert back[registry.TAG_DECISION] == "champion"
        assert back[registry.TAG_TRAINING_DECISION] == old[registry.TAG_TRAINING_DECISION]
        assert registry.version_info(other.version, settings).tags[registry.TAG_DECISION] == "replaced"
        assert main(["model", "champion", "999"]) == 2
        assert "no version '999'" in capsys.readouterr().err
        # a version whose files are gone is refused before the alias moves: it failed only
        # at the next night's first shard (outside probe 2026-11-29)
        gone = client.create_model_version(name, str(tmp_path / "moved_away"), tags=source.tags)
        assert main(["model", "champion", str(gone.version)]) == 2
        err = capsys.readouterr().err
        assert f"version {gone.version} not made champion" in err and "no files" in err
        assert registry.resolve_champion_version(settings) == scoring_world.version
    finally:
        client.set_registered_model_alias(name, "champion", scoring_world.version)
        for key in (registry.TAG_DECISION, registry.TAG_REASON):
            if key in kept:
                client.set_model_version_tag(name, scoring_world.version, key, kept[key])


def test_every_shard_scores_with_the_pinned_version_when_the_alias_moves(world_engine, scoring_world):
    """The champion alias moves to another version after the run resolved it: the shards
    still load and record the pinned one."""
    engine, day = world_engine, scoring_world.days[-7]
    settings = get_settings()
    client = registry.configure(settings)
    name = settings.registered_model_name
    pinned, shards = _steps_until_validated(engine, "pinned_1", day, settings)
    assert pinned == scoring_world.version
    source = client.get_model_version(name, pinned)
    other = client.create_model_version(name, source.source, run_id=source.run_id, tags=source.tags)
    client.set_registered_model_alias(name, "champion", other.version)
    try:
        assert registry.resolve_champion_version(settings) == str(other.version)
        for shard in shards:
            steps.score_shard(engine, "pinned_1", day, shard, pinned, settings)
        steps.finish_run(engine, "pinned_1", settings)
    finally:
        client.set_registered_model_alias(name, "champion", scoring_world.version)
    with engine.connect() as conn:
        versions = conn.execute(sa.text(
            "SELECT DISTINCT model_version FROM vee.exception_resolution WHERE dag_run_id = 'pinned_1'"
        )).scalars().all()
    assert versions == [pinned]
    assert steps.ScoringRun.load(engine, "pinned_1").model_version == pinned


def test_a_login_the_server_refuses_fails_at_once_and_a_server_down_is_retried(server_url):
    """No such database or role: no retry can help, so the task fails at once (an outside
    probe's `dags test` with a wrong database name was still retrying after 5 minutes).
    Nothing listening, as while the server restarts: retried, as before."""
    import socket

    from airflow.sdk.exceptions import AirflowFailException

    from vee_tasks.scoring.dag_tasks import _call
    from vee_tasks.scoring.errors import is_transient
    from vee_tasks.warehouse import WarehouseUnavailable, check_reachable

    def raise_(exc):
        raise exc

    def refusal(url) -> WarehouseUnavailable:
        engine = sa.create_engine(url)
        try:
            with pytest.raises(WarehouseUnavailable) as info:
                check_reachable(engine)
        finally:
            engine.dispose()
        return info.value

    url = sa.engine.make_url(server_url)
    for wrong in (url.set(database="vee_no_such_database"), url.set(username="vee_no_such_role")):
        refused = refusal(wrong)
        assert not is_transient(refused), refused
        with pytest.raises(AirflowFailException, match="does not exist"):
            _call(raise_, refused)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    down = refusal(url.set(host="127.0.0.1", port=closed_port, query={}))
    assert is_transient(down), down
    import psycopg2

    for restarting in ("FATAL:  the database system is starting up",
                       "FATAL:  the database system is in recovery mode",
                       "FATAL:  the database system is shutting down",
                       "FATAL:  sorry, too many clients already",
                       'ERROR:  relation "x" does not exist FATAL: in a comment'):
        assert is_transient(psycopg2.OperationalError(restarting)), restarting
    with pytest.raises(WarehouseUnavailable):
        _call(raise_, down)


def test_transient_errors_retry_and_everything_else_fails_at_once():
    import psycopg2
    from airflow.sdk.exceptions import AirflowFailException

    from vee_tasks.scoring.dag_tasks import _call
    from vee_tasks.scoring.errors import DataQualityError, is_transient

    lost = sa.exc.OperationalError("SELECT 1", {}, psycopg2.OperationalError("server closed the connection"))
    assert is_transient(lost)
    assert not is_transient(DataQualityError("volume"))
    assert not is_transient(NoChampionError("none"))
    assert not is_transient(sa.exc.IntegrityError("INSERT", {}, Exception("duplicate key")))

    def raise_(exc):
        raise exc

    with pytest.raises(sa.exc.OperationalError):  # Airflow retries it with backoff
        _call(raise_, lost)
    for permanent in (DataQualityError("quarantine_share"), NoChampionError("no champion")):
        with pytest.raises(AirflowFailException, match=type(permanent).__name__):
            _call(raise_, permanent)


def test_a_cleared_shard_resumes_a_failed_run(world_engine, scoring_world):
    """A shard failed for good (retries exhausted): the run is FAILED. An operator clears the
    shard once the cause is gone; it scores, and finish closes the run as SUCCESS."""
    engine, day = world_engine, scoring_world.days[-5]
    settings = get_settings()
    version, shards = _steps_until_validated(engine, "resume_1", day, settings)
    for shard in shards[1:]:
        steps.score_shard(engine, "resume_1", day, shard, version, settings)
    steps.mark_failed(engine, "resume_1", "task score_shard failed: server closed the connection")
    assert steps.ScoringRun.load(engine, "resume_1").status == "FAILED"
    steps.score_shard(engine, "resume_1", day, shards[0], version, settings)
    steps.finish_run(engine, "resume_1", settings)
    run = steps.ScoringRun.load(engine, "resume_1")
    assert run.status == "SUCCESS" and run.message is None
    assert run.selected == run.scored + run.quarantined + run.skipped_analyst


def test_shards_follow_the_days_volume(world_engine, scoring_world):
    """A shard per VEE_SHARD_MIN_ROWS decidable exceptions, at least one, at most
    VEE_SHARD_COUNT; finish checks the shards the run's extract chose."""
    defaults = get_settings().with_overrides(shard_count=4, shard_min_rows=25_000)
    assert [steps.shards_for(n, defaults) for n in (0, 1, 20_000, 25_001, 60_000, 1_000_000)] == [
        1, 1, 1, 2, 3, 4]
    engine, day = world_engine, scoring_world.days[-2]
    settings = get_settings().with_overrides(shard_min_rows=10**9)
    version, shards = _steps_until_validated(engine, "sized_1", day, settings)
    assert shards == [0]
    steps.score_shard(engine, "sized_1", day, 0, version, settings)
    steps.finish_run(engine, "sized_1", settings)
    run = steps.ScoringRun.load(engine, "sized_1")
    assert run.status == "SUCCESS", run.message
    assert run.selected == run.scored + run.quarantined + run.skipped_analyst


def test_an_exception_the_mdms_moves_to_another_read_date_is_in_one_place(
        databases, scoring_world, monkeypatch):
    """Quarantined on one read date, then corrected and moved by the MDMS to the day before
    and scored there: its old quarantine row goes (found by an outside probe on 2026-11-27:
    it stayed, so the exception was both quarantined and scored)."""
    from robustness_support import clone_database
    from scoring_fixtures import _apply_env

    url = clone_database(databases, scoring_world.url, "moved")
    _apply_env(monkeypatch, {**scoring_world.env(), "VEE_WAREHOUSE_URL": url})
    monkeypatch.delenv("AIRFLOW_CONN_VEE_WAREHOUSE", raising=False)
    engine = sa.create_engine(url)
    first_day, earlier_day = scoring_world.days[-1], scoring_world.days[-2]
    try:
        with engine.begin() as conn:
            moved, value = conn.execute(sa.text(
                "SELECT exception_id, observed_value FROM mdm.vee_exception WHERE read_date = :d "
                "AND status IN ('OPEN', 'AUTO_RESOLVED', 'PENDING_REVIEW') "
                "ORDER BY exception_id LIMIT 1"), {"d": first_day}).one()
            conn.execute(sa.text("UPDATE mdm.vee_exception SET observed_value = 'NaN' "
                                 "WHERE exception_id = :e"), {"e": moved})
        assert score_read_date(engine, first_day, run_id="moved_1").status == "SUCCESS"
        with engine.begin() as conn:
            assert conn.execute(sa.text(
                "SELECT read_date FROM vee.quarantined_exception WHERE exception_id = :e"),
                {"e": moved}).scalars().all() == [first_day]
            conn.execute(sa.text(
                "UPDATE mdm.vee_exception SET observed_value = :v, read_date = :d, "
                "window_start = window_start - interval '1 day', "
                "window_end = window_end - interval '1 day', raised_at = raised_at - interval '1 day' "
                "WHERE exception_id = :e"), {"v": value, "d": earlier_day, "e": moved})
        run = score_read_date(engine, earlier_day, run_id="moved_2")
        assert run.status == "SUCCESS", run.message
        with engine.connect() as conn:
            quarantined = conn.execute(sa.text(
                "SELECT count(*) FROM vee.quarantined_exception WHERE exception_id = :e"),
                {"e": moved}).scalar()
            resolutions = conn.execute(sa.text(
                "SELECT read_date FROM vee.exception_resolution WHERE exception_id = :e"),
                {"e": moved}).scalars().all()
            status = conn.execute(sa.text(
                "SELECT status FROM mdm.vee_exception WHERE exception_id = :e"), {"e": moved}).scalar()
        assert (quarantined, resolutions) == (0, [earlier_day])
        assert status in ("AUTO_RESOLVED", "PENDING_REVIEW")
    finally:
        engine.dispose()


@pytest.fixture
def cloned_world(databases, scoring_world, monkeypatch):
    """A private copy of the scoring world, for tests that leave runs half done."""
    from robustness_support import clone_database
    from scoring_fixtures import _apply_env

    url = clone_database(databases, scoring_world.url, "runstate")
    _apply_env(monkeypatch, {**scoring_world.env(), "VEE_WAREHOUSE_URL": url})
    monkeypatch.delenv("AIRFLOW_CONN_VEE_WAREHOUSE", raising=False)
    engine = sa.create_engine(url)
    yield engine
    engine.dispose()


def _record(engine, run_id):
    with engine.connect() as conn:
        return dict(conn.execute(sa.text(
            "SELECT status, selected, scored, quarantined, dq_outcome, dq_report_path, message "
            "FROM vee.scoring_run WHERE dag_run_id = :r"), {"r": run_id}).mappings().one())


def test_a_step_of_a_finished_run_cleared_alone_is_refused_and_the_record_kept(
        cloned_world, scoring_world):
    """Found by an outside probe on 2026-11-27 (`airflow tasks clear -t <task>` on a finished
    run): a lone validate rewrote the counts from an empty staging table, a lone score_shard
    failed and its callback turned the SUCCESS record to FAILED."""
    from vee_tasks.scoring import dag_tasks
    from vee_tasks.scoring.errors import RunFinishedError

    engine, day = cloned_world, scoring_world.days[-1]
    run = score_read_date(engine, day, run_id="finished")
    assert run.status == "SUCCESS" and run.scored > 0
    before = _record(engine, "finished")
    for step in (lambda: steps.resolve_champion(engine, "finished"),
                 lambda: steps.extract(engine, "finished", day),
                 lambda: steps.validate(engine, "finished", day),
                 lambda: steps.score_shard(engine, "finished", day, 0, run.model_version)):
        with pytest.raises(RunFinishedError, match="clear the whole run"):
            step()
    # as Airflow hands it to the failure callback: wrapped by the task's failure policy
    with pytest.raises(Exception) as wrapped:
        dag_tasks._call(steps.validate, engine, "finished", day)
    assert type(wrapped.value).__name__ == "AirflowFailException"
    dag_tasks.on_task_failure({"run_id": "finished", "exception": wrapped.value})
    assert _record(engine, "finished") == before

    # start_run_record cleared alone (its later tasks keep their states in Airflow): refused,
    # where it had reset the SUCCESS record to RUNNING for good (outside probe, 2026-11-27)
    class Ti:
        dag_id, run_id = "vee_nightly_scoring", "finished"

        @staticmethod
        def get_task_states(dag_id, task_ids, run_ids):
            assert "finish_run_record" in task_ids and run_ids == ["finished"]
            return {"finished": {"resolve_champion": "success", "score_shard_0": "success",
                                 "finish_run_record": "success"}}

    done = dag_tasks._later_tasks_done({"ti": Ti()})
    assert done == ("finish_run_record", "resolve_champion", "score_shard_0")
    with pytest.raises(RunFinishedError, match="start_run_record cannot rerun alone"):
        steps.start_run(engine, "finished", day, later_tasks_done=done)
    assert _record(engine, "finished") == before
    # a whole run cleared: no later task has a state, and the run starts afresh
    assert dag_tasks.finished_task_ids({"finished": {"extract": None, "score_shard_1": "scheduled"}},
                                       "finished") == ()
    steps.start_run(engine, "finished", day, later_tasks_done=())
    assert _record(engine, "finished")["status"] == "RUNNING"


def test_a_failed_shard_resumes_after_other_runs_finished(cloned_world, scoring_world):
    """The documented recovery, clearing the failed shard, found the run's staged rows
    dropped by the next run to finish, scored 0 rows and failed at finish (outside probe,
    2026-11-27). A failed run keeps its staging; a run whose staging is gone says so."""
    engine, day, other = cloned_world, scoring_world.days[-1], scoring_world.days[-2]
    settings = get_settings()
    version, shards = _steps_until_validated(engine, "resumed", day, settings)
    steps.mark_failed(engine, "resumed", "score_shard: a permanent error")
    assert score_read_date(engine, other, run_id="meanwhile").status == "SUCCESS"
    for shard in shards:
        steps.score_shard(engine, "resumed", day, shard, version, settings)
    steps.finish_run(engine, "resumed", settings)
    record = _record(engine, "resumed")
    assert record["status"] == "SUCCESS" and record["scored"] > 0
    assert record["selected"] == record["scored"] + record["quarantined"]

    version, shards = _steps_until_validated(engine, "lost", day, settings)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM vee.nightly_extract WHERE dag_run_id = 'lost'"))
    with pytest.raises(steps.RunStateError, match="rows extract staged are left"):
        steps.score_shard(engine, "lost", day, shards[0], version, settings)


def test_each_shard_scores_the_ids_validate_listed(cloned_world, scoring_world, caplog):
    """Validate lists each shard's rows that passed, by meter, raised_at and id (a quarantined
    row in none, an empty shard as an empty list); the shard scores exactly those, a few at a
    time. A run
    validated before the lists existed (no row) reads them from its staged rows, with a
    warning. A new extract drops the lists, finish drops them with the staged rows."""
    engine = cloned_world

    def listed_ids(run_id):
        with engine.connect() as conn:
            return dict(conn.execute(sa.text(
                "SELECT shard, exception_ids FROM vee.nightly_shard_ids WHERE dag_run_id = :r"),
                {"r": run_id}).all())

    with engine.begin() as conn:
        day = conn.execute(sa.text(
            "SELECT read_date FROM mdm.vee_exception WHERE status <> 'ANALYST_RESOLVED' "
            "AND read_date = ANY(:days) "
            "GROUP BY read_date ORDER BY count(*) DESC LIMIT 1"), {"days": scoring_world.days}).scalar()
        decidable, meters = conn.execute(sa.text(
            "SELECT count(*), count(DISTINCT meter_id) FROM mdm.vee_exception "
            "WHERE read_date = :d AND status <> 'ANALYST_RESOLVED'"), {"d": day}).one()
        bad = conn.execute(sa.text(
            "SELECT min(exception_id) FROM mdm.vee_exception WHERE read_date = :d "
            "AND status <> 'ANALYST_RESOLVED'"), {"d": day}).scalar()
        conn.execute(sa.text(
            "UPDATE mdm.vee_exception SET observed_value = 'Infinity' WHERE exception_id = :e"),
            {"e": bad})
        # this private copy's earlier decisions of the day go, so every row written below is
        # this run's (an unchanged row keeps the run id that first wrote it)
        conn.execute(sa.text("DELETE FROM vee.exception_resolution WHERE read_date = :d"), {"d": day})

    # a shard per exception: some meter has two, so some shard is empty (pigeonhole)
    assert meters < decidable
    _, many = _steps_until_validated(
        engine, "listed_many", day, get_settings().with_overrides(shard_count=decidable, shard_min_rows=1))
    assert sorted(listed_ids("listed_many")) == many and [] in listed_ids("listed_many").values()

    settings = get_settings().with_overrides(shard_count=3, shard_min_rows=1, scoring_chunk_rows=1)
    version, shards = _steps_until_validated(engine, "listed", day, settings)
    with engine.connect() as conn:
        passed = conn.execute(sa.text(
            "SELECT shard, exception_id FROM vee.nightly_extract WHERE dag_run_id = 'listed' "
            "AND failed_checks IS NULL ORDER BY meter_id COLLATE \"C\", raised_at, exception_id")).all()
    listed = listed_ids("listed")
    assert sorted(listed) == shards == [0, 1, 2]
    expected = {shard: [e for s, e in passed if s == shard] for shard in shards}
    assert listed == expected and all(listed.values())
    assert len(expected[0]) > 1 and len(expected[2]) > 1  # scored in chunks of one
    assert bad not in {e for ids in listed.values() for e in ids}

    steps.extract(engine, "listed", day, settings)
    assert listed_ids("listed") == {}
    steps.validate(engine, "listed", day, settings)
    assert listed_ids("listed") == expected

    with engine.begin() as conn:
        conn.execute(sa.text(
            "DELETE FROM vee.nightly_shard_ids WHERE dag_run_id = 'listed' AND shard = 0"))
        conn.execute(sa.text(
            "UPDATE vee.nightly_shard_ids SET exception_ids = '{}' "
            "WHERE dag_run_id = 'listed' AND shard = 1"))
    with caplog.at_level("WARNING", logger="vee_tasks.scoring.steps"):
        counts = [steps.score_shard(engine, "listed", day, shard, version, settings)["scored"]
                  for shard in shards]
    assert counts == [len(expected[0]), 0, len(expected[2])]
    assert "shard 0: no id list stored by validate; reading the staged rows" in caplog.text
    with engine.connect() as conn:
        written = conn.execute(sa.text(
            "SELECT exception_id FROM vee.exception_resolution WHERE dag_run_id = 'listed' "
            "ORDER BY 1")).scalars().all()
    assert written == sorted(expected[0] + expected[2])

    with engine.begin() as conn:  # the run accounts for shard 1's rows: list them again
        conn.execute(sa.text(
            "UPDATE vee.nightly_shard_ids SET exception_ids = :ids "
            "WHERE dag_run_id = 'listed' AND shard = 1"), {"ids": expected[1]})
    steps.score_shard(engine, "listed", day, 1, version, settings)
    steps.finish_run(engine, "listed", settings)
    assert steps.ScoringRun.load(engine, "listed").status == "SUCCESS"
    assert listed_ids("listed") == {} and listed_ids("listed_many") != {}


def test_a_shard_lists_a_meters_exceptions_together_however_the_mdms_numbered_them(
        cloned_world, scoring_world):
    """The exceptions of a meter-day share a usage context, computed once per scoring chunk:
    an MDMS that numbers its exceptions rule check by rule check puts a meter's exceptions
    far apart in id order, which made each a chunk of its own (features 4.6x slower on the
    bench). Validate lists a shard's ids grouped by meter, so they stay together."""
    engine = cloned_world
    with engine.begin() as conn:
        day = conn.execute(sa.text(
            "SELECT read_date FROM mdm.vee_exception WHERE read_date = ANY(:days) "
            "AND status <> 'ANALYST_RESOLVED' GROUP BY read_date "
            "ORDER BY count(*) - count(DISTINCT meter_id) DESC, read_date LIMIT 1"),
            {"days": scoring_world.days}).scalar()
        # renumber the day's decidable rows rule-major, past every id in use (the rows an
        # analyst resolved keep theirs, which mdm.analyst_resolution references)
        conn.execute(sa.text(
            "UPDATE mdm.vee_exception AS t SET exception_id = r.new_id "
            "FROM (SELECT exception_id AS old_id, "
            "             (SELECT max(exception_id) FROM mdm.vee_exception) "
            "             + row_number() OVER (ORDER BY rule_code, meter_id, exception_id) AS new_id "
            "      FROM mdm.vee_exception WHERE read_date = :d AND status <> 'ANALYST_RESOLVED') AS r "
            "WHERE t.exception_id = r.old_id"), {"d": day})
        conn.execute(sa.text("DELETE FROM vee.exception_resolution WHERE read_date = :d"), {"d": day})

    settings = get_settings().with_overrides(shard_count=2, shard_min_rows=1, scoring_chunk_rows=3)
    version, shards = _steps_until_validated(engine, "grouped", day, settings)
    with engine.connect() as conn:
        meter_of = dict(conn.execute(sa.text(
            "SELECT exception_id, meter_id FROM vee.nightly_extract "
            "WHERE dag_run_id = 'grouped' AND failed_checks IS NULL")).all())
        listed = dict(conn.execute(sa.text(
            "SELECT shard, exception_ids FROM vee.nightly_shard_ids WHERE dag_run_id = 'grouped'")).all())

    def runs_of_meters(ids):
        meters = [meter_of[i] for i in ids]
        return [m for k, m in enumerate(meters) if k == 0 or meters[k - 1] != m]

    assert sorted(e for ids in listed.values() for e in ids) == sorted(meter_of)
    for ids in listed.values():
        together = runs_of_meters(ids)
        assert len(together) == len(set(together))  # each meter in one run of the list
    # id order had split some meter's exceptions apart
    assert sum(len(runs_of_meters(sorted(ids))) for ids in listed.values()) > len(set(meter_of.values()))
    counts = [steps.score_shard(engine, "grouped", day, shard, version, settings)["scored"]
              for shard in shards]
    assert sum(counts) == len(meter_of)


def test_a_rerun_logs_what_the_record_said_and_a_future_date_is_flagged(cloned_world, scoring_world, caplog):
    """A rerun resets its run record in place: the earlier model and counts go to the log
    first (the audit trail a probe missed after a new champion rescored a date). A read date
    that has not ended yet is flagged: the MDMS may still raise exceptions for it."""
    import logging

    engine, day = cloned_world, scoring_world.days[-1]
    first = score_read_date(engine, day, run_id="audited")
    with caplog.at_level(logging.WARNING, logger="vee_tasks.scoring.steps"):
        steps.start_run(engine, "audited", day)
        steps.start_run(engine, "tomorrow", dt.date.today() + dt.timedelta(days=2))
    text = caplog.text
    assert f"run audited was run before (SUCCESS, model vee-resolution v{first.model_version}" in text
    assert f"scored {first.scored}" in text
    assert "has not ended yet" in text


def test_exceptions_raised_after_their_dates_run_are_named_with_the_way_to_score_them(
        cloned_world, scoring_world, caplog):
    """The MDMS raised an exception after its date's run had selected its rows (outside probe,
    2026-11-27: scheduled runs start when the day ends, the MDMS raises hours later). The run
    for D scores exactly read date D, so the exception waits for a rerun of its date: the next
    run's summary and log name it, and the rerun scores it."""
    import logging

    engine, day, earlier = cloned_world, scoring_world.days[-1], scoring_world.days[-2]
    assert score_read_date(engine, earlier, run_id="earlier_first").status == "SUCCESS"
    with engine.begin() as conn:
        late_id = conn.execute(sa.text(
            "INSERT INTO mdm.vee_exception "
            "SELECT exception_id + 900000000000, meter_id, rule_code, read_date, window_start,"
            " window_end, observed_value, expected_value, rule_version,"
            " raised_at + interval '1 day', 'OPEN', raised_at + interval '1 day'"
            " FROM mdm.vee_exception WHERE read_date = :d ORDER BY exception_id LIMIT 1"
            " RETURNING exception_id"), {"d": earlier}).scalar()
    with caplog.at_level(logging.WARNING, logger="vee_tasks.scoring.steps"):
        run = score_read_date(engine, day, run_id="next_night")
    assert run.status == "SUCCESS"
    note = "1 exception(s) of earlier read dates are OPEN and undecided"
    assert note in _summary(engine, "next_night") and note in caplog.text
    assert f"{earlier} (1)" in caplog.text and f"vee_nightly_scoring {earlier}" in caplog.text
    with engine.connect() as conn:  # the run for D touched nothing of D - 1
        assert conn.execute(sa.text(
            "SELECT status FROM mdm.vee_exception WHERE exception_id = :i"), {"i": late_id}).scalar() == "OPEN"
    assert score_read_date(engine, earlier, run_id="earlier_first").status == "SUCCESS"
    with engine.connect() as conn:
        assert conn.execute(sa.text(
            "SELECT count(*) FROM vee.exception_resolution WHERE exception_id = :i"), {"i": late_id}).scalar() == 1
    again = score_read_date(engine, day, run_id="next_night")
    assert "undecided" not in _summary(engine, "next_night") and again.status == "SUCCESS"


def test_a_missed_night_is_named_with_the_backfill_that_scores_it(cloned_world, scoring_world, caplog):
    """A night the scheduler missed (it was down; catchup is off) left its exceptions OPEN
    with no run, and nothing said so (outside probe, 2026-11-29). The next run's summary and
    log name the date, its count and the backfill; dates before the warehouse's first run
    (the MDMS's history before the system started) are not named."""
    import logging

    engine = cloned_world
    before, first, missed, night = scoring_world.days[-4:]
    with engine.begin() as conn:  # a warehouse whose system started on `first`; `missed` never ran
        conn.execute(sa.text("DELETE FROM vee.scoring_run"))
        conn.execute(sa.text("DELETE FROM vee.exception_resolution WHERE read_date = :d"), {"d": missed})
        conn.execute(sa.text("DELETE FROM vee.quarantined_exception WHERE read_date = :d"), {"d": missed})
        conn.execute(sa.text(
            "UPDATE mdm.vee_exception SET status = 'OPEN' WHERE read_date IN (:b, :d)"
            " AND status IN ('AUTO_RESOLVED', 'PENDING_REVIEW')"), {"b": before, "d": missed})
        waiting = conn.execute(sa.text(
            "SELECT count(*) FROM mdm.vee_exception WHERE read_date = :d AND status = 'OPEN'"),
            {"d": missed}).scalar()
    assert waiting
    assert score_read_date(engine, first, run_id="first_night").status == "SUCCESS"
    assert "no nightly run has started" not in _summary(engine, "first_night")
    with caplog.at_level(logging.WARNING, logger="vee_tasks.scoring.steps"):
        assert score_read_date(engine, night, run_id="after_missed").status == "SUCCESS"
    note = (f"1 earlier read date(s) hold {waiting} OPEN exception(s) and no nightly run has "
            f"started on them")
    assert note in _summary(engine, "after_missed") and note in caplog.text
    assert f"{missed} ({waiting})" in caplog.text and str(before) not in _summary(engine, "after_missed")
    assert f"--from-date {missed} --to-date {missed} --reprocess-behavior failed" in caplog.text
    # a backfill's own runs do not count the dates still queued in it as missed
    assert score_read_date(engine, night, run_id="backfill__night").status == "SUCCESS"
    assert "no nightly run has started" not in _summary(engine, "backfill__night")
    assert score_read_date(engine, missed, run_id="backfilled").status == "SUCCESS"
    assert score_read_date(engine, night, run_id="after_missed").status == "SUCCESS"
    assert "no nightly run has started" not in _summary(engine, "after_missed")


def test_a_night_scored_without_its_weather_says_so_and_names_the_rerun(cloned_world, scoring_world, caplog):
    """Weather has no as-of stamp: a region whose row for the read date had not arrived was
    scored with its temperature features unknown, silently (ML review, 2026-11-27: 1 of 145
    decisions moved). The summary and the log name the regions and the rerun."""
    import logging

    engine, day = cloned_world, scoring_world.days[-3]
    with engine.begin() as conn:
        region = conn.execute(sa.text(
            "SELECT m.region FROM mdm.vee_exception e JOIN mdm.meter m USING (meter_id) "
            "WHERE e.read_date = :d GROUP BY m.region ORDER BY count(*) DESC LIMIT 1"), {"d": day}).scalar()
        held = conn.execute(sa.text(
            "DELETE FROM mdm.weather_daily WHERE region = :r AND day = :d RETURNING *"),
            {"r": region, "d": day}).mappings().all()
    assert held
    try:
        with caplog.at_level(logging.WARNING, logger="vee_tasks.scoring.steps"):
            assert score_read_date(engine, day, run_id="no_weather").status == "SUCCESS"
        note = f"weather for {day} is missing for 1 region(s)"
        assert note in _summary(engine, "no_weather") and note in caplog.text
        assert f"{region} (" in caplog.text and f"vee_nightly_scoring {day}" in caplog.text
    finally:
        with engine.begin() as conn:
            for row in held:
                conn.execute(sa.text("INSERT INTO mdm.weather_daily VALUES (:region, :day, :mean_temp_c)"),
                             dict(row))
    assert score_read_date(engine, day, run_id="no_weather").status == "SUCCESS"
    assert "weather for" not in _summary(engine, "no_weather")


def test_a_night_whose_reads_arrived_after_its_exceptions_says_it_was_scored_blind(
        cloned_world, scoring_world, caplog):
    """A warehouse whose received_at is the time of a later bulk load: the point-in-time
    features saw none of the day's reads, and the run said PASSED with no word of it (outside
    probe, 2026-11-28). The summary and the log now say so."""
    import logging

    from vee_tasks.dates import day_bounds

    engine, day = cloned_world, scoring_world.days[-3]
    start, end = day_bounds(day, "America/Toronto")
    assert score_read_date(engine, day, run_id="reads_on_time").status == "SUCCESS"
    assert "arrived after their exception was raised" not in _summary(engine, "reads_on_time")
    with engine.begin() as conn:
        moved = conn.execute(sa.text(
            "UPDATE mdm.interval_read SET received_at = received_at + interval '30 days' "
            "WHERE interval_start >= :s AND interval_start < :e"), {"s": start, "e": end}).rowcount
    assert moved
    try:
        with caplog.at_level(logging.WARNING, logger="vee_tasks.scoring.steps"):
            assert score_read_date(engine, day, run_id="reads_late").status == "SUCCESS"
        note = f"100% of read date {day}'s reads on"
        assert note in _summary(engine, "reads_late") and note in caplog.text
        assert "received_at" in caplog.text
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(
                "UPDATE mdm.interval_read SET received_at = received_at - interval '30 days' "
                "WHERE interval_start >= :s AND interval_start < :e"), {"s": start, "e": end})


def _summary(engine, run_id) -> str:
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT summary FROM vee.scoring_run WHERE dag_run_id = :r"), {"r": run_id}).scalar()


def test_a_sibling_shard_does_not_erase_a_shards_failure(cloned_world, scoring_world):
    """With fewer slots than shards, shard 1 started after shard 0 had failed the run, took it
    for an operator's resume and reopened the record: the DAG run failed, the record said
    RUNNING with the reason gone (outside probe, 2026-11-27). The record now keeps FAILED and
    its reason until finish_run_record succeeds."""
    engine, day = cloned_world, scoring_world.days[-3]
    settings = get_settings().with_overrides(shard_min_rows=1)
    version, shards = _steps_until_validated(engine, "sibling", day, settings)
    assert len(shards) >= 2
    steps.mark_failed(engine, "sibling", "score_shard 0: the database refused an update")
    steps.score_shard(engine, "sibling", day, shards[1], version, settings)
    record = _record(engine, "sibling")
    assert record["status"] == "FAILED" and "refused an update" in record["message"]
    # resolve_champion cleared alone now, after a shard wrote: the run keeps the version it
    # pinned (a stand-in number here: the alias still names the same version)
    def pin(v):
        with engine.begin() as conn:
            conn.execute(sa.text(
                "UPDATE vee.scoring_run SET model_version = :v WHERE dag_run_id = 'sibling'"), {"v": v})
    pin("999")
    assert steps.resolve_champion(engine, "sibling", settings, later_tasks_done=("score_shard_1",)) == "999"
    # cleared with its downstream (no shard keeps a result): the champion of now, which
    # every shard then scores with again (review, 2026-11-27)
    assert steps.resolve_champion(engine, "sibling", settings) == version
    # the operator's resume fails for a new reason: the record says that one (review,
    # 2026-11-27: the first failure's message stayed, its cause long fixed)
    loaded = registry.load_model_version(version, settings)
    with pytest.raises(steps.RunStateError):
        steps.score_shard(engine, "sibling", day, shards[0], "999", settings, model=loaded)
    record = _record(engine, "sibling")
    assert record["status"] == "FAILED" and "pinned 999" in record["message"]
    for shard in [shards[0], *shards[2:]]:  # resumed again, now successfully
        steps.score_shard(engine, "sibling", day, shard, version, settings)
    steps.finish_run(engine, "sibling", settings)
    record = _record(engine, "sibling")
    assert record["status"] == "SUCCESS" and record["message"] is None
    assert record["selected"] == record["scored"] + record["quarantined"]


def test_the_record_follows_an_airflow_run_that_ended_without_finish(cloned_world, scoring_world, monkeypatch):
    """A task or the run marked failed or success by hand runs no task callback: the record
    stayed RUNNING for good (outside probe, 2026-11-27). The DAG-level callback reconciles it."""
    from types import SimpleNamespace

    from vee_tasks import warehouse
    from vee_tasks.scoring import dag_tasks

    engine, day = cloned_world, scoring_world.days[-4]
    settings = get_settings().with_overrides(shard_min_rows=1)
    monkeypatch.setattr(warehouse, "callback_engine", lambda: engine)

    def ended(run_id, state, reason="", end_date=None):
        dag_tasks.on_dag_run_finished(
            {"run_id": run_id, "reason": reason,
             "dag_run": SimpleNamespace(run_id=run_id, end_date=end_date)}, state)
        return _record(engine, run_id)

    # a shard task marked failed by hand (no task callback runs): FAILED, with the reason
    # Airflow gives ("task_failure")
    version, shards = _steps_until_validated(engine, "marked_failed", day, settings)
    steps.score_shard(engine, "marked_failed", day, shards[0], version, settings)
    long_ago = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
    assert ended("marked_failed", "failed", "task_failure", end_date=long_ago)["status"] == "RUNNING"
    record = ended("marked_failed", "failed", "task_failure")  # (the above: a stale callback)
    assert record["status"] == "FAILED" and "task_failure" in record["message"]
    # marked success with shards missing: it cannot finish, and says why
    version, shards = _steps_until_validated(engine, "marked_success", day, settings)
    steps.score_shard(engine, "marked_success", day, shards[0], version, settings)
    record = ended("marked_success", "success")
    assert record["status"] == "FAILED" and "shards recorded results" in record["message"]
    # every shard written but finish_run_record skipped: finished now, with its totals
    version, shards = _steps_until_validated(engine, "finish_skipped", day, settings)
    for shard in shards:
        steps.score_shard(engine, "finish_skipped", day, shard, version, settings)
    record = ended("finish_skipped", "success")
    assert record["status"] == "SUCCESS" and record["selected"] == record["scored"] + record["quarantined"]
    # a record that has finished is left as it is
    assert ended("finish_skipped", "failed") == record
    # a whole run marked failed through the UI or API runs no DAG callback in Airflow 3.3
    # (review, 2026-11-27): the next run records a day-old RUNNING record as abandoned
    steps.start_run(engine, "marked_whole", day)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE vee.scoring_run SET started_at = now() - interval '25 hours' "
                             "WHERE dag_run_id = 'marked_whole'"))
    steps.start_run(engine, "next_night_abandon_check", scoring_world.days[-1])
    record = _record(engine, "marked_whole")
    assert record["status"] == "FAILED" and record["message"].startswith("abandoned: still RUNNING 24 h")
    assert f"rerun read date {day.isoformat()} to score it" in record["message"]
    assert _record(engine, "next_night_abandon_check")["status"] == "RUNNING"


def test_a_database_error_is_recorded_in_one_line(cloned_world, scoring_world):
    """A permission error went into the run record as SQLAlchemy's text: the whole statement
    and its parameters, 1,253 characters (outside probe, 2026-11-27). The server's message
    is what an operator reads."""
    from vee_tasks.scoring.errors import short_reason

    engine, day = cloned_world, scoring_world.days[-6]
    steps.start_run(engine, "db_error", day)
    with pytest.raises(sa.exc.ProgrammingError) as raised:
        with steps._step(engine, "db_error", "score_shard_0"):
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT exception_id FROM vee.no_such_table WHERE read_date = :d"),
                             {"d": day})
    assert short_reason(raised.value) == (
        'UndefinedTable: relation "vee.no_such_table" does not exist')
    message = _record(engine, "db_error")["message"]
    assert message == 'score_shard_0: UndefinedTable: relation "vee.no_such_table" does not exist'


def test_the_audit_sends_a_stable_share_of_confident_decisions_to_the_analysts():
    """VEE_AUDIT_SHARE: drawn by exception id, so a rerun audits the same rows; only decisions
    that would have been applied are audited; 0 audits none."""
    import numpy as np

    from vee_tasks.scoring.steps import audit_draw

    ids = pd.Index(np.arange(1, 20_001), name="exception_id")
    confident = pd.DataFrame({"ACCEPT": 0.99, "ESTIMATE": 0.0025, "EDIT": 0.0025, "REREAD": 0.0025,
                              "FIELD_ORDER": 0.0025}, index=ids)
    thresholds = {"ACCEPT": 0.95}
    out = decide(confident, thresholds, audit_share=0.05)
    audited = out["audit"].to_numpy()
    assert 0.04 < audited.mean() < 0.06
    assert (out.loc[audited, "decision"] == "REVIEW").all()
    assert (out.loc[~audited, "decision"] == "AUTO_APPLY").all()
    again = decide(confident.iloc[::-1], thresholds, audit_share=0.05)  # another order, same draw
    assert set(again.loc[again["audit"], "exception_id"]) == set(out.loc[audited, "exception_id"])
    assert not decide(confident, thresholds, audit_share=0.0)["audit"].any()
    unsure = confident.assign(ACCEPT=0.5, ESTIMATE=0.5 - 0.0075)
    assert not decide(unsure, thresholds, audit_share=1.0)["audit"].any()  # REVIEW anyway
    assert np.array_equal(audit_draw([7, 7]), audit_draw([7, 7]))


def test_written_rows_do_not_follow_the_sessions_time_zone_or_float_digits(cloned_world, scoring_world):
    """jsonb renders a timestamptz in the session's TimeZone and a float8 with its
    extra_float_digits: a login set to local time and 0 digits (as older tools set) wrote
    the same quarantine payload and probabilities as other text, so a rerun was not the same
    rows (outside probe, 2026-11-27). A rerun under such a login leaves every row as it was."""
    engine, day = cloned_world, scoring_world.days[-3]
    with engine.begin() as conn:
        bad = conn.execute(sa.text(
            "SELECT exception_id FROM mdm.vee_exception WHERE read_date = :d "
            "AND status IN ('OPEN', 'AUTO_RESOLVED', 'PENDING_REVIEW') ORDER BY 1 LIMIT 1"),
            {"d": day}).scalar()
        conn.execute(sa.text("UPDATE mdm.vee_exception SET observed_value = 'NaN' "
                             "WHERE exception_id = :e"), {"e": bad})

    def written(conn):
        payloads = conn.execute(sa.text(
            "SELECT exception_id, payload::text FROM vee.quarantined_exception "
            "WHERE read_date = :d ORDER BY 1"), {"d": day}).fetchall()
        return payloads, _resolutions(conn, day)

    first = score_read_date(engine, day, run_id="zone_utc")
    assert first.status == "SUCCESS" and first.quarantined >= 1, first.message
    with engine.connect() as conn:
        payloads, resolutions = written(conn)
    assert bad in [e for e, _ in payloads]
    assert any("+00:00" in text for _, text in payloads)

    local = sa.create_engine(engine.url, connect_args={
        "options": "-c TimeZone=Asia/Kolkata -c extra_float_digits=0"})
    try:
        with local.connect() as conn:
            assert conn.execute(sa.text("SHOW TimeZone")).scalar() == "Asia/Kolkata"
        again = score_read_date(local, day, run_id="zone_kolkata")
        assert again.status == "SUCCESS", again.message
        with local.connect() as conn:
            payloads_again, resolutions_again = written(conn)
    finally:
        local.dispose()
    assert payloads_again == payloads
    # the same rows: unchanged decisions keep their first run's id and time
    pd.testing.assert_frame_equal(resolutions_again, resolutions)
