"""Turn one ``ai.requests`` event into one ``ai.decisions`` event.

``decide_request`` never raises for the provider's sake: a timeout, an ``AIError`` or any unexpected
exception becomes a hand-off with confidence 0 and a reason an agent can read, because a customer
waiting on a broken model must reach a human. Cancellation still propagates (the worker is
shutting down and will be redelivered the request).

A worker keeps one ``OfflineScorer`` (its index cache serves every tenant) and one provider per
tenant configuration, built by ``make_provider``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from ai.exceptions import AIError, ModelTimeout
from ai.knowledge import KnowledgeEntry
from ai.openai_provider import OpenAIConfig, OpenAIProvider
from ai.provider import Answer, Outcome, Provider, decide
from ai.scorer import OfflineScorer
from ai.small_talk import SmallTalk, detect
from schemas.ai import DEFAULT_THRESHOLD, AiDecision, AiRequest

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 8.0


def make_provider(config: OpenAIConfig | None, *, scorer: OfflineScorer) -> Provider:
    """The tenant's model when one is configured, else the offline scorer (which also ranks for the model)."""
    if config is None:
        return scorer
    return OpenAIProvider(config, ranker=scorer)


def decision_event_id(request: AiRequest) -> str:
    """The decision's event id: derived from the request's, so a redelivered request yields the same id."""
    return f"{request.event_id}:decision"


async def decide_request(
    request: AiRequest,
    provider: Provider,
    knowledge: Sequence[KnowledgeEntry],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    small_talk: SmallTalk | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> AiDecision:
    """Ask ``provider`` within ``timeout_s`` and apply ``threshold``; failures become hand-offs.

    A greeting, thanks or goodbye gets the tenant's ``small_talk`` reply (when enabled) without asking.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be within [0, 1], got {threshold}")
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s}")
    started = time.perf_counter()
    kind = detect(request.text) if small_talk is not None and small_talk.enabled else None
    if small_talk is not None and kind is not None:
        return AiDecision(
            event_id=decision_event_id(request), tenant_id=request.tenant_id,
            conversation_key=request.conversation_key, message_wamid=request.message_wamid,
            version=request.version, outcome="reply", reply=small_talk.reply(kind), confidence=1.0,
            threshold=threshold, reason=f"small talk: {kind}", provider="small_talk",
            latency_ms=round((time.perf_counter() - started) * 1000.0, 3), decided_at=clock())
    answer: Answer | None = None
    outcome: Outcome = "handoff"
    try:
        async with asyncio.timeout(timeout_s):
            answer = await provider.answer(request.text, request.history, knowledge)
    except TimeoutError:
        reason = f"model timed out after {timeout_s:.1f} s"
    except ModelTimeout as exc:
        reason = str(exc)
    except AIError as exc:
        reason = f"model error: {exc}"
    except Exception as exc:  # a provider bug must not leave the customer without a human
        log.exception("AI provider %s failed on %s", provider.name, request.event_id)
        reason = f"model error: unexpected {type(exc).__name__}: {_shorten(str(exc))}"
    else:
        outcome, reason = decide(answer, threshold)
    latency_ms = (time.perf_counter() - started) * 1000.0
    return AiDecision(
        event_id=decision_event_id(request),
        tenant_id=request.tenant_id,
        conversation_key=request.conversation_key,
        message_wamid=request.message_wamid,
        version=request.version,
        outcome=outcome,
        reply=answer.reply if answer is not None and outcome == "reply" else None,
        confidence=answer.confidence if answer is not None else 0.0,
        threshold=threshold,
        reason=reason,
        provider=provider.name,
        latency_ms=round(latency_ms, 3),
        decided_at=clock(),
    )


def _shorten(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "…"
