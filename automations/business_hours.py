"""Business hours as time: whether a tenant is open at an instant, and when it opens next.

The schedule is ``automations.rules.BusinessHours`` (per weekday ``["HH:MM", "HH:MM"]`` ranges in an
IANA zone), read exactly as the ``outside_business_hours`` trigger reads it (``automations.engine.is_open``):
a range whose end is before its start covers that weekday from its start to midnight and from midnight to
its end; equal ends are the whole day. A schedule with no range at all is **always open** (a tenant that
set no hours never tells its customers it is closed). Times are local wall-clock times: across a daylight
saving change an opening that does not exist that day (02:30 when clocks jump from 02:00 to 03:00) happens
at the same instant the clock reads 03:30, and ``next_opening`` says so.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from automations.engine import is_open
from automations.rules import WEEKDAYS, BusinessHours

LOOKAHEAD_DAYS = 8  # every weekday once, plus the rest of today


def has_hours(hours: BusinessHours | None) -> bool:
    """Whether the schedule names any opening range (none: always open)."""
    return hours is not None and any(hours.hours.values())


def open_at(hours: BusinessHours | None, at: datetime) -> bool:
    """Whether the tenant is open at ``at`` (an aware datetime)."""
    return not has_hours(hours) or is_open(hours, at)


def _hhmm(text: str) -> time:
    hour, minute = text.split(":")
    return time(int(hour), int(minute))


def _openings(hours: BusinessHours, day: date) -> list[time]:
    """The local times at which ranges of ``day`` begin (a range spanning midnight also covers 00:00)."""
    starts = []
    for start, end in hours.hours.get(WEEKDAYS[day.weekday()], []):
        starts.append(_hhmm(start))
        if _hhmm(end) <= _hhmm(start):
            starts.append(time(0, 0))
    return starts


def next_opening(hours: BusinessHours | None, at: datetime) -> datetime | None:
    """The first instant after ``at`` at which the tenant is open, in its zone; None when open at ``at``."""
    if open_at(hours, at):
        return None
    assert hours is not None
    zone = ZoneInfo(hours.timezone)
    today = at.astimezone(zone).date()
    candidates = []
    for offset in range(LOOKAHEAD_DAYS + 1):
        day = today + timedelta(days=offset)
        for start in _openings(hours, day):
            instant = datetime.combine(day, start, tzinfo=zone).astimezone(UTC)
            if instant > at and is_open(hours, instant):
                candidates.append(instant)
    return min(candidates).astimezone(zone) if candidates else None


def describe_opening(opening: datetime, at: datetime) -> str:
    """``opening`` for a customer, in the opening's own zone: "today at 09:00 CET", "tomorrow at …",
    "Monday at …" within the week, else "Monday 14 December at …"."""
    local_now = at.astimezone(opening.tzinfo)
    days = (opening.date() - local_now.date()).days
    clock = f"{opening:%H:%M} {opening.tzname()}"
    if days == 0:
        return f"today at {clock}"
    if days == 1:
        return f"tomorrow at {clock}"
    if days < 7:
        return f"{opening:%A} at {clock}"
    return f"{opening:%A} {opening.day} {opening:%B} at {clock}"
