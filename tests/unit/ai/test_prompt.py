"""Grounding messages and the defensive reading of the model's JSON."""

from __future__ import annotations

import json
import re

import pytest

from ai.exceptions import AIError, ModelError
from ai.knowledge import KnowledgeBase
from ai.prompt import build_messages, parse_answer, select_grounding, system_prompt
from ai.provider import Answer
from ai.scorer import OfflineScorer
from schemas.ai import Turn
from tests.unit.ai.conftest import HISTORY
from tests.unit.ai.kb import SHOP_ENTRIES


def test_parse_a_good_answer() -> None:
    content = json.dumps({"reply": " Delivery takes 3-5 days. ", "confidence": 0.9, "reason": "shipping-time"})
    assert parse_answer(content) == Answer("Delivery takes 3-5 days.", 0.9, "shipping-time")


@pytest.mark.parametrize("content", [
    '```json\n{"reply": "Hi", "confidence": 1, "reason": "r"}\n```',
    '```\n{"reply": "Hi", "confidence": 1, "reason": "r"}```',
    '  {"reply": "Hi", "confidence": 1, "reason": "r", "extra": [1, 2]}  ',
])
def test_parse_tolerates_fences_whitespace_and_extra_fields(content: str) -> None:
    assert parse_answer(content) == Answer("Hi", 1.0, "r")


def test_missing_reason_gets_a_placeholder() -> None:
    assert parse_answer('{"reply": "Hi", "confidence": 0.5}').reason == "the model gave no reason"


def test_long_reason_is_cut() -> None:
    assert len(parse_answer(json.dumps({"reply": "Hi", "confidence": 0.5, "reason": "x" * 5000})).reason) == 300


@pytest.mark.parametrize(("content", "message"), [
    (None, "no content"),
    ("   ", "no content"),
    ("Sure! Delivery takes 3-5 days.", "not JSON"),
    ('{"reply": "Hi", "confidence": 0.9', "not JSON"),
    ('["Hi", 0.9]', "not a JSON object"),
    ('{"confidence": 0.9, "reason": "r"}', "empty reply"),
    ('{"reply": "  ", "confidence": 0.9, "reason": "r"}', "empty reply"),
    ('{"reply": 42, "confidence": 0.9, "reason": "r"}', "empty reply"),
    ('{"reply": "Hi", "reason": "r"}', "not a number"),
    ('{"reply": "Hi", "confidence": "0.9", "reason": "r"}', "not a number"),
    ('{"reply": "Hi", "confidence": true, "reason": "r"}', "not a number"),
    ('{"reply": "Hi", "confidence": 1.5, "reason": "r"}', "outside [0, 1]"),
    ('{"reply": "Hi", "confidence": -0.1, "reason": "r"}', "outside [0, 1]"),
    ('{"reply": "Hi", "confidence": NaN, "reason": "r"}', "outside [0, 1]"),
])
def test_unusable_answers_raise_model_error(content: str | None, message: str) -> None:
    with pytest.raises(ModelError, match=re.escape(message)) as caught:
        parse_answer(content)
    assert isinstance(caught.value, AIError)


def test_messages_map_roles_and_keep_the_last_turns() -> None:
    history = [*HISTORY, Turn(role="customer", text="It has not arrived"), Turn(role="business", text="Let me check")]
    messages = build_messages("Where is it?", history, SHOP_ENTRIES[:2], history_turns=3)
    assert [(m["role"], m.get("content")) for m in messages[1:]] == [
        ("assistant", "Thanks for your order! How can we help?"),
        ("user", "It has not arrived"),
        ("assistant", "Let me check"),
        ("user", "Where is it?"),
    ]
    assert messages[0]["role"] == "system"
    assert [m["role"] for m in build_messages("Q?", history, [], history_turns=0)] == ["system", "user"]


def test_system_prompt_lists_entries_and_the_json_contract() -> None:
    prompt = system_prompt(SHOP_ENTRIES[:2])
    for entry in SHOP_ENTRIES[:2]:
        assert f"[{entry.id}]\nQ: {entry.question}\nA: {entry.answer}" in prompt
    assert "only the knowledge base" in prompt and "customer's language" in prompt and "JSON" in prompt
    assert "(empty" in system_prompt([])


def test_grounding_takes_the_best_ranked_entries_first() -> None:
    kb = KnowledgeBase(SHOP_ENTRIES)
    chosen = select_grounding("how long does shipping take", kb, OfflineScorer(), k=4)
    assert len(chosen) == 4 and chosen[0].id == "shipping-time"
    assert len({id(e) for e in chosen}) == 4


def test_grounding_pads_with_base_order_and_shows_small_bases_whole() -> None:
    kb = KnowledgeBase(SHOP_ENTRIES)
    assert [e.id for e in select_grounding("zebra", kb, OfflineScorer(), k=3)] == [e.id for e in SHOP_ENTRIES[:3]]
    assert select_grounding("zebra", kb, OfflineScorer(), k=50) == list(SHOP_ENTRIES)
    assert select_grounding("shipping", [], OfflineScorer(), k=8) == []
