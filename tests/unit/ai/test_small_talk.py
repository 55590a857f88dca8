"""Small talk: detected in English, answered with the tenant's reply without asking the provider."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
from pydantic import ValidationError

from ai.agent import decide_request
from ai.knowledge import KnowledgeBase, KnowledgeEntry
from ai.provider import Answer
from ai.small_talk import MAX_REPLY, SmallTalk, detect
from schemas.ai import AiRequest, Turn


@pytest.mark.parametrize(("text", "kind"), [
    ("hi", "greeting"), ("Hello!", "greeting"), ("good morning 👋", "greeting"), ("hey there", "greeting"),
    ("How are you?", "greeting"), ("thank you so much 🙏", "thanks"), ("Thanks a lot!", "thanks"),
    ("ok thanks", "thanks"), ("bye", "goodbye"), ("thanks, bye", "goodbye"), ("see you later", "goodbye"),
    ("Good night", "goodbye"), ("have a nice day", "goodbye"),
])
def test_small_talk_is_detected(text: str, kind: str) -> None:
    assert detect(text) == kind


@pytest.mark.parametrize("text", [
    "hi, where is my order?", "thanks, but my refund never arrived", "are you open on sunday", "ok", "",
    "hello hello hello hello hello hello hello hello hello", "hola", "see your order",
])
def test_anything_else_is_not_small_talk(text: str) -> None:
    assert detect(text) is None


class Refuses:
    name = "offline"

    async def answer(self, question: str, history: Sequence[Turn], knowledge: Sequence[KnowledgeEntry]) -> Answer:
        raise AssertionError("small talk must not reach the provider")

    async def aclose(self) -> None:
        return None


async def test_a_greeting_gets_the_tenants_reply_without_a_hand_off(make_request: Callable[..., AiRequest]) -> None:
    replies = SmallTalk(greeting="Welcome to the shop! Ask me anything.")
    decision = await decide_request(make_request("Hello!"), Refuses(), KnowledgeBase([]), small_talk=replies)
    assert (decision.outcome, decision.reply, decision.provider) == (
        "reply", "Welcome to the shop! Ask me anything.", "small_talk")
    assert decision.confidence == 1.0 and decision.reason == "small talk: greeting"


async def test_small_talk_turned_off_goes_to_the_provider(make_request: Callable[..., AiRequest]) -> None:
    decision = await decide_request(make_request("thanks!"), Refuses(), KnowledgeBase([]),
                                    small_talk=SmallTalk(enabled=False))
    assert decision.outcome == "handoff" and "AssertionError" in decision.reason


def test_replies_are_bounded_and_not_blank() -> None:
    with pytest.raises(ValidationError, match="greeting"):
        SmallTalk(greeting="   ")
    with pytest.raises(ValidationError, match="thanks"):
        SmallTalk(thanks="x" * (MAX_REPLY + 1))
    with pytest.raises(ValidationError, match="extra"):
        SmallTalk.model_validate({"hello": "x"})
