"""Automation rules: what a tenant configures (trigger, conditions, actions), validated.

A rule is stored as JSON in ``automation_rules`` and evaluated by ``automations.engine``. Each
part is a tagged union on ``type``; unknown types are refused when the rule is saved, so the
engine never meets one. Regular expressions are compiled and length-capped at validation.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_PATTERN = 500
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- triggers ------------------------------------------------------------------------------------

class MessageReceived(_Part):
    type: Literal["message_received"] = "message_received"


class FirstMessage(_Part):
    """The first message of a conversation (no earlier state)."""

    type: Literal["first_message"] = "first_message"


class Keyword(_Part):
    """Any of ``keywords`` in the message text: as a whole word (default), the exact text, or anywhere."""

    type: Literal["keyword"] = "keyword"
    keywords: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(min_length=1, max_length=50)
    match: Literal["word", "exact", "contains"] = "word"


class Regex(_Part):
    """The message text matches ``pattern`` (Python syntax, case-insensitive)."""

    type: Literal["regex"] = "regex"
    pattern: str = Field(min_length=1, max_length=MAX_PATTERN)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from exc
        return pattern


class Payload(_Part):
    """A quick-reply button's payload or an interactive button/list reply id."""

    type: Literal["payload"] = "payload"
    payloads: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(min_length=1, max_length=50)


class OutsideBusinessHours(_Part):
    """A message received outside the tenant's business hours (in the tenant's time zone)."""

    type: Literal["outside_business_hours"] = "outside_business_hours"


class ConversationResolved(_Part):
    type: Literal["conversation_resolved"] = "conversation_resolved"


Trigger = Annotated[MessageReceived | FirstMessage | Keyword | Regex | Payload | OutsideBusinessHours
                    | ConversationResolved, Field(discriminator="type")]


# --- conditions ----------------------------------------------------------------------------------

class ContactTags(_Part):
    type: Literal["contact_tags"] = "contact_tags"
    has: list[str] = []
    lacks: list[str] = []


class ContactAttribute(_Part):
    type: Literal["contact_attribute"] = "contact_attribute"
    key: str = Field(min_length=1, max_length=100)
    op: Literal["eq", "neq", "exists", "missing", "contains"] = "eq"
    value: str | None = None


class ConversationState(_Part):
    type: Literal["conversation_state"] = "conversation_state"
    states: list[Literal["bot", "queued", "agent", "closed"]] = Field(min_length=1)


class TimeWindow(_Part):
    """Local time between ``start`` and ``end`` on ``days`` (``end`` < ``start`` spans midnight)."""

    type: Literal["time_window"] = "time_window"
    days: list[Weekday] = list(WEEKDAYS)
    start: str = Field(pattern=HHMM)
    end: str = Field(pattern=HHMM)
    timezone: str | None = None  # default: the tenant's


Condition = Annotated[ContactTags | ContactAttribute | ConversationState | TimeWindow, Field(discriminator="type")]


# --- actions -------------------------------------------------------------------------------------

class Reply(_Part):
    """Send ``message``: a Meta message object with its ``type`` (text, template, interactive…)."""

    type: Literal["reply"] = "reply"
    message: dict[str, Any]

    @field_validator("message")
    @classmethod
    def _typed(cls, message: dict[str, Any]) -> dict[str, Any]:
        kind = message.get("type")
        if not isinstance(kind, str) or not isinstance(message.get(kind), dict):
            raise ValueError('a reply is a Meta message object, e.g. {"type": "text", "text": {"body": "Hi"}}')
        return message


class AddTag(_Part):
    type: Literal["add_tag"] = "add_tag"
    tag: str = Field(min_length=1, max_length=100)


class RemoveTag(_Part):
    type: Literal["remove_tag"] = "remove_tag"
    tag: str = Field(min_length=1, max_length=100)


class SetAttribute(_Part):
    type: Literal["set_attribute"] = "set_attribute"
    key: str = Field(min_length=1, max_length=100)
    value: str = Field(max_length=1000)


class Assign(_Part):
    """Assign to an agent, or to the best free agent of a team."""

    type: Literal["assign"] = "assign"
    agent_id: str | None = None
    team: str | None = None


class Handoff(_Part):
    """Hand the conversation to a human (queued until an agent is free)."""

    type: Literal["handoff"] = "handoff"
    team: str | None = None
    reason: str | None = None


class Resolve(_Part):
    type: Literal["resolve"] = "resolve"


class OptOut(_Part):
    type: Literal["opt_out"] = "opt_out"


class OptIn(_Part):
    type: Literal["opt_in"] = "opt_in"


Action = Annotated[Reply | AddTag | RemoveTag | SetAttribute | Assign | Handoff | Resolve | OptOut | OptIn,
                   Field(discriminator="type")]


class RuleSpec(BaseModel):
    """What a tenant writes: a named rule."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    enabled: bool = True
    trigger: Trigger
    conditions: list[Condition] = Field(default_factory=list, max_length=20)
    actions: list[Action] = Field(min_length=1, max_length=20)
    stop: bool = False  # when it matches, later rules do not run


class Rule(RuleSpec):
    """A stored rule: its id and place in the tenant's order."""

    id: str
    position: int


class BusinessHours(BaseModel):
    """When a tenant is open: per weekday, a list of ``["HH:MM", "HH:MM"]`` ranges, in ``timezone``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = "UTC"
    hours: dict[Weekday, list[tuple[Annotated[str, Field(pattern=HHMM)], Annotated[str, Field(pattern=HHMM)]]]] = {}

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {zone!r}") from exc
        return zone
