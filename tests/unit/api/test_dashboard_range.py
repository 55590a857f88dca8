"""api.dashboard_range: what period/from/to/bucket mean in the tenant's time zone, the buckets, the bounds."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from api.dashboard_range import MAX_DAYS, MAX_HOURLY_DAYS, DashboardRange, RangeError, known_zone, resolve

NOW = datetime(2026, 12, 2, 3, 30, tzinfo=UTC)


def test_today_is_the_tenants_local_day_by_the_hour() -> None:
    rng = resolve(timezone="Asia/Kolkata", now=NOW, period="today")  # 09:00 in Kolkata (UTC+05:30)
    assert rng.start == datetime(2026, 12, 1, 18, 30, tzinfo=UTC)
    assert rng.end == datetime(2026, 12, 2, 18, 30, tzinfo=UTC)
    assert rng.bucket == "hour" and rng.period == "today" and rng.timezone == "Asia/Kolkata"
    starts = rng.buckets()
    assert len(starts) == 24 and starts[0] == rng.start and starts[-1] == rng.end - timedelta(hours=1)


def test_today_in_utc_when_the_tenant_zone_is_unknown() -> None:
    rng = resolve(timezone="Mars/Olympus", now=NOW, period="today")
    assert rng.timezone == "UTC"
    assert (rng.start, rng.end) == (datetime(2026, 12, 2, tzinfo=UTC), datetime(2026, 12, 3, tzinfo=UTC))
    assert known_zone(None) == "UTC" and known_zone("Europe/Paris") == "Europe/Paris"


def test_seven_and_thirty_days_end_with_today_by_the_day() -> None:
    week = resolve(timezone="UTC", now=NOW, period="7d")
    assert week.start == datetime(2026, 11, 26, tzinfo=UTC) and week.end == datetime(2026, 12, 3, tzinfo=UTC)
    assert week.bucket == "day" and len(week.buckets()) == 7
    month = resolve(timezone="UTC", now=NOW, period="30d", bucket="hour")
    assert month.bucket == "hour" and len(month.buckets()) == 30 * 24


def test_dates_include_both_days_in_the_tenants_zone() -> None:
    rng = resolve(timezone="America/New_York", now=NOW, start="2026-03-07", end="2026-03-09")
    assert rng.start == datetime(2026, 3, 7, 5, tzinfo=UTC)  # EST
    assert rng.end == datetime(2026, 3, 10, 4, tzinfo=UTC)  # EDT after the change of 8 March
    assert rng.bucket == "day"
    assert rng.buckets() == [datetime(2026, 3, 7, 5, tzinfo=UTC), datetime(2026, 3, 8, 5, tzinfo=UTC),
                             datetime(2026, 3, 9, 4, tzinfo=UTC)]


def test_hours_over_a_daylight_saving_change_are_real_hours() -> None:
    rng = resolve(timezone="Europe/Berlin", now=NOW, start="2026-03-29", end="2026-03-29", bucket="hour")
    starts = rng.buckets()
    assert len(starts) == 23  # the local day of the change has 23 hours
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(starts))


def test_times_with_and_without_offsets() -> None:
    rng = resolve(timezone="Asia/Tokyo", now=NOW, start="2026-12-01T10:15:00Z", end="2026-12-01T21:00:00")
    assert rng.start == datetime(2026, 12, 1, 10, 15, tzinfo=UTC)
    assert rng.end == datetime(2026, 12, 1, 12, tzinfo=UTC)  # 21:00 in Tokyo (UTC+09:00)
    assert rng.bucket == "hour" and rng.buckets()[0] == datetime(2026, 12, 1, 10, tzinfo=UTC)


def test_a_bucket_may_begin_before_the_range_and_moments_find_their_bucket() -> None:
    rng = DashboardRange(datetime(2026, 12, 1, 10, 15, tzinfo=UTC), datetime(2026, 12, 1, 12, 30, tzinfo=UTC),
                         "UTC", "hour")
    starts = rng.buckets()
    assert starts == [datetime(2026, 12, 1, h, tzinfo=UTC) for h in (10, 11, 12)]
    assert rng.bucket_of(starts, datetime(2026, 12, 1, 11, tzinfo=UTC)) == 1
    assert rng.bucket_of(starts, datetime(2026, 12, 1, 9, tzinfo=UTC)) == 0
    assert rng.bucket_of(starts, datetime(2026, 12, 1, 13, tzinfo=UTC)) == 2


def test_the_longest_ranges_allowed() -> None:
    days = resolve(timezone="UTC", now=NOW, start="2026-01-01", end="2026-04-03")
    assert days.end - days.start == timedelta(days=MAX_DAYS) and len(days.buckets()) == MAX_DAYS
    hours = resolve(timezone="UTC", now=NOW, start="2026-01-01", end="2026-01-31", bucket="hour")
    assert len(hours.buckets()) == MAX_HOURLY_DAYS * 24


@pytest.mark.parametrize(("params", "message"), [
    ({}, "give 'period'"),
    ({"start": "2026-01-01"}, "give 'period'"),
    ({"period": "today", "start": "2026-01-01", "end": "2026-01-02"}, "not both"),
    ({"period": "90d"}, "'period' must be"),
    ({"start": "2026-01-05", "end": "2026-01-04"}, "'to' must be after 'from'"),
    ({"start": "2026-01-01", "end": "2026-04-04"}, "more than 93 days"),
    ({"start": "2026-01-01", "end": "2026-02-01", "bucket": "hour"}, "at most 31 days"),
    ({"period": "today", "bucket": "week"}, "'bucket' must be"),
    ({"start": "yesterday", "end": "2026-01-01"}, "'from' must be a date"),
    ({"start": "2026-01-01", "end": "2026-13-01"}, "'to' must be a date"),
])
def test_refused_ranges_say_why(params: dict[str, str], message: str) -> None:
    with pytest.raises(RangeError, match=message):
        resolve(timezone="UTC", now=NOW, **params)
