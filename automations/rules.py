"""Automation rules: what a tenant configures (trigger, conditions, actions), validated.

A rule is stored as JSON in ``automation_rules`` and evaluated by ``automations.engine``. Each
part is a tagged union on ``type``; everything is checked when the rule is saved (unknown types,
time zones, regular expressions, reply messages, bounds), so a bad rule is a 422 naming its field
and never reaches a customer's message. Regular expressions run on RE2 (``google-re2``), whose
matching time is linear in the text: a tenant's pattern cannot stall the conversation processor
for everyone else. Patterns RE2 cannot run (backreferences, lookaround) are refused. A reply is a
Meta message object (``schemas.messages.MessageContent``) without routing fields: it always goes
to the conversation's customer. ``load_rules`` and ``load_business_hours`` read stored data and
skip (and log) what no longer validates instead of failing the tenant's every message.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import re2
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from schemas.messages import ROUTING_FIELDS, MessageContent

log = logging.getLogger(__name__)

MAX_PATTERN = 200  # characters of a regular expression
MAX_PATTERN_MEMORY = 1 << 20  # bytes RE2 may use for one compiled pattern and its DFA cache
MAX_REPLY_BYTES = 16_384  # a reply's message object, as JSON
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"


def _known_zone(zone: str) -> str:
    try:
        ZoneInfo(zone)
    except Exception as exc:  # ZoneInfoNotFoundError, ValueError (not a relative key), OSError
        raise ValueError(f"unknown time zone {zone!r}: use an IANA name such as 'Europe/Paris'") from exc
    return zone


def normalise(text: str) -> str:
    """Case-folded, accent-insensitive text with single spaces (how keywords and messages are compared)."""
    folded = unicodedata.normalize("NFKD", text).casefold()
    return " ".join("".join(c for c in folded if not unicodedata.combining(c)).split())


@lru_cache(maxsize=256)
def compiled(pattern: str) -> Any:
    """``pattern`` compiled by RE2, case-insensitive; ``re2.error`` when RE2 cannot run it."""
    options = re2.Options()
    options.case_sensitive, options.log_errors, options.max_mem = False, False, MAX_PATTERN_MEMORY
    return re2.compile(pattern, options)


Zone = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_known_zone)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Team = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50, pattern=r"^[^,]+$")]
UserId = Annotated[str, StringConstraints(
    pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
HourMinute = Annotated[str, Field(pattern=HHMM)]


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

    @field_validator("keywords")
    @classmethod
    def _visible(cls, keywords: list[str]) -> list[str]:
        if any(not normalise(k) for k in keywords):
            raise ValueError("a keyword must contain a letter, digit or symbol, not only spaces or accents")
        return keywords


class Regex(_Part):
    """The message text matches ``pattern``: RE2 syntax (no backreferences or lookaround), case-insensitive."""

    type: Literal["regex"] = "regex"
    pattern: str = Field(min_length=1, max_length=MAX_PATTERN)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            compiled(pattern)
        except re2.error as exc:
            reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else exc
            raise ValueError(f"invalid regular expression ({reason}); patterns use RE2 syntax, without "
                             "backreferences or lookaround") from exc
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
    has: list[Tag] = Field(default_factory=list, max_length=50)
    lacks: list[Tag] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _something(self) -> ContactTags:
        if not self.has and not self.lacks:
            raise ValueError("name at least one tag in 'has' or 'lacks'")
        return self


class ContactAttribute(_Part):
    """``exists``/``missing`` take no ``value``; ``eq``, ``neq`` and ``contains`` need one."""

    type: Literal["contact_attribute"] = "contact_attribute"
    key: str = Field(min_length=1, max_length=100)
    op: Literal["eq", "neq", "exists", "missing", "contains"] = "eq"
    value: str | None = Field(None, max_length=1000)

    @model_validator(mode="after")
    def _value_fits_op(self) -> ContactAttribute:
        if self.op in ("exists", "missing") and self.value is not None:
            raise ValueError(f"'{self.op}' takes no 'value'")
        if self.op in ("eq", "neq", "contains") and self.value is None:
            raise ValueError(f"'{self.op}' needs a 'value'")
        return self


class ConversationState(_Part):
    type: Literal["conversation_state"] = "conversation_state"
    states: list[Literal["bot", "queued", "agent", "closed"]] = Field(min_length=1, max_length=4)


class TimeWindow(_Part):
    """Local time between ``start`` and ``end`` on ``days`` (``end`` < ``start`` spans midnight, ``end`` =
    ``start`` is the whole day)."""

    type: Literal["time_window"] = "time_window"
    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS), min_length=1, max_length=7)
    start: HourMinute
    end: HourMinute
    timezone: Zone | None = None  # default: the tenant's


Condition = Annotated[ContactTags | ContactAttribute | ConversationState | TimeWindow, Field(discriminator="type")]


# --- actions -------------------------------------------------------------------------------------

class Reply(_Part):
    """Send ``message`` to the conversation's customer: a Meta message object with its ``type`` (text,
    template, interactive…), as ``POST /v1/messages`` takes it but without ``to`` or other routing fields.
    Stored as Graph's message fields (``MessageContent.graph_message``)."""

    type: Literal["reply"] = "reply"
    message: dict[str, Any]

    @field_validator("message")
    @classmethod
    def _message(cls, message: dict[str, Any]) -> dict[str, Any]:
        routing = sorted(ROUTING_FIELDS & message.keys())
        if routing:
            raise ValueError(f"a reply cannot set {', '.join(repr(r) for r in routing)}: it always goes to the "
                             "conversation's customer")
        if len(json.dumps(message, ensure_ascii=False).encode()) > MAX_REPLY_BYTES:
            raise ValueError(f"a reply's message is at most {MAX_REPLY_BYTES} bytes of JSON")
        try:
            content = MessageContent.model_validate(message)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'message'}: {e['msg']}"
                                 for e in exc.errors(include_url=False))
            raise ValueError(f'not a valid message object ({problems}); e.g. {{"type": "text", "text": '
                             '{"body": "Hi"}}') from None
        return content.graph_message()


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
    """Assign to an agent (a user of the tenant), or to the best free agent of a team (or of anyone)."""

    type: Literal["assign"] = "assign"
    agent_id: UserId | None = None
    team: Team | None = None

    @model_validator(mode="after")
    def _one_target(self) -> Assign:
        if self.agent_id is not None and self.team is not None:
            raise ValueError("give 'agent_id' or 'team', not both")
        return self


