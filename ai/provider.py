"""The one interface both AI providers implement, and the threshold rule that turns an answer into an outcome.

A provider answers a customer's question from the tenant's knowledge base with a reply, a confidence
in [0, 1] and a reason. It raises an ``AIError`` (``ModelError``, ``ModelTimeout``) when it cannot
answer; ``ai.agent.decide_request`` turns those into hand-offs. ``decide`` is pure: at or above the
tenant's threshold the reply goes out, below it the conversation goes to a human with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from ai.knowledge import KnowledgeEntry
from schemas.ai import Turn

Outcome = Literal["reply", "handoff"]


@dataclass(frozen=True, slots=True)
class Answer:
    """A provider's answer: the reply it would send (None if it has none), how sure it is, and why."""

    reply: str | None
    confidence: float
    reason: str

    def __post_init__(self) -> None:
        if math.isnan(self.confidence) or not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be within [0, 1], got {self.confidence}")


@runtime_checkable
class Provider(Protocol):
    """An AI provider: the offline scorer or a model behind the OpenAI API.

    One instance serves many requests concurrently (a worker keeps one per tenant configuration);
    ``aclose`` releases what it holds (an HTTP connection pool) when the configuration changes.
    """

    name: str

    async def answer(
        self, question: str, history: Sequence[Turn], knowledge: Sequence[KnowledgeEntry]
    ) -> Answer: ...

    async def aclose(self) -> None: ...


def decide(answer: Answer, threshold: float) -> tuple[Outcome, str]:
    """``("reply", reason)`` when the answer has a reply and is at least ``threshold`` sure, else a hand-off."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be within [0, 1], got {threshold}")
    if not answer.reply or not answer.reply.strip():
        return "handoff", f"no reply: {answer.reason}"
    if answer.confidence >= threshold:
        return "reply", answer.reason
    digits = 2
    while f"{answer.confidence:.{digits}f}" == f"{threshold:.{digits}f}" and digits < 6:
        digits += 1  # never print "0.70 < 0.70"
    return "handoff", f"confidence {answer.confidence:.{digits}f} < {threshold:.{digits}f}: {answer.reason}"
