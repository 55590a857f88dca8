"""aiworker.metrics: decisions are counted by outcome and provider (``error`` when the provider failed or timed
out), and every answer of a provider is timed."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from prometheus_client import REGISTRY

from ai.agent import decide_request
from ai.knowledge import KnowledgeEntry
from ai.provider import Answer
from aiworker.metrics import Measured, decided
from schemas.ai import AiRequest, Turn


class Scripted:
    """A provider that answers with ``confidence``, fails, or never answers."""

    def __init__(self, name: str, *, confidence: float = 0.9, fail: bool = False, hang: bool = False) -> None:
        self.name, self.confidence, self.fail, self.hang = name, confidence, fail, hang

    async def answer(self, question: str, history: Sequence[Turn], knowledge: Sequence[KnowledgeEntry]) -> Answer:
        if self.hang:
            await asyncio.sleep(30)
        if self.fail:
            raise RuntimeError("model exploded")
        return Answer(reply="Orders ship in 2 days.", confidence=self.confidence, reason="matched")

    async def aclose(self) -> None:
        return None


def _request() -> AiRequest:
    return AiRequest(event_id="e-1", tenant_id="t-1", conversation_key="1:2", message_wamid="wamid.1",
                     text="How long does shipping take?", requested_at=datetime.now(UTC))


def _count(outcome: str, provider: str) -> float:
    return REGISTRY.get_sample_value("aerostic_ai_decisions_total", {"outcome": outcome, "provider": provider}) or 0.0


async def _decide(provider: Scripted) -> None:
    measured = Measured(provider)
    decision = await decide_request(_request(), measured, [], threshold=0.7, timeout_s=0.2)
    decided(decision, measured)


async def test_outcomes_are_counted_with_failures_and_timeouts_as_errors() -> None:
    before = {key: _count(*key) for key in [("reply", "m-sure"), ("handoff", "m-unsure"), ("error", "m-broken"),
                                            ("error", "m-slow")]}
    timed = REGISTRY.get_sample_value("aerostic_ai_provider_seconds_count", {"provider": "m-slow"}) or 0.0
    await _decide(Scripted("m-sure"))
    await _decide(Scripted("m-unsure", confidence=0.1))
    await _decide(Scripted("m-broken", fail=True))
    await _decide(Scripted("m-slow", hang=True))
    assert {key: _count(*key) - value for key, value in before.items()} == {
        ("reply", "m-sure"): 1, ("handoff", "m-unsure"): 1, ("error", "m-broken"): 1, ("error", "m-slow"): 1}
    assert _count("handoff", "m-broken") == _count("handoff", "m-slow") == 0
    assert (REGISTRY.get_sample_value("aerostic_ai_provider_seconds_count", {"provider": "m-slow"}) or 0) - timed == 1
