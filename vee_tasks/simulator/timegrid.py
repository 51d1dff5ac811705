"""Read dates as UTC instants in the utility's zone: 23-, 24- and 25-hour days, interval slots.

Everything is int64 microseconds since the Unix epoch (UTC) so that numpy does the work.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

US_PER_MIN = 60_000_000
US_PER_HOUR = 3_600_000_000
#: PostgreSQL's binary timestamps count from 2000-01-01 UTC
PG_EPOCH_US = 946_684_800_000_000


def _us(instant: dt.datetime) -> int:
    return int(round(instant.timestamp() * 1e6))


def day_starts_us(start: dt.date, days: int, timezone: str) -> np.ndarray:
    """Local midnights of start .. start+days (days+1 values) as UTC microseconds."""
    zone = ZoneInfo(timezone)
    return np.array(
        [
            _us(dt.datetime.combine(start + dt.timedelta(days=i), dt.time(0, 0), tzinfo=zone))
            for i in range(days + 1)
        ],
        dtype=np.int64,
    )


def local_hours_at(us: np.ndarray, timezone: str, day_start_us: np.ndarray) -> np.ndarray:
    """Local wall-clock hour (fractional) of UTC instants; DST days give 23 or 25 slots."""
    idx = pd.DatetimeIndex(pd.to_datetime(us, unit="us", utc=True)).tz_convert(timezone)
    return (idx.hour + idx.minute / 60.0).to_numpy(dtype=np.float64)


# Ontario statutory holidays observed by businesses (COM/IND run a weekend profile).
def holidays(years: range) -> set[dt.date]:
    out: set[dt.date] = set()

    def nth_weekday(year, month, weekday, n):
        d = dt.date(year, month, 1)
        d += dt.timedelta(days=(weekday - d.weekday()) % 7)
        return d + dt.timedelta(weeks=n - 1)

    def easter(year):
        a = year % 19
        b, c = divmod(year, 100)
        d, e = divmod(b, 4)
        f = (b + 8) // 25
        g = (b - f + 1) // 3
        h = (19 * a + b - d - g + 15) % 30
        i, k = divmod(c, 4)
        l_ = (32 + 2 * e + 2 * i - h - k) % 7
        m = (a + 11 * h + 22 * l_) // 451
        month, day = divmod(h + l_ - 7 * m + 114, 31)
        return dt.date(year, month, day + 1)

    for y in years:
        out |= {
            dt.date(y, 1, 1),
            nth_weekday(y, 2, 0, 3),  # Family Day
            easter(y) - dt.timedelta(days=2),  # Good Friday
            dt.date(y, 7, 1),
            nth_weekday(y, 8, 0, 1),  # Civic Holiday
            nth_weekday(y, 9, 0, 1),  # Labour Day
            nth_weekday(y, 10, 0, 2),  # Thanksgiving
            dt.date(y, 12, 25),
            dt.date(y, 12, 26),
        }
        may24 = dt.date(y, 5, 24)
        out.add(may24 - dt.timedelta(days=(may24.weekday() - 0) % 7))  # Victoria Day
    return out


@dataclass
class Calendar:
    """Per read date: UTC bounds, weekday, holiday, day of year, validation time."""

    dates: list[dt.date]
    start_us: np.ndarray  # (D+1,)
    weekday: np.ndarray  # (D,) 0=Mon
    holiday: np.ndarray  # (D,) bool
    doy: np.ndarray  # (D,)
    hours: np.ndarray  # (D,) 23, 24 or 25

    @property
    def days(self) -> int:
        return len(self.dates)

    @property
    def offday(self) -> np.ndarray:
        """Weekend or statutory holiday: businesses run their weekend load."""
        return (self.weekday >= 5) | self.holiday


def build_calendar(start: dt.date, days: int, timezone: str) -> Calendar:
    dates = [start + dt.timedelta(days=i) for i in range(days)]
    starts = day_starts_us(start, days, timezone)
    hol = holidays(range(start.year, dates[-1].year + 1))
    return Calendar(
        dates=dates,
        start_us=starts,
        weekday=np.array([d.weekday() for d in dates]),
        holiday=np.array([d in hol for d in dates]),
        doy=np.array([d.timetuple().tm_yday for d in dates]),
        hours=np.diff(starts) // US_PER_HOUR,
    )


@dataclass
class SlotGrid:
    """All interval slots of the period for one interval length, in time order.

    `day`/`slot` locate each interval in a padded (days, max_slots) day-major layout: the
    rules work on that layout, the load model on the flat time axis.
    """

    minutes: int
    start_us: np.ndarray  # (T,)
    day: np.ndarray  # (T,)
    slot: np.ndarray  # (T,)
    local_hour: np.ndarray  # (T,)
    utc_hour: np.ndarray  # (T,)
    max_slots: int
    slots_per_day: np.ndarray  # (D,)
    timezone: str = "America/Toronto"

    @property
    def size(self) -> int:
        return len(self.start_us)


def build_grid(cal: Calendar, minutes: int, timezone: str) -> SlotGrid:
    step = minutes * US_PER_MIN
    t = np.arange(cal.start_us[0], cal.start_us[-1], step, dtype=np.int64)
    day = np.searchsorted(cal.start_us, t, side="right") - 1
    slot = (t - cal.start_us[day]) // step
    per_day = (np.diff(cal.start_us) // step).astype(np.int64)
    return SlotGrid(
        minutes=minutes,
        start_us=t,
        day=day.astype(np.int64),
        slot=slot.astype(np.int64),
        local_hour=local_hours_at(t, timezone, cal.start_us),
        utc_hour=((t // US_PER_MIN) % (24 * 60)) / 60.0,
        max_slots=int(per_day.max()),
        slots_per_day=per_day,
        timezone=timezone,
    )
