"""The benchmark's I/O floor (vee_tasks/bench.py, not part of this suite) writes rows shaped
like vee.exception_resolution: when the table gained a column, the floor's COPY failed after
a whole benchmark run (2026-11-27)."""

from __future__ import annotations

import datetime as dt
import logging
import os

import pytest
import sqlalchemy as sa

from robustness_support import LoginRole
from vee_tasks import migrations
from vee_tasks.bench import MachineCpu, _time_io_floor_once, describe_cpu, settle_server

DAY = dt.date(2026, 3, 1)


def test_the_io_floor_moves_one_row_per_exception_into_the_resolution_shape(databases):
    engine = sa.create_engine(databases.create("bench_floor"))
    migrations.upgrade(engine, with_mdm=True)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO mdm.meter VALUES ('M1', 'SP1', 'RES', 'AMI_1PH', 1, 60, false, 'R1', "
            "'2020-01-01')"))
        for exception_id in (1, 2, 3):
            conn.execute(sa.text(
                "INSERT INTO mdm.vee_exception VALUES (:id, 'M1', 'SPIKE', :day, :ws, :we, 3, 1, "
                "'SPIKE/3', :raised, 'OPEN', :raised)"),
                {"id": exception_id, "day": DAY,
                 "ws": dt.datetime(2026, 3, 1, 6, tzinfo=dt.timezone.utc),
                 "we": dt.datetime(2026, 3, 1, 7, tzinfo=dt.timezone.utc),
                 "raised": dt.datetime(2026, 3, 2, 7, tzinfo=dt.timezone.utc)})
    floor = _time_io_floor_once(engine, DAY)
    assert floor["rows_written"] == 3 and floor["bytes_read"] > 0
    with engine.connect() as conn:  # the floor's own table is gone again
        assert conn.execute(sa.text("SELECT to_regclass('public.bench_floor_resolution')")).scalar() is None
    engine.dispose()


def test_settling_the_server_needs_the_right_to_checkpoint_and_goes_on_without_it(databases, caplog):
    """Each timed part of the bench starts after a CHECKPOINT; a bench login without the
    right to one (not superuser, not pg_checkpoint) is told so in the log and still runs."""
    url = databases.create("bench_settle")
    engine = sa.create_engine(url)
    migrations.upgrade(engine)  # the group roles
    reader = LoginRole(url, "vee_reader")
    reader_engine = reader.engine()
    try:
        with caplog.at_level(logging.WARNING, logger="vee_tasks.bench"):
            settle_server(engine)
            assert "CHECKPOINT refused" not in caplog.text
            settle_server(reader_engine)
        assert "CHECKPOINT refused" in caplog.text
        # any other failure is not a refusal: the bench stops on it
        unreachable = sa.make_url(url).set(host="127.0.0.1", port=1)
        with pytest.raises(sa.exc.OperationalError):
            settle_server(sa.create_engine(unreachable))
    finally:
        reader_engine.dispose()
        reader.drop()
        engine.dispose()


def test_the_machine_cpu_share_of_a_busy_span_is_busy_and_sums_to_one():
    """The bench prints what the machine's CPUs did during the run and the floor (busy, idle,
    stolen by a hypervisor), so that a slow run on a crowded virtual machine reads as such."""
    import time as _time

    with MachineCpu() as cpu:
        deadline = _time.perf_counter() + 0.5
        while _time.perf_counter() < deadline:  # keep one CPU busy
            pass
    shares = cpu.shares()
    assert set(shares) == {"busy", "idle", "stolen"}
    assert abs(sum(shares.values()) - 1) < 1e-9
    assert all(0 <= v <= 1 for v in shares.values())
    # one of os.cpu_count() CPUs was spinning the whole span (less what a hypervisor took)
    assert shares["busy"] >= 0.2 / (os.cpu_count() or 1)
    assert "busy" in describe_cpu(shares) and "stolen by the hypervisor" in describe_cpu(shares)
