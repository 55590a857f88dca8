"""What a rule may hold: checked when it is saved (RE2 patterns, time zones, replies, bounds), and stored
rules that no longer validate are skipped instead of failing the tenant's messages."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from automations.engine import MAX_TEXT, Context, evaluate
from automations.rules import (
    MAX_PATTERN,
    BusinessHours,
    ContactTags,
    Rule,
    RuleSpec,
    TimeWindow,
    load_business_hours,
    load_rules,
)

CATASTROPHIC = r"^(\w+\s?)+$"  # exponential on a backtracking engine when the text does not match
AGENT = "0b8f3f5e-6a43-4c2e-9d55-1b1f0c3a7e21"


def spec(**changes: Any) -> dict[str, Any]:
    return {"name": "r", "trigger": {"type": "message_received"}, "actions": [{"type": "resolve"}], **changes}


def stored(rule_id: str, position: int, **changes: Any) -> dict[str, Any]:
    return {"id": rule_id, "position": position, "enabled": True, "stop": False, "conditions": [],
            **spec(**changes)}


def refusal(body: dict[str, Any]) -> list[tuple[str, str]]:
    """The (field path, message) pairs of ``body``'s refusal."""
    with pytest.raises(ValidationError) as caught:
        RuleSpec.model_validate(body)
    return [(".".join(map(str, e["loc"])), e["msg"]) for e in caught.value.errors()]


def regex_rule(pattern: str) -> Rule:
    return Rule.model_validate(stored("re", 0, trigger={"type": "regex", "pattern": pattern}))


def message(text: str) -> Context:
    return Context(event="message", at=datetime(2026, 11, 25, 10, 30, tzinfo=UTC), text=text)


# --- regular expressions -----------------------------------------------------------------------

