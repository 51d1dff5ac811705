import datetime as dt
from zoneinfo import ZoneInfo

from vee_tasks.dates import day_bounds, read_date_for

TZ = "America/Toronto"


def test_local_midnight_is_that_local_date():
    logical = dt.datetime(2026, 3, 1, 0, 0, tzinfo=ZoneInfo(TZ))
    assert read_date_for(logical.astimezone(dt.timezone.utc), TZ) == dt.date(2026, 3, 1)


def test_utc_midnight_from_the_command_line_is_that_date():
    logical = dt.datetime(2026, 3, 1, 0, 0, tzinfo=dt.timezone.utc)
    assert read_date_for(logical, TZ) == dt.date(2026, 3, 1)


def test_daylight_saving_days_have_23_and_25_hours():
    start, end = day_bounds(dt.date(2026, 3, 8), TZ)
    assert end - start == dt.timedelta(hours=23)
    start, end = day_bounds(dt.date(2026, 11, 1), TZ)
    assert end - start == dt.timedelta(hours=25)


def test_a_weekly_trigger_instant_is_its_local_date_in_any_zone():
    """The weekly run fires Sunday 02:00 local: that Sunday, even where 02:00 local is still
    Saturday in UTC (Tokyo) or already past UTC midnight (Toronto)."""
    for zone in ("America/Toronto", "Asia/Tokyo", "Australia/Sydney", "Pacific/Honolulu"):
        fired = dt.datetime(2026, 3, 15, 2, 0, tzinfo=ZoneInfo(zone))
        assert read_date_for(fired.astimezone(dt.timezone.utc), zone) == dt.date(2026, 3, 15), zone
