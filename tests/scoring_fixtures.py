"""Helpers and fixtures for the nightly scoring tests.

`seed_day` writes meters and exceptions straight into the mdm tables (hand-made, so each test
knows exactly what it selected); `trained_champion_url` is a simulated warehouse with a
champion trained by the real training pipeline (built once per session).
"""

from __future__ import annotations

import datetime as dt
import os
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from vee_tasks import migrations
from vee_tasks.config import RULE_CODES

TZ = "America/Toronto"


def local(day: dt.date, hour: float) -> dt.datetime:
    """`hour` elapsed hours after local midnight of `day` (23 or 25 in a DST day), in UTC."""
    base = dt.datetime.combine(day, dt.time(0, 0), tzinfo=ZoneInfo(TZ)).astimezone(dt.timezone.utc)
    return base + dt.timedelta(hours=hour)


def seed_meters(conn, count: int, prefix: str = "M") -> list[str]:
    ids = [f"{prefix}{i:05d}" for i in range(count)]
    conn.execute(
        sa.text(
            "INSERT INTO mdm.meter (meter_id, service_point_id, customer_class, meter_kind, "
            "multiplier, interval_minutes, has_der, region, installed_on) "
            "VALUES (:m, :sp, 'RES', 'AMI_1PH', 1, 60, false, 'R1', DATE '2020-01-01') "
            "ON CONFLICT DO NOTHING"
        ),
        [{"m": m, "sp": f"SP-{m}"} for m in ids],
    )
    return ids


def seed_day(
    conn,
    day: dt.date,
    meters: list[str],
    per_meter: int = 1,
    first_id: int = 1,
    status: str = "OPEN",
) -> list[int]:
    """Valid exceptions on `day` for each meter; returns their ids."""
    rows = []
    next_id = first_id
    for i, meter in enumerate(meters):
        for k in range(per_meter):
            rule = RULE_CODES[(i + k) % len(RULE_CODES)]
            start = local(day, 1 + (i + k) % 20)
            rows.append(
                {
                    "id": next_id,
                    "m": meter,
                    "rule": rule,
                    "d": day,
                    "ws": start,
                    "we": start + dt.timedelta(hours=2),
                    "obs": 10.0 + i,
                    "exp": None if rule == "GAP" else 5.0,
                    "rv": f"{rule}/1",
                    "raised": local(day, 26),
                    "status": status,
                }
            )
            next_id += 1
    insert_exceptions(conn, rows)
    return [r["id"] for r in rows]


def insert_exceptions(conn, rows: list[dict]) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO mdm.vee_exception (exception_id, meter_id, rule_code, read_date, "
            "window_start, window_end, observed_value, expected_value, rule_version, raised_at, "
            "status, status_changed_at) VALUES (:id, :m, :rule, :d, :ws, :we, :obs, :exp, :rv, "
            ":raised, :status, :raised)"
        ),
        rows,
    )


def relax_contract(conn) -> None:
    """Make this database behave like a warehouse that does not enforce the contract
    (no primary key on exception ids, no meter foreign key), to stage duplicates and
    unknown meters directly."""
    conn.exec_driver_sql(
        "ALTER TABLE mdm.analyst_resolution DROP CONSTRAINT IF EXISTS analyst_resolution_exception_id_fkey"
    )
    conn.exec_driver_sql("ALTER TABLE mdm.vee_exception DROP CONSTRAINT IF EXISTS vee_exception_meter_id_fkey")
    conn.exec_driver_sql("ALTER TABLE mdm.vee_exception DROP CONSTRAINT IF EXISTS vee_exception_pkey")


@pytest.fixture
def fresh_engine(databases, request):
    """A new empty warehouse (mdm + vee) for one test that changes the schema or rows."""
    from conftest import use_warehouse

    label = "sc" + str(abs(hash(request.node.name)) % 10**8)
    url = databases.create(label)
    engine = sa.create_engine(url)
    migrations.upgrade(engine, with_mdm=True)
    use_warehouse(url)
    yield engine
    engine.dispose()


def env_for_subprocess(url: str, state_dir) -> dict:
    env = dict(os.environ)
    env["VEE_WAREHOUSE_URL"] = url
    env["AIRFLOW_CONN_VEE_WAREHOUSE"] = url.replace("postgresql+psycopg2://", "postgresql://")
    return env