def test_a_catastrophic_pattern_takes_no_measurable_time() -> None:
    rules = [regex_rule(CATASTROPHIC)]
    # Python's backtracking engine needs seconds for 30 word characters and a '!' (it doubles per
    # character, so minutes here); RE2 is linear in the text. The bounds are loose enough that only a
    # backtracking engine misses them, however loaded the machine.
    started = time.perf_counter()
    assert evaluate(rules, message("a" * 30 + "!")) == []
    assert time.perf_counter() - started < 1.0
    started = time.perf_counter()
    assert evaluate(rules, message("word " * (MAX_TEXT // 5) + "!")) == []
    # Only the first MAX_TEXT characters are searched: without the '!' they match.
    assert [e.rule_id for e in evaluate(rules, message("x" * 1_000_000 + "!"))] == ["re"]
    assert time.perf_counter() - started < 3.0
    assert [e.rule_id for e in evaluate(rules, message("Hello there"))] == ["re"]


def test_patterns_are_case_insensitive_and_see_unicode() -> None:
    assert evaluate([regex_rule(r"order\s*#?\d{4,}")], message("ORDER #12345"))
    assert evaluate([regex_rule(r"café")], message("Un CAFÉ"))
    assert not evaluate([regex_rule(r"^café$")], message("cafe"))


@pytest.mark.parametrize(("pattern", "why"), [
    (r"(a)\1", "backreference"), (r"foo(?=bar)", "lookahead"), (r"(?<!x)y", "lookbehind"),
    (r"(unclosed", "missing )"), ("a" * (MAX_PATTERN + 1), "at most"),
])
def test_patterns_re2_cannot_run_are_refused_naming_the_field(pattern: str, why: str) -> None:
    errors = refusal(spec(trigger={"type": "regex", "pattern": pattern}))
    assert [path for path, _ in errors] == ["trigger.regex.pattern"]
    assert why in errors[0][1] or "RE2" in errors[0][1]


# --- time zones and other fields ------------------------------------------------------------------

def test_an_unknown_time_zone_is_refused_when_saved() -> None:
    errors = refusal(spec(conditions=[{"type": "time_window", "start": "09:00", "end": "17:00",
                                       "timezone": "Nope/Nope"}]))
    assert [path for path, _ in errors] == ["conditions.0.time_window.timezone"]
    assert "unknown time zone 'Nope/Nope'" in errors[0][1]
    for zone in ("Nope/Nope", "", "../etc/passwd", "x" * 65):
        with pytest.raises(ValidationError, match="timezone"):
            BusinessHours(timezone=zone)
    assert TimeWindow(start="22:00", end="06:00", timezone="Asia/Kolkata").timezone == "Asia/Kolkata"


@pytest.mark.parametrize(("body", "field"), [
    (spec(conditions=[{"type": "contact_attribute", "key": "plan", "op": "eq"}]), "conditions.0.contact_attribute"),
    (spec(conditions=[{"type": "contact_attribute", "key": "plan", "op": "exists", "value": "x"}]),
     "conditions.0.contact_attribute"),
    (spec(conditions=[{"type": "contact_tags"}]), "conditions.0.contact_tags"),
    (spec(conditions=[{"type": "contact_tags", "has": ["t"] * 51}]), "conditions.0.contact_tags.has"),
    (spec(conditions=[{"type": "time_window", "days": [], "start": "09:00", "end": "10:00"}]),
     "conditions.0.time_window.days"),
    (spec(conditions=[{"type": "conversation_state", "states": ["asleep"]}]),
     "conditions.0.conversation_state.states.0"),
    (spec(actions=[{"type": "assign", "agent_id": AGENT, "team": "sales"}]), "actions.0.assign"),
    (spec(actions=[{"type": "assign", "agent_id": "ann"}]), "actions.0.assign.agent_id"),
    (spec(actions=[{"type": "handoff", "team": "a,b"}]), "actions.0.handoff.team"),
    (spec(actions=[{"type": "handoff", "reason": "x" * 501}]), "actions.0.handoff.reason"),
    (spec(trigger={"type": "keyword", "keywords": ["  "]}), "trigger.keyword.keywords"),
    (spec(trigger={"type": "keyword", "keywords": ["\u0301"]}), "trigger.keyword.keywords"),
])
def test_every_field_is_checked_when_saved(body: dict[str, Any], field: str) -> None:
    assert [path for path, _ in refusal(body)] == [field]


def test_valid_parts_still_pass() -> None:
    rule = RuleSpec.model_validate(spec(
        trigger={"type": "keyword", "keywords": ["Café"]},
        conditions=[{"type": "contact_tags", "lacks": ["blocked"]},
                    {"type": "contact_attribute", "key": "plan", "op": "missing"},
                    {"type": "time_window", "start": "00:00", "end": "00:00"}],
        actions=[{"type": "assign", "agent_id": AGENT}, {"type": "assign", "team": " sales "},
                 {"type": "handoff"}]))
    assert rule.actions[1].team == "sales"  # type: ignore[union-attr]
    assert isinstance(rule.conditions[0], ContactTags)


# --- replies ----------------------------------------------------------------------------------------

def reply(message: dict[str, Any]) -> dict[str, Any]:
    return spec(actions=[{"type": "reply", "message": message}])


def test_a_reply_is_a_message_object_as_the_send_api_takes_it() -> None:
    rule = RuleSpec.model_validate(reply({"type": "interactive", "interactive": {
        "type": "button", "body": {"text": "Pick"},
        "action": {"buttons": [{"type": "reply", "reply": {"id": "a", "title": "A"}}]}}}))
    assert rule.actions[0].message["interactive"]["action"]["buttons"][0]["reply"] == {  # type: ignore[union-attr]
        "id": "a", "title": "A"}
    text = RuleSpec.model_validate(reply({"type": "text", "text": {"body": "Hi", "preview_url": None}}))
    assert text.actions[0].message == {"type": "text", "text": {"body": "Hi"}}  # type: ignore[union-attr]


@pytest.mark.parametrize("field", ["to", "messaging_product", "recipient_type", "biz_opaque_callback_data"])
def test_a_reply_cannot_set_where_it_goes(field: str) -> None:
    errors = refusal(reply({"type": "text", "text": {"body": "Hi"}, field: "16505550000"}))
    assert [path for path, _ in errors] == ["actions.0.reply.message"]
    assert f"cannot set '{field}'" in errors[0][1]


@pytest.mark.parametrize(("message", "says"), [
    ({"type": "text", "text": {"body": ""}}, "text.body"),
    ({"type": "text", "text": {"body": "Hi"}, "image": {"link": "https://x/y.png"}}, "remove the 'image'"),
    ({"type": "image", "image": {"link": "ftp://x"}}, "image.link"),
    ({"type": "interactive", "interactive": {"type": "button", "body": {"text": "Pick"},
                                             "action": {"buttons": []}}}, "buttons"),
    ({"type": "fax", "fax": {}}, "type"),
    ({"text": "hi"}, "type"),
    ({"type": "text", "text": {"body": "x" * 4096}, "context": {"message_id": "w" * 256},
      "contacts": [{"name": {"formatted_name": "y" * 1000}}] * 20}, "bytes"),
])
def test_a_bad_reply_is_refused_with_the_reason(message: dict[str, Any], says: str) -> None:
    errors = refusal(reply(message))
    assert [path for path, _ in errors] == ["actions.0.reply.message"]
    assert says in errors[0][1]


# --- stored data --------------------------------------------------------------------------------------

def test_stored_rules_that_no_longer_validate_are_skipped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    rows = [stored("lookahead", 0, trigger={"type": "regex", "pattern": "foo(?=bar)"}),
            stored("redirect", 1, actions=[{"type": "reply", "message": {
                "type": "text", "text": {"body": "leak"}, "to": "16505550000"}}]),
            stored("zone", 2, conditions=[{"type": "time_window", "start": "09:00", "end": "10:00",
                                           "timezone": "Nope/Nope"}]),
            stored("good", 3)]
    with caplog.at_level(logging.WARNING, logger="automations.rules"):
        rules = load_rules(rows, tenant_id="t1")
    assert [r.id for r in rules] == ["good"]
    for rule_id in ("lookahead", "redirect", "zone"):
        assert f"rule {rule_id} of tenant t1 is skipped" in caplog.text


def test_stored_business_hours_that_no_longer_validate_are_ignored(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="automations.rules"):
        assert load_business_hours("Nope/Nope", {"mon": [["09:00", "17:00"]]}, tenant_id="t1") is None
    assert "business hours of tenant t1 are ignored" in caplog.text
    hours = load_business_hours("Europe/Paris", {"mon": [["09:00", "17:00"]]}, tenant_id="t1")
    assert hours == BusinessHours(timezone="Europe/Paris", hours={"mon": [("09:00", "17:00")]})
    assert load_business_hours("UTC", None, tenant_id="t1") == BusinessHours()


def test_evaluation_skips_a_rule_it_cannot_evaluate(caplog: pytest.LogCaptureFixture) -> None:
    """A rule built without validation (as bad stored data would be) is logged and skipped; the others run."""
    broken_window = TimeWindow.model_construct(type="time_window", days=["wed"], start="09:00", end="10:00",
                                               timezone="Nope/Nope")
    broken = Rule.model_construct(id="broken", position=0, name="broken", enabled=True, stop=True,
                                  trigger=Rule.model_validate(stored("x", 0)).trigger, conditions=[broken_window],
                                  actions=[])
    good = Rule.model_validate(stored("good", 1))
    with caplog.at_level(logging.WARNING, logger="automations.engine"):
        executions = evaluate([broken, good], message("hi"))
    assert [e.rule_id for e in executions] == ["good"]
    assert "rule broken skipped: it could not be evaluated" in caplog.text