class Handoff(_Part):
    """Hand the conversation to a human (queued until an agent is free)."""

    type: Literal["handoff"] = "handoff"
    team: Team | None = None
    reason: str | None = Field(None, min_length=1, max_length=500)


class Resolve(_Part):
    type: Literal["resolve"] = "resolve"


class OptOut(_Part):
    type: Literal["opt_out"] = "opt_out"


class OptIn(_Part):
    type: Literal["opt_in"] = "opt_in"


Action = Annotated[Reply | AddTag | RemoveTag | SetAttribute | Assign | Handoff | Resolve | OptOut | OptIn,
                   Field(discriminator="type")]


RULE_EXAMPLE: dict[str, Any] = {
    "name": "After hours", "enabled": True, "trigger": {"type": "outside_business_hours"},
    "conditions": [{"type": "conversation_state", "states": ["bot"]}],
    "actions": [
        {
            "type": "reply",
            "message": {
                "type": "text", "text": {"body": "Thanks for your message! We are closed now and answer from 9:00."},
            },
        },
        {"type": "add_tag", "tag": "after-hours"},
    ],
    "stop": True,
}


class RuleSpec(BaseModel):
    """What a tenant writes: a named rule."""

    model_config = ConfigDict(json_schema_extra={"examples": [RULE_EXAMPLE]}, extra="forbid")

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
    """When a tenant is open: per weekday, a list of ``["HH:MM", "HH:MM"]`` ranges, in ``timezone``
    (a range whose end is before its start spans midnight; equal ends are the whole day)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "timezone": "America/Chicago",
                "hours": {"mon": [["09:00", "17:00"]], "tue": [["09:00", "17:00"]], "sat": [["10:00", "14:00"]]},
            },
        ]},
        extra="forbid", frozen=True)

    timezone: Zone = "UTC"
    hours: dict[Weekday, Annotated[list[tuple[HourMinute, HourMinute]], Field(max_length=10)]] = {}


def load_rules(rows: Iterable[Mapping[str, Any]], *, tenant_id: str) -> list[Rule]:
    """The stored rules that still validate; any other is skipped and logged (it cannot crash evaluation)."""
    rules = []
    for row in rows:
        try:
            rules.append(Rule.model_validate(row))
        except ValidationError as exc:
            log.warning("rule %s of tenant %s is skipped: it no longer validates (%s)", row.get("id"), tenant_id,
                        "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))
    return rules


def load_business_hours(timezone: str, hours: Mapping[str, Any] | None, *, tenant_id: str) -> BusinessHours | None:
    """The stored business hours, or None (no hours: always open) when they no longer validate (logged)."""
    try:
        return BusinessHours.model_validate({"timezone": timezone, "hours": hours or {}})
    except ValidationError as exc:
        log.warning("business hours of tenant %s are ignored: they no longer validate (%s)", tenant_id,
                    "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))
        return None
