"""The automation rules engine: triggers, conditions, order, stop, business hours, built-in keywords."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from automations.engine import Context, builtin_keyword, evaluate, is_open
from automations.rules import BusinessHours, Rule, RuleSpec

# Wednesday 2026-11-25 10:30 UTC = 16:00 in Kolkata (UTC+5:30).
WED_1030 = datetime(2026, 11, 25, 10, 30, tzinfo=UTC)
HOURS = BusinessHours(timezone="Asia/Kolkata", hours={"mon": [("09:00", "18:00")], "wed": [("09:00", "15:00")]})


def rule(position: int, trigger: dict[str, Any], *, conditions: list[dict[str, Any]] | None = None,
         stop: bool = False, enabled: bool = True, name: str | None = None) -> Rule:
    return Rule(id=f"r{position}", position=position, name=name or f"rule {position}", enabled=enabled,
                trigger=trigger, conditions=conditions or [], stop=stop,  # type: ignore[arg-type]
                actions=[{"type": "add_tag", "tag": f"t{position}"}])  # type: ignore[list-item]


def ctx(**changes: Any) -> Context:
    return Context(**{"event": "message", "at": WED_1030, "text": "hello", **changes})


def fired(rules: list[Rule], context: Context) -> list[str]:
    return [e.rule_id for e in evaluate(rules, context)]


@pytest.mark.parametrize(("trigger", "text", "expected"), [
    ({"type": "keyword", "keywords": ["price"]}, "What's the PRICE?", True),
    ({"type": "keyword", "keywords": ["price"]}, "priceless", False),
    ({"type": "keyword", "keywords": ["price"], "match": "contains"}, "priceless", True),
    ({"type": "keyword", "keywords": ["hi there"], "match": "exact"}, "  Hi   THERE ", True),
    ({"type": "keyword", "keywords": ["hi"], "match": "exact"}, "hi there", False),
    ({"type": "keyword", "keywords": ["cafe"]}, "un Café s'il vous plaît", True),
    ({"type": "regex", "pattern": r"order\s*#?\d{4,}"}, "where is Order #12345", True),
    ({"type": "regex", "pattern": r"order\s*#?\d{4,}"}, "where is my order", False),
    ({"type": "message_received"}, "anything", True),
])
def test_text_triggers(trigger: dict[str, Any], text: str, expected: bool) -> None:
    assert fired([rule(1, trigger)], ctx(text=text)) == (["r1"] if expected else [])


def test_first_message_and_payload() -> None:
    rules = [rule(1, {"type": "first_message"}), rule(2, {"type": "payload", "payloads": ["ORDER_STATUS"]})]
    assert fired(rules, ctx(first_message=True)) == ["r1"]
    assert fired(rules, ctx(payload="ORDER_STATUS")) == ["r2"]
    assert fired(rules, ctx(payload="OTHER")) == []


def test_resolved_trigger_fires_only_on_resolution() -> None:
    rules = [rule(1, {"type": "conversation_resolved"}), rule(2, {"type": "message_received"})]
    assert fired(rules, ctx(event="resolved", text=None)) == ["r1"]
    assert fired(rules, ctx()) == ["r2"]


def test_business_hours_in_the_tenant_time_zone() -> None:
    assert not is_open(HOURS, WED_1030)  # 16:00 in Kolkata, Wednesday closes at 15:00
    assert is_open(HOURS, datetime(2026, 11, 25, 9, 0, tzinfo=UTC))  # 14:30 there
    assert not is_open(HOURS, datetime(2026, 11, 26, 6, 0, tzinfo=UTC))  # Thursday: no hours
    assert is_open(None, WED_1030) and is_open(BusinessHours(), WED_1030)
    outside = [rule(1, {"type": "outside_business_hours"})]
    assert fired(outside, ctx(business_hours=HOURS)) == ["r1"]
    assert fired(outside, ctx(business_hours=HOURS, at=datetime(2026, 11, 25, 9, 0, tzinfo=UTC))) == []


def test_conditions_must_all_hold() -> None:
    conditions = [{"type": "contact_tags", "has": ["vip"], "lacks": ["blocked"]},
                  {"type": "contact_attribute", "key": "plan", "op": "eq", "value": "gold"},
                  {"type": "conversation_state", "states": ["bot", "queued"]}]
    rules = [rule(1, {"type": "message_received"}, conditions=conditions)]
    good = ctx(tags=frozenset({"vip"}), attributes={"plan": "gold"}, state="bot")
    assert fired(rules, good) == ["r1"]
    assert fired(rules, ctx(tags=frozenset({"vip", "blocked"}), attributes={"plan": "gold"})) == []
    assert fired(rules, ctx(tags=frozenset({"vip"}), attributes={"plan": "silver"})) == []
    assert fired(rules, ctx(tags=frozenset({"vip"}), attributes={"plan": "gold"}, state="agent")) == []


@pytest.mark.parametrize(("op", "value", "attributes", "expected"), [
    ("exists", None, {"city": "Pune"}, True), ("exists", None, {}, False), ("missing", None, {}, True),
    ("neq", "Pune", {"city": "Delhi"}, True), ("neq", "Pune", {"city": "Pune"}, False),
    ("contains", "un", {"city": "Pune"}, True), ("contains", "x", {"city": "Pune"}, False),
])
def test_attribute_operators(op: str, value: str | None, attributes: dict[str, str], expected: bool) -> None:
    condition = {"type": "contact_attribute", "key": "city", "op": op, "value": value}
    assert bool(fired([rule(1, {"type": "message_received"}, conditions=[condition])],
                      ctx(attributes=attributes))) is expected


def test_time_window_condition_spanning_midnight() -> None:
    night = [{"type": "time_window", "start": "22:00", "end": "06:00", "timezone": "UTC"}]
    rules = [rule(1, {"type": "message_received"}, conditions=night)]
    assert fired(rules, ctx(at=datetime(2026, 11, 25, 23, 0, tzinfo=UTC))) == ["r1"]
    assert fired(rules, ctx(at=datetime(2026, 11, 25, 5, 59, tzinfo=UTC))) == ["r1"]
    assert fired(rules, ctx(at=datetime(2026, 11, 25, 6, 0, tzinfo=UTC))) == []
    weekend = [{"type": "time_window", "days": ["sat", "sun"], "start": "00:00", "end": "23:59"}]
    assert fired([rule(1, {"type": "message_received"}, conditions=weekend)], ctx()) == []


def test_order_stop_and_disabled_rules() -> None:
    rules = [rule(3, {"type": "message_received"}), rule(1, {"type": "message_received"}, enabled=False),
             rule(2, {"type": "keyword", "keywords": ["hello"]}, stop=True), rule(4, {"type": "message_received"})]
    executions = evaluate(rules, ctx())
    assert [e.rule_id for e in executions] == ["r2"]
    assert executions[0].stopped and executions[0].actions[0].tag == "t2"  # type: ignore[union-attr]
    assert fired(rules, ctx(text="bye")) == ["r3", "r4"]


@pytest.mark.parametrize(("text", "expected"), [
    ("STOP", "opt_out"), ("  unsubscribe! ", "opt_out"), ("Stop all", "opt_out"), ("START", "opt_in"),
    ("subscribe", "opt_in"), ("stop sending me that", None), ("", None), (None, None)])
def test_builtin_keywords(text: str | None, expected: str | None) -> None:
    assert builtin_keyword(text) == expected


@pytest.mark.parametrize("bad", [
    {"name": "x", "trigger": {"type": "regex", "pattern": "("}, "actions": [{"type": "resolve"}]},
    {"name": "x", "trigger": {"type": "telepathy"}, "actions": [{"type": "resolve"}]},
    {"name": "x", "trigger": {"type": "message_received"}, "actions": []},
    {"name": "x", "trigger": {"type": "message_received"}, "actions": [{"type": "reply", "message": {"text": "hi"}}]},
    {"name": "x", "trigger": {"type": "message_received"}, "actions": [{"type": "resolve"}],
     "conditions": [{"type": "time_window", "start": "25:00", "end": "06:00"}]},
])
def test_invalid_rules_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(RuleSpec).validate_python(bad)


def test_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown time zone"):
        BusinessHours(timezone="Mars/Olympus_Mons")
