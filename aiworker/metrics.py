"""Prometheus metrics of the AI worker: decisions by outcome and provider, and the provider's answer time.

``outcome`` is ``reply`` or ``handoff`` as decided, or ``error`` when the provider failed or timed out (the
customer is then handed to a person). ``provider`` is the provider's kind (``offline``, ``openai``,
``small_talk``…), a short fixed list: never a tenant.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter, Histogram

from ai.knowledge import KnowledgeEntry
from ai.provider import Answer, Provider
from broker.metrics import SECONDS
from schemas.ai import AiDecision, Turn

DECISIONS = Counter("aerostic_ai_decisions", "AI decisions by outcome (reply, handoff, error) and provider",
                    ["outcome", "provider"])
PROVIDER_SECONDS = Histogram("aerostic_ai_provider_seconds", "One answer of a provider, failed ones included",
                             ["provider"], buckets=SECONDS)

_decisions: dict[tuple[str, str], Any] = {}
_seconds: dict[str, Any] = {}


class Measured:
    """One request's view of a provider: times its answer and remembers whether it failed (or was cancelled by
    the decision's timeout)."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.name = provider.name
        self.failed = False

    async def answer(self, question: str, history: Sequence[Turn], knowledge: Sequence[KnowledgeEntry]) -> Answer:
        started = time.monotonic()
        try:
            return await self.provider.answer(question, history, knowledge)
        except BaseException:
            self.failed = True
            raise
        finally:
            child = _seconds.get(self.name)
            if child is None:
                child = _seconds[self.name] = PROVIDER_SECONDS.labels(self.name)
            child.observe(time.monotonic() - started)

    async def aclose(self) -> None:
        await self.provider.aclose()


def decided(decision: AiDecision, measured: Measured) -> None:
    """Count ``decision`` (``error`` when the provider failed)."""
    labels = ("error" if measured.failed else decision.outcome, decision.provider)
    child = _decisions.get(labels)
    if child is None:
        child = _decisions[labels] = DECISIONS.labels(*labels)
    child.inc()
