"""The AI agent's events: ``ai.requests`` (conversation processor → AI worker) and ``ai.decisions`` (back).

A request names the inbound message it answers (``message_wamid``) and the conversation's state
version when it was asked, so the processor can discard a decision that arrives after a human
took over or after a newer message. Both topics are keyed by conversation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import Event

DEFAULT_THRESHOLD = 0.70


class Turn(BaseModel):
    """One earlier message of the conversation, oldest first in ``AiRequest.history``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    role: Literal["customer", "business"]
    text: str


class AiRequest(Event):
    """Ask the tenant's AI for a reply to ``text``."""

    kind: Literal["ai_request"] = "ai_request"
    tenant_id: str
    conversation_key: str
    message_wamid: str
    text: str
    history: list[Turn] = []
    version: int = 0  # the conversation's state version when asked
    requested_at: datetime
    # What the AI worker needs of the tenant's configuration, as the processor saw it: the worker never
    # loads the configuration itself (the knowledge base of ``config_version`` is read once and cached).
    provider: Literal["offline", "openai"] = "offline"
    threshold: float = Field(DEFAULT_THRESHOLD, ge=0.0, le=1.0)
    config_version: int = 0


class AiDecision(Event):
    """The AI's answer: a reply with its confidence, or a hand-off (low confidence, error, timeout)."""

    kind: Literal["ai_decision"] = "ai_decision"
    tenant_id: str
    conversation_key: str
    message_wamid: str
    version: int = 0
    outcome: Literal["reply", "handoff"]
    reply: str | None = None
    confidence: float = Field(0.0, ge=0.0, le=1.0)
    threshold: float = DEFAULT_THRESHOLD
    reason: str
    provider: str
    latency_ms: float = 0.0
    decided_at: datetime
