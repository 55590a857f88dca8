"""The threshold rule and the answer value both providers return."""

from __future__ import annotations

import math

import pytest

from ai.openai_provider import OpenAIConfig, OpenAIProvider
from ai.provider import Answer, Provider, decide
from ai.scorer import OfflineScorer


def test_at_or_above_the_threshold_replies_with_the_reason() -> None:
    assert decide(Answer("Yes.", 0.70, "entry a"), 0.70) == ("reply", "entry a")
    assert decide(Answer("Yes.", 0.95, "entry a"), 0.70) == ("reply", "entry a")
    assert decide(Answer("Yes.", 0.0, "anything goes"), 0.0) == ("reply", "anything goes")


def test_below_the_threshold_hands_over_with_the_ai_reason() -> None:
    assert decide(Answer("Maybe.", 0.42, "not in the knowledge base"), 0.70) == (
        "handoff", "confidence 0.42 < 0.70: not in the knowledge base")
    assert decide(Answer("Yes.", 0.99, "sure"), 1.0) == ("handoff", "confidence 0.99 < 1.00: sure")


def test_reason_never_shows_equal_figures() -> None:
    outcome, reason = decide(Answer("Maybe.", 0.6999, "close"), 0.70)
    assert outcome == "handoff"
    assert reason == "confidence 0.6999 < 0.7000: close"


@pytest.mark.parametrize("reply", [None, "", "   "])
def test_no_reply_is_a_handoff_whatever_the_confidence(reply: str | None) -> None:
    assert decide(Answer(reply, 1.0, "empty base"), 0.70) == ("handoff", "no reply: empty base")


@pytest.mark.parametrize("threshold", [-0.1, 1.01, math.nan])
def test_threshold_must_be_a_probability(threshold: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        decide(Answer("Yes.", 0.9, "r"), threshold)


@pytest.mark.parametrize("confidence", [-0.01, 1.0001, math.nan])
def test_answer_confidence_must_be_a_probability(confidence: float) -> None:
    with pytest.raises(ValueError, match="confidence"):
        Answer("Yes.", confidence, "r")


def test_answer_is_immutable() -> None:
    answer = Answer("Yes.", 0.9, "r")
    with pytest.raises(AttributeError):
        answer.confidence = 0.1  # type: ignore[misc]


async def test_both_providers_implement_the_protocol() -> None:
    assert isinstance(OfflineScorer(), Provider)
    provider = OpenAIProvider(OpenAIConfig(base_url="http://127.0.0.1:9/v1", model="m"))
    try:
        assert isinstance(provider, Provider)
    finally:
        await provider.aclose()
