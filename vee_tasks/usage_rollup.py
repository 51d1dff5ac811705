"""The daily usage rollup `vee.meter_daily`: a cache of each meter's settled days.

Why: the features' usage history needs 14 days per exception. From raw interval reads that is
14 x 24 reads (x 96 for 15-minute meters) per meter, every night, for every meter with an
exception: at a million exceptions it was ~80 % of the nightly run. A settled day's
aggregate never changes, so it is computed once, for every meter, and read back as one row.

Point in time: day d is *settled* at local midnight of d + 1 + SETTLE_DAYS; its row holds
the reads of d received before that instant. The features
(sql/queries/features_context_rows.sql) define a history day's usage that way whenever the
exception was raised after the day settled, and compute it from raw reads when no complete
rollup of the day exists, so the rollup changes the speed of the features, never their
values (tests/test_usage_rollup.py checks both ways), as long as settled reads are not
overwritten in place: a frozen day then keeps what was known, the raw reads only the edit
(docs/nightly-scoring.md, "Limit: reads edited in place").

A run for read date D rolls up the settled days of its lookback that are missing, up to
D - 1 - SETTLE_DAYS and never a day settled less than SETTLE_MARGIN ago: reads still in
flight between the head-end and the warehouse land before the day is frozen. One
transaction per day under an advisory lock: concurrent backfill runs compute a day once.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from vee_tasks.warehouse import execute_sql_file

log = logging.getLogger(__name__)

# A day's reads received by the end of the following day count as that day's history.
SETTLE_DAYS = 1
# A settled day is frozen into the rollup only this long after it settled.
SETTLE_MARGIN = dt.timedelta(hours=12)


def settled_at(day: dt.date, timezone: str) -> dt.datetime:
    """The instant day `day` settles: local midnight starting day + 1 + SETTLE_DAYS."""
    from zoneinfo import ZoneInfo

    local = dt.datetime.combine(day + dt.timedelta(days=1 + SETTLE_DAYS), dt.time())
    return local.replace(tzinfo=ZoneInfo(timezone))


@dataclass(frozen=True)
class RollupDay:
    day: dt.date
    meters: int
    reads: int
    seconds: float


def pending_days(engine: Engine, first_day: dt.date, last_day: dt.date, timezone: str) -> list[tuple[dt.date, dt.datetime]]:
    """Days in [first_day, last_day] without a complete rollup, with their settle instants."""
    if last_day < first_day:
        return []
    with engine.connect() as conn:
        rows = execute_sql_file(
            conn,
            "queries/usage_rollup_pending_days.sql",
            {"first_day": first_day, "last_day": last_day, "settle_days": SETTLE_DAYS, "tz": timezone},
        ).fetchall()
    return [(r[0], r[1]) for r in rows]


def build_day(engine: Engine, day: dt.date, settled: dt.datetime, timezone: str) -> RollupDay | None:
    """Roll up one settled day for every meter; None when another run just did it or when
    the warehouse holds no read of that day."""
    started = time.perf_counter()
    params = {"day": day, "settled_at": settled, "tz": timezone}
    with engine.begin() as conn:
        execute_sql_file(conn, "queries/usage_rollup_lock_day.sql", {"day": day})
        if execute_sql_file(conn, "queries/usage_rollup_day_done.sql", params).first():
            return None
        execute_sql_file(conn, "queries/usage_rollup_clear_day.sql", params)
        execute_sql_file(conn, "queries/usage_rollup_build_day.sql", params)
        counts = execute_sql_file(conn, "queries/usage_rollup_day_counts.sql", params).mappings().one()
        if counts["meters"] == 0:
            # Not one read of the day received before it settled: a load that has not
            # happened yet (or a received_at stamped by a later load), not a day without
            # usage. Left unfrozen; the features read it raw meanwhile.
            log.warning("usage rollup of %s skipped: no read of that day received by %s, when it "
                        "settled (none in the warehouse yet, or received_at later)", day,
                        settled.isoformat())
            return None
        seconds = round(time.perf_counter() - started, 3)
        execute_sql_file(
            conn,
            "queries/usage_rollup_mark_day.sql",
            {**params, "meters": counts["meters"], "reads": counts["reads"], "seconds": seconds},
        )
    log.info("usage rollup of %s: %d meters, %d reads in %.1fs", day, counts["meters"], counts["reads"], seconds)
    return RollupDay(day, int(counts["meters"]), int(counts["reads"]), seconds)


def refresh_for_read_date(
    engine: Engine, read_date: dt.date, timezone: str, now: dt.datetime | None = None
) -> list[RollupDay]:
    """Roll up the missing settled days of `read_date`'s usage lookback (see module doc)."""
    from vee_tasks.features import HIST_DAYS

    now = now or dt.datetime.now(dt.timezone.utc)
    first_day = read_date - dt.timedelta(days=HIST_DAYS)
    last_day = read_date - dt.timedelta(days=1 + SETTLE_DAYS)
    built = []
    for day, settled in pending_days(engine, first_day, last_day, timezone):
        if settled > now - SETTLE_MARGIN:
            log.info("usage rollup of %s waits: settled at %s, margin %s", day, settled, SETTLE_MARGIN)
            continue
        result = build_day(engine, day, settled, timezone)
        if result is not None:
            built.append(result)
    return built
