"""Business hours as time: open or closed, the next opening across days and DST, the waiting texts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from automations.business_hours import describe_opening, next_opening, open_at
from automations.rules import BusinessHours
from automations.waiting import WaitingReplies, acknowledgement, load_waiting

WEEKDAYS_9_TO_5 = BusinessHours(timezone="Europe/Paris", hours={
    d: [("09:00", "12:30"), ("13:30", "17:00")] for d in ("mon", "tue", "wed", "thu", "fri")})


def utc(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_open_inside_a_range_closed_in_the_lunch_break_and_at_the_weekend() -> None:
    assert open_at(WEEKDAYS_9_TO_5, utc(2026, 12, 2, 9, 0))  # Wed 10:00 in Paris (UTC+1)
    assert not open_at(WEEKDAYS_9_TO_5, utc(2026, 12, 2, 11, 45))  # 12:45: lunch
    assert not open_at(WEEKDAYS_9_TO_5, utc(2026, 12, 5, 10, 0))  # Saturday


def test_no_hours_is_always_open_and_has_no_next_opening() -> None:
    for hours in (None, BusinessHours(), BusinessHours(timezone="Asia/Tokyo", hours={"mon": []})):
        assert open_at(hours, utc(2026, 12, 6, 3, 0))
        assert next_opening(hours, utc(2026, 12, 6, 3, 0)) is None


def test_next_opening_later_today_after_lunch() -> None:
    opening = next_opening(WEEKDAYS_9_TO_5, utc(2026, 12, 2, 11, 45))
    assert opening is not None and opening.isoformat() == "2026-12-02T13:30:00+01:00"
    assert describe_opening(opening, utc(2026, 12, 2, 11, 45)) == "today at 13:30 CET"


def test_next_opening_tomorrow_and_across_the_weekend() -> None:
    evening = utc(2026, 12, 2, 18, 0)  # Wednesday 19:00 in Paris
    opening = next_opening(WEEKDAYS_9_TO_5, evening)
    assert opening is not None and describe_opening(opening, evening) == "tomorrow at 09:00 CET"
    friday_night = utc(2026, 12, 4, 20, 0)
    opening = next_opening(WEEKDAYS_9_TO_5, friday_night)
    assert opening is not None and opening.isoformat() == "2026-12-07T09:00:00+01:00"
    assert describe_opening(opening, friday_night) == "Monday at 09:00 CET"


def test_the_local_date_decides_today_not_utc() -> None:
    kolkata = BusinessHours(timezone="Asia/Kolkata", hours={"thu": [("10:00", "18:00")]})
    late = utc(2026, 12, 2, 20, 0)  # Wednesday 20:00 UTC is Thursday 01:30 in Kolkata
    opening = next_opening(kolkata, late)
    assert opening is not None and describe_opening(opening, late) == "today at 10:00 IST"


def test_a_week_ahead_names_the_date() -> None:
    mondays = BusinessHours(timezone="UTC", hours={"mon": [("09:00", "10:00")]})
    after = utc(2026, 12, 7, 10, 30)  # Monday, just closed
    opening = next_opening(mondays, after)
    assert opening is not None and describe_opening(opening, after) == "Monday 14 December at 09:00 UTC"


def test_next_opening_across_the_spring_dst_change() -> None:
    # Europe/Paris moves from 02:00 CET to 03:00 CEST on Sunday 29 March 2026.
    sundays = BusinessHours(timezone="Europe/Paris", hours={"sun": [("10:00", "12:00")]})
    saturday = utc(2026, 3, 28, 12, 0)
    opening = next_opening(sundays, saturday)
    assert opening is not None and opening.isoformat() == "2026-03-29T10:00:00+02:00"
    assert opening.astimezone(UTC) == utc(2026, 3, 29, 8, 0)
    assert describe_opening(opening, saturday) == "tomorrow at 10:00 CEST"


def test_an_opening_the_clock_skips_happens_when_the_clock_reads_an_hour_later() -> None:
    early = BusinessHours(timezone="Europe/Paris", hours={"sun": [("02:30", "04:00")]})
    opening = next_opening(early, utc(2026, 3, 28, 12, 0))
    assert opening is not None and opening.astimezone(UTC) == utc(2026, 3, 29, 1, 30)
    assert f"{opening:%H:%M %Z}" == "03:30 CEST"


def test_next_opening_across_the_autumn_dst_change() -> None:
    new_york = BusinessHours(timezone="America/New_York", hours={"mon": [("08:00", "17:00")]})
    # Clocks go back on Sunday 1 November 2026: Monday 08:00 is EST (UTC-5).
    opening = next_opening(new_york, utc(2026, 10, 31, 15, 0))
    assert opening is not None and opening.astimezone(UTC) == utc(2026, 11, 2, 13, 0)


def test_a_range_spanning_midnight_opens_at_its_start_and_at_midnight() -> None:
    nights = BusinessHours(timezone="UTC", hours={"fri": [("22:00", "02:00")]})
    opening = next_opening(nights, utc(2026, 12, 3, 12, 0))  # Thursday noon: Friday 00:00 comes first
    assert opening is not None and opening.astimezone(UTC) == utc(2026, 12, 4, 0, 0)
    opening = next_opening(nights, utc(2026, 12, 4, 3, 0))  # Friday 03:00
    assert opening is not None and opening.astimezone(UTC) == utc(2026, 12, 4, 22, 0)


def test_the_acknowledgement_in_and_out_of_hours() -> None:
    replies = WaitingReplies()
    assert acknowledgement(replies, WEEKDAYS_9_TO_5, utc(2026, 12, 2, 9, 0)) == "Thanks! A teammate will reply shortly."
    assert acknowledgement(replies, WEEKDAYS_9_TO_5, utc(2026, 12, 4, 20, 0)) == \
        "We're closed now; we reply from Monday at 09:00 CET."
    assert acknowledgement(replies, None, utc(2026, 12, 4, 20, 0)) == replies.in_hours_text
    braces = WaitingReplies(out_of_hours_text="Closed {until} {next_open} {0}")
    assert acknowledgement(braces, WEEKDAYS_9_TO_5, utc(2026, 12, 2, 11, 45)) == \
        "Closed {until} today at 13:30 CET {0}"


def test_waiting_texts_are_bounded_and_bad_stored_values_fall_back_to_the_defaults() -> None:
    with pytest.raises(ValidationError):
        WaitingReplies(in_hours_text="   ")
    with pytest.raises(ValidationError):
        WaitingReplies(out_of_hours_text="x" * 1025)
    assert load_waiting({"in_hours_text": ""}, tenant_id="t") == WaitingReplies()
    assert load_waiting(None, tenant_id="t") == WaitingReplies()
    assert load_waiting({"acknowledge": False}, tenant_id="t").acknowledge is False
