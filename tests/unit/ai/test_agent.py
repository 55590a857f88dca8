"""``decide_request`` end to end with the offline scorer, and the hand-off of every kind of failure."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import pytest

from ai.agent import decide_request, decision_event_id, make_provider
from ai.exceptions import ModelError, ModelTimeout
from ai.knowledge import KnowledgeBase, KnowledgeEntry
from ai.openai_provider import OpenAIConfig, OpenAIProvider
from ai.provider import Answer
from ai.scorer import OfflineScorer
from schemas.ai import AiDecision, AiRequest, Turn
from tests.unit.ai.kb import SHOP_ENTRIES

MakeRequest = Callable[..., AiRequest]


class Scripted:
    """A provider whose ``answer`` does what the test says: return, raise or hang."""

    name = "scripted"

    def __init__(self, outcome: Answer | BaseException | float) -> None:
        self.outcome = outcome
        self.calls: list[tuple[str, Sequence[Turn], Sequence[KnowledgeEntry]]] = []

    async def answer(self, question: str, history: Sequence[Turn], knowledge: Sequence[KnowledgeEntry]) -> Answer:
        self.calls.append((question, history, knowledge))
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        if isinstance(self.outcome, float):
            await asyncio.sleep(self.outcome)
            return Answer("late", 1.0, "too late")
        return self.outcome

    async def aclose(self) -> None:
        return None


async def test_offline_reply_copies_the_request(
    scorer: OfflineScorer, kb: KnowledgeBase, make_request: MakeRequest
) -> None:
    request = make_request("Where is my order?", history=[Turn(role="customer", text="hello")])
    decided = await decide_request(request, scorer, kb, threshold=0.7, timeout_s=1.0)
    assert decided.outcome == "reply"
    assert decided.reply == next(e.answer for e in SHOP_ENTRIES if e.id == "order-tracking")
    assert decided.confidence >= 0.7 and decided.threshold == 0.7
    assert "order-tracking" in decided.reason
    assert decided.provider == "offline"
    assert (decided.tenant_id, decided.conversation_key, decided.message_wamid, decided.version) == (
        request.tenant_id, request.conversation_key, request.message_wamid, 7)
    assert decided.event_id == "req-1:decision" == decision_event_id(request)
    assert 0 < decided.latency_ms < 1000
    assert decided.decided_at.tzinfo is not None
    assert AiDecision.decode(decided.encode()) == decided


async def test_offline_unrelated_question_hands_over(
    scorer: OfflineScorer, kb: KnowledgeBase, make_request: MakeRequest
) -> None:
    decided = await decide_request(make_request("can you fix my car engine"), scorer, kb, threshold=0.7, timeout_s=1)
    assert (decided.outcome, decided.reply, decided.confidence) == ("handoff", None, 0.0)
    assert decided.reason == "no reply: no knowledge-base entry shares a word with the question"


async def test_offline_ambiguous_question_hands_over_with_its_confidence(
    scorer: OfflineScorer, kb: KnowledgeBase, make_request: MakeRequest
) -> None:
    decided = await decide_request(make_request("my refund for the return"), scorer, kb, threshold=0.7, timeout_s=1)
    assert decided.outcome == "handoff" and decided.reply is None
    assert 0 < decided.confidence < 0.7
    assert decided.reason.startswith(f"confidence {decided.confidence:.2f} < 0.70: ambiguous between")


async def test_threshold_is_the_tenants(scorer: OfflineScorer, kb: KnowledgeBase, make_request: MakeRequest) -> None:
    request = make_request("my refund for the return")
    lenient = await decide_request(request, scorer, kb, threshold=0.2, timeout_s=1)
    assert lenient.outcome == "reply" and lenient.reply is not None and lenient.threshold == 0.2


async def test_the_same_request_yields_the_same_decision_id(
    scorer: OfflineScorer, kb: KnowledgeBase, make_request: MakeRequest
) -> None:
    request = make_request("Where is my order?")
    first = await decide_request(request, scorer, kb, timeout_s=1)
    second = await decide_request(request, scorer, kb, timeout_s=1)
    assert first.event_id == second.event_id
    other = await decide_request(make_request("Where is my order?", event_id="req-2"), scorer, kb, timeout_s=1)
    assert other.event_id != first.event_id


async def test_provider_receives_text_history_and_knowledge(kb: KnowledgeBase, make_request: MakeRequest) -> None:
    provider = Scripted(Answer("Yes.", 0.9, "r"))
    history = [Turn(role="customer", text="hi"), Turn(role="business", text="hello")]
    await decide_request(make_request("Open today?", history=history), provider, kb, timeout_s=1)
    assert provider.calls == [("Open today?", history, kb)]


@pytest.mark.parametrize(("outcome", "reason"), [
    (ModelError("the model server answered HTTP 502: bad gateway"),
     "model error: the model server answered HTTP 502: bad gateway"),
    (ModelTimeout(8.0), "model timed out after 8.0 s"),
    (RuntimeError("boom\nwith a traceback-ish message"), "model error: unexpected RuntimeError: boom with a"),
    (KeyError("reply"), "model error: unexpected KeyError: 'reply'"),
    (5.0, "model timed out after 0.1 s"),
])
async def test_failures_become_handoffs(
    kb: KnowledgeBase, make_request: MakeRequest, outcome: BaseException | float, reason: str
) -> None:
    decided = await decide_request(make_request("Hi"), Scripted(outcome), kb, threshold=0.7, timeout_s=0.1)
    assert (decided.outcome, decided.reply, decided.confidence) == ("handoff", None, 0.0)
    assert decided.reason.startswith(reason), decided.reason
    assert decided.provider == "scripted"


async def test_timeout_is_enforced_promptly(kb: KnowledgeBase, make_request: MakeRequest) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    decided = await decide_request(make_request("Hi"), Scripted(10.0), kb, timeout_s=0.05)
    assert loop.time() - started < 1.0
    assert 40 <= decided.latency_ms < 1000


async def test_cancellation_is_not_swallowed(kb: KnowledgeBase, make_request: MakeRequest) -> None:
    task = asyncio.create_task(decide_request(make_request("Hi"), Scripted(10.0), kb, timeout_s=5))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_injected_clock(scorer: OfflineScorer, kb: KnowledgeBase, make_request: MakeRequest) -> None:
    when = datetime(2030, 1, 1, tzinfo=UTC)
    assert (await decide_request(make_request("Hi"), scorer, kb, clock=lambda: when)).decided_at == when


@pytest.mark.parametrize(("threshold", "timeout_s"), [(1.5, 1.0), (-0.1, 1.0), (0.7, 0.0)])
async def test_arguments_are_checked(
    scorer: OfflineScorer, kb: KnowledgeBase, make_request: MakeRequest, threshold: float, timeout_s: float
) -> None:
    with pytest.raises(ValueError):
        await decide_request(make_request("Hi"), scorer, kb, threshold=threshold, timeout_s=timeout_s)


async def test_make_provider_picks_the_model_or_the_scorer(scorer: OfflineScorer) -> None:
    assert make_provider(None, scorer=scorer) is scorer
    provider = make_provider(OpenAIConfig(base_url="http://127.0.0.1:9/v1", model="m"), scorer=scorer)
    try:
        assert isinstance(provider, OpenAIProvider) and provider.name == "openai"
    finally:
        await provider.aclose()
