"""Request and response models of ``/v1/settings``; business hours are ``automations.rules.BusinessHours``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from automations.rules import HourMinute, Weekday, Zone
from automations.waiting import Text as WaitingText
from automations.waiting import WaitingReplies
from schemas.ai import DEFAULT_THRESHOLD

MAX_RANGES_A_DAY = 4
DAY_MINUTES = 24 * 60


class AiSettings(BaseModel):
    """Which AI answers the tenant's customers, and the confidence at which its reply is sent.

    ``offline`` is the local scorer over the knowledge base, ``openai`` an OpenAI-compatible model,
    ``off`` no AI (every conversation the automations do not settle goes to an agent).
    """

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"provider": "offline", "threshold": 0.7}]},
        extra="forbid")

    provider: Literal["offline", "openai", "off"] = "offline"
    threshold: float = Field(DEFAULT_THRESHOLD, ge=0.0, le=1.0)


DayRanges = Annotated[list[tuple[HourMinute, HourMinute]], Field(max_length=MAX_RANGES_A_DAY)]
_WAITING_EXAMPLE: dict[str, Any] = {
    "acknowledge": True, "ai_answers_while_waiting": True,
    "in_hours_text": "Thanks! A teammate will reply shortly.",
    "out_of_hours_text": "We're closed now; we reply from {next_open}.",
    "timezone": "Asia/Kolkata",
    "hours": {day: [["09:00", "13:00"], ["14:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
    | {"sat": [["10:00", "14:00"]]},
}


class WaitingSettings(BaseModel):
    """What a customer waiting for a person hears, and when the tenant is open (``/v1/settings/waiting``).

    ``acknowledge``: send ``in_hours_text`` (or, queued while closed, ``out_of_hours_text`` with
    ``{next_open}`` replaced by the next opening, "tomorrow at 09:00 IST") once per waiting episode.
    ``ai_answers_while_waiting``: a queued conversation's new question still goes to the AI, whose
    confident answer is sent (the conversation keeps its place in the queue). ``timezone`` and ``hours``
    are the tenant's business hours (the same as ``/v1/settings/business-hours``): per weekday the open
    ranges, local ``HH:MM``; an end of ``00:00`` is midnight. No ranges at all: always open.
    """

    model_config = ConfigDict(json_schema_extra={"examples": [_WAITING_EXAMPLE]})

    acknowledge: bool = True
    ai_answers_while_waiting: bool = True
    in_hours_text: str = WaitingReplies().in_hours_text
    out_of_hours_text: str = WaitingReplies().out_of_hours_text
    timezone: str = "UTC"
    hours: dict[str, list[tuple[str, str]]] = {}


class WaitingSettingsUpdate(BaseModel):
    """The waiting settings to save: texts of 1 to 1024 characters, at most 4 ordered, non-overlapping
    ranges a weekday, ``start`` before ``end`` (an end of ``00:00`` is midnight), an IANA time zone."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_WAITING_EXAMPLE]})

    acknowledge: bool = True
    ai_answers_while_waiting: bool = True
    in_hours_text: WaitingText = WaitingReplies().in_hours_text
    out_of_hours_text: WaitingText = WaitingReplies().out_of_hours_text
    timezone: Zone = "UTC"
    hours: dict[Weekday, DayRanges] = {}

    @field_validator("hours")
    @classmethod
    def _ordered(cls, hours: dict[Weekday, list[tuple[str, str]]]) -> dict[Weekday, list[tuple[str, str]]]:
        for day, ranges in hours.items():
            previous_end = -1
            for start, end in ranges:
                begins, ends = _minutes(start), _minutes(end) or DAY_MINUTES
                if begins >= ends:
                    raise ValueError(f"{day}: {start}-{end} ends before it starts (an end of 00:00 is midnight)")
                if begins < previous_end:
                    raise ValueError(f"{day}: {start}-{end} overlaps or comes before the range before it; "
                                     "list a day's ranges in order, without overlaps")
                previous_end = ends
        return hours

    def replies(self) -> WaitingReplies:
        return WaitingReplies(acknowledge=self.acknowledge, ai_answers_while_waiting=self.ai_answers_while_waiting,
                              in_hours_text=self.in_hours_text, out_of_hours_text=self.out_of_hours_text)

    def stored_hours(self) -> dict[str, list[list[str]]]:
        """The weekdays with ranges (an empty day is left out: no ranges at all is always open)."""
        return {day: [[start, end] for start, end in ranges] for day, ranges in self.hours.items() if ranges}


def _minutes(hhmm: str) -> int:
    hour, minute = hhmm.split(":")
    return int(hour) * 60 + int(minute)
