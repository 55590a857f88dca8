"""Evaluate a tenant's automation rules against one event: pure, ordered, explainable.

``evaluate`` walks the enabled rules in order and returns one ``Execution`` per rule whose
trigger fired and whose conditions all held, with its actions; a matching rule with ``stop``
ends the walk. The conversation processor applies the actions and records every execution.
``builtin_keyword`` recognises the opt-out and opt-in words every tenant gets (STOP,
UNSUBSCRIBE / START, SUBSCRIBE), which run before any rule.

Rules are validated when saved, and tenants' regular expressions run on RE2 (linear time), so
evaluation cannot be made slow by a pattern. It never raises either: a rule that cannot be
evaluated (stored data that no longer makes sense) is skipped and logged, and the others run.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Literal
from zoneinfo import ZoneInfo

from automations.rules import (
    WEEKDAYS,
    Action,
    BusinessHours,
    ContactAttribute,
    ContactTags,
    ConversationResolved,
    ConversationState,
    FirstMessage,
    Keyword,
    MessageReceived,
    OutsideBusinessHours,
    Payload,
    Regex,
    Rule,
    TimeWindow,
    compiled,
    normalise,
)

log = logging.getLogger(__name__)

MAX_TEXT = 4096  # regular expressions only see this much of a message
OPT_OUT_WORDS = frozenset({"stop", "unsubscribe", "stop all", "opt out", "optout"})
OPT_IN_WORDS = frozenset({"start", "subscribe", "unstop", "opt in", "optin"})


@dataclass(frozen=True)
class Context:
    """What a rule can look at."""

    event: Literal["message", "resolved"]
    at: datetime
    text: str | None = None
    payload: str | None = None
    first_message: bool = False
    state: str = "bot"
    tags: frozenset[str] = frozenset()
    attributes: Mapping[str, str] = field(default_factory=dict)
    business_hours: BusinessHours | None = None


@dataclass(frozen=True)
class Execution:
    """A rule that matched, and what it asks for."""

    rule_id: str
    name: str
    actions: tuple[Action, ...]
    stopped: bool


def builtin_keyword(text: str | None) -> Literal["opt_out", "opt_in"] | None:
    """STOP/UNSUBSCRIBE → opt out, START/SUBSCRIBE → opt in (the whole message, punctuation aside)."""
    if not text:
        return None
    word = normalise(re.sub(r"[^\w\s]", " ", text))
    if word in OPT_OUT_WORDS:
        return "opt_out"
    if word in OPT_IN_WORDS:
        return "opt_in"
    return None


def evaluate(rules: Sequence[Rule], ctx: Context) -> list[Execution]:
    """The executions of ``rules`` (in ``position`` order) for ``ctx``; a rule that fails to evaluate is skipped."""
    executions: list[Execution] = []
    for rule in sorted(rules, key=lambda r: (r.position, r.id)):
        try:
            if not rule.enabled or not _fires(rule, ctx) or not all(_holds(c, ctx) for c in rule.conditions):
                continue
        except Exception as exc:  # stored data the rule's validation no longer guarantees: skip, never crash
            log.warning("rule %s skipped: it could not be evaluated (%s: %s)", rule.id, type(exc).__name__, exc)
            continue
        executions.append(Execution(rule.id, rule.name, tuple(rule.actions), rule.stop))
        if rule.stop:
            break
    return executions


def is_open(hours: BusinessHours | None, at: datetime) -> bool:
    """Whether ``at`` falls in the business hours (no hours configured: always open)."""
    if hours is None or not hours.hours:
        return True
    local = at.astimezone(ZoneInfo(hours.timezone))
    ranges = hours.hours.get(WEEKDAYS[local.weekday()], [])
    now = local.time()
    return any(_within(now, _hhmm(start), _hhmm(end)) for start, end in ranges)


def _fires(rule: Rule, ctx: Context) -> bool:
    trigger = rule.trigger
    if isinstance(trigger, ConversationResolved):
        return ctx.event == "resolved"
    if ctx.event != "message":
        return False
    if isinstance(trigger, MessageReceived):
        return True
    if isinstance(trigger, FirstMessage):
        return ctx.first_message
    if isinstance(trigger, OutsideBusinessHours):
        return not is_open(ctx.business_hours, ctx.at)
    if isinstance(trigger, Payload):
        return ctx.payload is not None and ctx.payload in trigger.payloads
    text = ctx.text or ""
    if isinstance(trigger, Keyword):
        return _keyword(trigger, normalise(text))
    if isinstance(trigger, Regex):
        return compiled(trigger.pattern).search(text[:MAX_TEXT]) is not None
    return False


def _keyword(trigger: Keyword, text: str) -> bool:
    for keyword in (normalise(k) for k in trigger.keywords):
        if trigger.match == "exact" and text == keyword:
            return True
        if trigger.match == "contains" and keyword in text:
            return True
        if trigger.match == "word" and re.search(rf"(?<!\w){re.escape(keyword)}(?!\w)", text):
            return True
    return False


def _holds(condition: object, ctx: Context) -> bool:
    if isinstance(condition, ContactTags):
        return set(condition.has) <= ctx.tags and not set(condition.lacks) & ctx.tags
    if isinstance(condition, ContactAttribute):
        value = ctx.attributes.get(condition.key)
        match condition.op:
            case "exists":
                return value is not None
            case "missing":
                return value is None
            case "eq":
                return value is not None and value == condition.value
            case "neq":
                return value != condition.value
            case "contains":
                return value is not None and condition.value is not None and condition.value in value
    if isinstance(condition, ConversationState):
        return ctx.state in condition.states
    if isinstance(condition, TimeWindow):
        zone = condition.timezone or (ctx.business_hours.timezone if ctx.business_hours else "UTC")
        local = ctx.at.astimezone(ZoneInfo(zone))
        return WEEKDAYS[local.weekday()] in condition.days and _within(
            local.time(), _hhmm(condition.start), _hhmm(condition.end))
    return False


def _hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _within(now: time, start: time, end: time) -> bool:
    """``start <= now < end``; a range whose end is not after its start spans midnight."""
    return start <= now < end if start < end else now >= start or now < end

