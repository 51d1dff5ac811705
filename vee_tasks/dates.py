"""The contract's date mapping, in one place.

A *read date* is a calendar date in the utility's time zone (`VEE_TIMEZONE`). The nightly run
whose logical date is D scores read date D; the weekly run whose logical date is D trains on
labels resolved before the start of D.

Airflow hands us a logical date as an instant. A scheduled nightly run's logical date is
local midnight (the DAG's timetable is in `VEE_TIMEZONE`), a scheduled weekly run's the
local instant it fires (Sunday 02:00); `airflow dags test DAG 2026-03-01` gives midnight in
Airflow's default time zone, which this project sets to `VEE_TIMEZONE` but an operator's
installation may leave at UTC. All must mean the date they name, so: an instant that is
midnight in the utility's zone is that local date; one that is midnight in UTC (a
command-line date under a UTC default) is that UTC date; any other instant is the local date
it falls on.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo


def read_date_for(logical_date: dt.datetime, timezone: str) -> dt.date:
    """The read date a run with this logical date scores (see module docstring)."""
    if logical_date.tzinfo is None:
        return logical_date.date()
    local = logical_date.astimezone(ZoneInfo(timezone))
    if local.time() == dt.time(0, 0):
        return local.date()
    utc = logical_date.astimezone(dt.timezone.utc)
    if utc.time() == dt.time(0, 0):
        return utc.date()
    return local.date()


def day_bounds(read_date: dt.date, timezone: str) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a read date as UTC instants; 23 or 25 hours on DST days.

    UTC, because Python subtracts two datetimes of the same zone by wall clock.
    """
    zone = ZoneInfo(timezone)
    start = dt.datetime.combine(read_date, dt.time(0, 0), tzinfo=zone)
    end = dt.datetime.combine(read_date + dt.timedelta(days=1), dt.time(0, 0), tzinfo=zone)
    return start.astimezone(dt.timezone.utc), end.astimezone(dt.timezone.utc)


def day_start(day: dt.date, timezone: str) -> dt.datetime:
    return day_bounds(day, timezone)[0]


def today_in(timezone: str, now: dt.datetime | None = None) -> dt.date:
    """Today's date in the utility's time zone (the machine's own zone may be another)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return now.astimezone(ZoneInfo(timezone)).date()


def nightly_read_date(context: Any, timezone: str) -> dt.date:
    """The read date a nightly DAG run scores (contract: logical date D scores read date D).

    `airflow dags test DAG D`, scheduled runs (logical date = local midnight of D, run after
    D ends) and backfills all carry a logical date. A manual trigger without one (Airflow 3
    allows it) scores the last read date that has ended when the run was requested.
    """
    logical = context.get("logical_date") or context.get("data_interval_start")
    if logical is not None:
        return read_date_for(logical, timezone)
    run_after = context["dag_run"].run_after
    return run_after.astimezone(ZoneInfo(timezone)).date() - dt.timedelta(days=1)


def weekly_as_of(context: Any, timezone: str) -> dt.date:
    """Logical date D -> D (labels resolved before the start of D in the utility's zone).
    A manual trigger without a logical date trains as of the local date it was requested."""
    logical = context.get("logical_date") or context.get("data_interval_end")
    if logical is not None:
        return read_date_for(logical, timezone)
    return context["dag_run"].run_after.astimezone(ZoneInfo(timezone)).date()
