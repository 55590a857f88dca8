"""The dashboards' time range and buckets: what ``from``/``to``/``period``/``bucket`` mean, and their bounds.

A range is half-open, ``[start, end)``, in UTC instants; days and hours are the tenant's, in its time zone
(``tenant_settings.timezone``, UTC when unset or unknown). ``period`` is ``today`` (from the tenant's
midnight to the next), ``7d`` or ``30d`` (that many whole days ending with today). ``from``/``to`` are
dates (``YYYY-MM-DD``, both days included) or ISO 8601 times (a time without an offset is the tenant's
local time; ``to`` excluded). A range spans at most ``MAX_DAYS`` days; hourly buckets at most
``MAX_HOURLY_DAYS`` days, so a chart never has more than ~750 points. Without ``bucket``, a range of up to
two days is shown by the hour, a longer one by the day.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Bucket = Literal["hour", "day"]
Period = Literal["today", "7d", "30d"]

MAX_DAYS = 93
MAX_HOURLY_DAYS = 31
HOURLY_BY_DEFAULT_DAYS = 2
PERIOD_DAYS: dict[str, int] = {"today": 1, "7d": 7, "30d": 30}


class RangeError(ValueError):
    """The requested range cannot be shown (the API answers 422 with the message)."""


@dataclass(frozen=True)
class DashboardRange:
    """A resolved range: UTC instants, the tenant's time zone name and the bucket size."""

    start: datetime
    end: datetime
    timezone: str
    bucket: Bucket
    period: Period | None = None

    @property
    def zone(self) -> tzinfo:
        return zone_of(self.timezone)

    def buckets(self) -> list[datetime]:
        """The start (UTC) of every bucket of the range, in order; the first may begin before ``start``."""
        zone = self.zone
        first = floor(self.start, self.bucket, zone)
        starts = [first]
        while True:
            following = next_start(starts[-1], self.bucket, zone)
            if following >= self.end:
                return starts
            starts.append(following)

    def bucket_of(self, starts: list[datetime], moment: datetime) -> int:
        """The index in ``starts`` of the bucket holding ``moment`` (a database bucket's start)."""
        return max(0, bisect.bisect_right(starts, moment.astimezone(UTC)) - 1)


def zone_of(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def known_zone(name: str | None) -> str:
    """``name`` when it is a time zone this server knows, else ``UTC``."""
    if not name:
        return "UTC"
    return name if zone_of(name) is not UTC or name == "UTC" else "UTC"


def floor(moment: datetime, bucket: Bucket, zone: tzinfo) -> datetime:
    """The start (UTC) of the tenant's hour or day holding ``moment``."""
    local = moment.astimezone(zone)
    if bucket == "day":
        return local_midnight(local.date(), zone)
    return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)


def next_start(start: datetime, bucket: Bucket, zone: tzinfo) -> datetime:
    """The start of the bucket after the one starting at ``start`` (local days are 23 to 25 hours)."""
    if bucket == "day":
        return local_midnight(start.astimezone(zone).date() + timedelta(days=1), zone)
    return floor(start + timedelta(hours=1), "hour", zone)


def local_midnight(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _moment(value: str, name: str, zone: tzinfo, *, end: bool) -> datetime:
    """A ``from``/``to`` value: a date (``to`` includes its whole day) or a time (no offset: local)."""
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return local_midnight(day + timedelta(days=1) if end else day, zone)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RangeError(f"'{name}' must be a date (YYYY-MM-DD) or an ISO 8601 time, got {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def resolve(*, timezone: str, now: datetime, period: str | None = None, start: str | None = None,
            end: str | None = None, bucket: str | None = None) -> DashboardRange:
    """The range the query parameters ask for, or ``RangeError`` saying what is wrong."""
    zone_name = known_zone(timezone)
    zone = zone_of(zone_name)
    if bucket not in (None, "hour", "day"):
        raise RangeError("'bucket' must be 'hour' or 'day'")
    chosen: Period | None = None
    if period is not None:
        if start is not None or end is not None:
            raise RangeError("give either 'period' or 'from' and 'to', not both")
        if period not in PERIOD_DAYS:
            raise RangeError("'period' must be one of today, 7d, 30d")
        chosen = period  # type: ignore[assignment]
        last = now.astimezone(zone).date()
        first_day = last - timedelta(days=PERIOD_DAYS[period] - 1)
        begin, finish = local_midnight(first_day, zone), local_midnight(last + timedelta(days=1), zone)
    elif start is None or end is None:
        raise RangeError("give 'period' (today, 7d, 30d) or both 'from' and 'to'")
    else:
        begin, finish = _moment(start, "from", zone, end=False), _moment(end, "to", zone, end=True)
    if finish <= begin:
        raise RangeError("'to' must be after 'from'")
    span = finish - begin
    if span > timedelta(days=MAX_DAYS):
        raise RangeError(f"the range spans more than {MAX_DAYS} days; choose a shorter one")
    size: Bucket = ("hour" if span <= timedelta(days=HOURLY_BY_DEFAULT_DAYS) else "day") if bucket is None \
        else bucket  # type: ignore[assignment]
    if size == "hour" and span > timedelta(days=MAX_HOURLY_DAYS):
        raise RangeError(f"hourly buckets need a range of at most {MAX_HOURLY_DAYS} days; use bucket=day")
    return DashboardRange(begin, finish, zone_name, size, chosen)
