"""The daily usage rollup is a cache: features are the same with it, without it, and with a
partial one; the rollup is actually read; refreshing is idempotent and point in time."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa

from vee_tasks import usage_rollup
from vee_tasks.features import HIST_DAYS, build_features

TZ = "America/Toronto"
FAR_FUTURE = dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc)


def _exception_ids(engine, first: dt.date, last: dt.date) -> list[int]:
    with engine.connect() as conn:
        return [
            r[0]
            for r in conn.execute(
                sa.text(
                    "SELECT exception_id FROM mdm.vee_exception "
                    "WHERE read_date BETWEEN :a AND :b ORDER BY exception_id"
                ),
                {"a": first, "b": last},
            )
        ]


def _features(engine, ids) -> pd.DataFrame:
    with engine.connect() as conn:
        return build_features(conn, ids, TZ)


def _clear(engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM vee.meter_daily_day"))
        conn.execute(sa.text("DELETE FROM vee.meter_daily"))


@pytest.fixture
def sim(simulated_engine):
    _clear(simulated_engine)
    yield simulated_engine
    _clear(simulated_engine)


def test_features_equal_without_partial_and_full_rollup(sim):
    # the sim's last weeks: exceptions of six read dates, late and missing reads included
    with sim.connect() as conn:
        last = conn.execute(sa.text("SELECT max(read_date) FROM mdm.vee_exception")).scalar()
    ids = _exception_ids(sim, last - dt.timedelta(days=5), last)
    assert len(ids) > 20
    raw = _features(sim, ids)

    # partial: only the lookback of the earliest of those read dates
    built = usage_rollup.refresh_for_read_date(sim, last - dt.timedelta(days=5), TZ, now=FAR_FUTURE)
    assert len(built) == HIST_DAYS - usage_rollup.SETTLE_DAYS
    assert all(day.meters > 0 and day.reads > 0 for day in built)
    pd.testing.assert_frame_equal(raw, _features(sim, ids), check_exact=True)

    usage_rollup.refresh_for_read_date(sim, last, TZ, now=FAR_FUTURE)
    pd.testing.assert_frame_equal(raw, _features(sim, ids), check_exact=True)


def test_features_read_the_rollup(sim):
    with sim.connect() as conn:
        last = conn.execute(sa.text("SELECT max(read_date) FROM mdm.vee_exception")).scalar()
    ids = _exception_ids(sim, last, last)
    usage_rollup.refresh_for_read_date(sim, last, TZ, now=FAR_FUTURE)
    before = _features(sim, ids)
    with sim.connect() as conn:
        # tamper with the cache inside a transaction that is rolled back
        conn.execute(sa.text("UPDATE vee.meter_daily SET kwh = kwh * 3 + 7"))
        tampered = build_features(conn, ids, TZ)
        conn.rollback()
    assert (tampered["hist_mean"] != before["hist_mean"]).any()
    # the read date itself always comes from the interval reads
    pd.testing.assert_series_equal(tampered["day_kwh"], before["day_kwh"])


def test_refresh_is_idempotent_and_waits_for_the_margin(sim):
    with sim.connect() as conn:
        last = conn.execute(sa.text("SELECT max(read_date) FROM mdm.vee_exception")).scalar()
    first = usage_rollup.refresh_for_read_date(sim, last, TZ, now=FAR_FUTURE)
    days = [d.day for d in first]
    assert days == sorted(days) and days[-1] == last - dt.timedelta(days=1 + usage_rollup.SETTLE_DAYS)
    counts = "SELECT count(*), sum(n_rows), sum(kwh) FROM vee.meter_daily"
    with sim.connect() as conn:
        once = conn.execute(sa.text(counts)).one()
    assert usage_rollup.refresh_for_read_date(sim, last, TZ, now=FAR_FUTURE) == []
    with sim.connect() as conn:
        assert conn.execute(sa.text(counts)).one() == once

    # a day that settled less than the margin ago is not frozen yet
    _clear(sim)
    newest = last - dt.timedelta(days=1 + usage_rollup.SETTLE_DAYS)
    just_settled = usage_rollup.settled_at(newest, TZ) + usage_rollup.SETTLE_MARGIN / 2
    built = usage_rollup.refresh_for_read_date(sim, last, TZ, now=just_settled)
    assert newest not in [d.day for d in built] and len(built) == HIST_DAYS - usage_rollup.SETTLE_DAYS - 1


def test_whole_day_windows_equal_their_reads(sim, monkeypatch):
    """A rule window spanning the read date is taken from the day's usage row; reading its
    intervals one by one gives the same window features."""
    from vee_tasks import warehouse

    with sim.connect() as conn:
        last = conn.execute(sa.text("SELECT max(read_date) FROM mdm.vee_exception")).scalar()
    ids = _exception_ids(sim, last - dt.timedelta(days=5), last)
    shortcut = _features(sim, ids)
    original = warehouse.sql_text

    def window_by_reads(name: str) -> str:
        text = original(name)
        if name == "queries/features_exception_rows.sql":
            assert "IS TRUE AS whole_day" in text
            text = text.replace("IS TRUE AS whole_day", "IS TRUE AND false AS whole_day")
        return text

    monkeypatch.setattr(warehouse, "sql_text", window_by_reads)
    by_reads = _features(sim, ids)
    win = [c for c in shortcut.columns if c.startswith("win_")]
    assert (shortcut["window_hours"] == 24).sum() > 5  # whole-day windows are tested
    pd.testing.assert_frame_equal(shortcut[win], by_reads[win], check_exact=True)
    pd.testing.assert_frame_equal(shortcut, by_reads, check_exact=True)
