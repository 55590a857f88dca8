"""The AI's quality, as a tenant sees it: ``/v1/ai``.

* ``POST /v1/ai/evaluate`` (admins): labelled questions (at most 500, with out-of-scope ones) asked
  of the offline provider (``offline``: the semantic one, or BM25 when its model is missing;
  ``lexical``: BM25) over the tenant's knowledge base or entries given in the request; the figures
  at the threshold and the curve (``ai.evaluation``). One evaluation at a time per process.
* ``GET /v1/ai/calibration`` (admins): what the tenant's own entries predict at its threshold (expected
  precision, coverage, out-of-scope recall) and a suggested threshold.
* ``GET /v1/ai/gaps?days=30&limit=20``: the questions handed over most often, grouped by meaning.
* ``GET /v1/ai/status``: which offline provider this server and each running AI worker use, and why.
* ``POST /v1/ai/try`` (admins): one question (at most 1000 characters) answered as the AI worker answers a
  customer with the offline provider (``ai.agent.decide_request``: small talk, provider, threshold), and
  whether the reply would be sent or the conversation handed over.

The sentence model is loaded in this process on first use (about 0.2 s, 90 MB); evaluations,
calibrations and gap groupings run one at a time in a thread, so the server keeps answering.
"""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.exceptions import RequestValidationError
from sqlalchemy import Boolean, and_, cast, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ai.agent import decide_request
from ai.evaluation import Labelled, calibrate, evaluate
from ai.gaps import Asked, group
from ai.knowledge import KnowledgeBase, KnowledgeEntry
from ai.offline import OfflineStatus, load_offline
from ai.provider import Provider
from ai.scorer import OfflineScorer
from ai.semantic import SemanticScorer
from ai.small_talk import SmallTalk
from api.ai_models import EvaluateRequest, TryRequest, TryResult
from api.auth import AdminDep, TenantDep
from api.deps import EngineDep, RedisDep
from api.reference import json_example
from config import redis_keys
from db.tables import conversation_events, knowledge_entries, messages, tenant_settings
from schemas.ai import DEFAULT_THRESHOLD, AiRequest

router = APIRouter(prefix="/v1/ai", tags=["ai"])

MAX_GAP_QUESTIONS = 2000  # the most recent hand-offs grouped per request
MAX_WORKERS_LISTED = 100
TRY_TIMEOUT_S = 8.0  # the AI worker's default
NOTES = {"openai": "This tenant's customers are answered by its OpenAI-compatible model; this answer is the "
                   "offline provider's, which also picks the entries the model is given.",
         "off": "The AI is off: every message the automations do not settle goes to an agent."}

_load_lock = threading.Lock()
_loaded: tuple[Provider, OfflineScorer, OfflineStatus] | None = None
_busy = asyncio.Lock()


def _providers() -> tuple[Provider, OfflineScorer, OfflineStatus]:
    """This process's offline provider (semantic or BM25), its BM25 scorer and status; loaded once."""
    global _loaded
    with _load_lock:
        if _loaded is None:
            lexical = OfflineScorer()
            offline, state = load_offline(lexical)
            _loaded = (offline, lexical, state)
        return _loaded


async def _tenant_kb(engine: AsyncEngine, tenant_id: str) -> tuple[KnowledgeBase, float]:
    """The tenant's knowledge base (versioned by content) and its AI threshold."""
    async with engine.connect() as conn:
        rows = await conn.execute(select(knowledge_entries).where(knowledge_entries.c.tenant_id == tenant_id)
                                  .order_by(knowledge_entries.c.created_at, knowledge_entries.c.id))
        entries = [KnowledgeEntry(id=str(r.id), question=r.question, answer=r.answer, keywords=tuple(r.keywords or ()))
                   for r in rows]
        threshold = (await conn.execute(select(tenant_settings.c.ai_threshold)
                                        .where(tenant_settings.c.tenant_id == tenant_id))).scalar()
    return KnowledgeBase(entries, tenant_id=f"api:{tenant_id}"), DEFAULT_THRESHOLD if threshold is None else threshold


AT_THRESHOLD = {"threshold": 0.7, "in_scope_accuracy": 0.92, "coverage": 0.85, "precision": 0.94,
                "precision_all": 0.9, "oos_recall": 0.8}
AT = "2026-12-01T09:14:03Z"


@router.post("/evaluate", responses={200: json_example({
    "provider": "semantic", "threshold": 0.7, "at_threshold": AT_THRESHOLD, "top1_accuracy": 0.95, "in_scope": 40,
    "out_of_scope": 10, "p50_ms": 4.1, "p99_ms": 11.8, "p99_cpu_ms": 9.6, "curve": [AT_THRESHOLD]})})
async def evaluate_ai(body: EvaluateRequest, principal: AdminDep, engine: EngineDep) -> dict[str, Any]:
    """Ask the AI labelled questions and report accuracy, coverage, precision and out-of-scope recall."""
    kb, threshold = await _tenant_kb(engine, principal.tenant_id)
    if body.entries is not None:
        kb = KnowledgeBase([KnowledgeEntry(id=f"given-{i}", **e.model_dump()) for i, e in enumerate(body.entries)],
                           tenant_id=f"api:{principal.tenant_id}:given")
    by_id = {e.id: e for e in kb}
    questions = []
    for i, q in enumerate(body.questions):
        expected = q.answer
        if q.entry_id is not None:
            entry = by_id.get(q.entry_id)
            if entry is None:
                raise RequestValidationError([{"type": "value_error", "loc": ("body", "questions", i, "entry_id"),
                                               "msg": "no such entry in the knowledge base evaluated",
                                               "input": q.entry_id}])
            expected = entry.answer
        questions.append(Labelled(q.text, expected))
    if not kb:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "the knowledge base is empty: add entries first")
    offline, lexical, _ = await asyncio.to_thread(_providers)
    provider = lexical if body.provider == "lexical" else offline
    async with _busy:
        result = await evaluate(provider, kb, questions,
                                threshold=body.threshold if body.threshold is not None else threshold)
    return result.as_dict()


@router.post("/try")
async def try_ai(body: TryRequest, principal: AdminDep, engine: EngineDep) -> TryResult:
    """The answer the AI would give a customer asking ``question`` now, its confidence, and whether it would
    be sent (at the tenant's threshold, or ``threshold``)."""
    kb, threshold = await _tenant_kb(engine, principal.tenant_id)
    async with engine.connect() as conn:
        row = (await conn.execute(select(tenant_settings.c.ai_provider, tenant_settings.c.ai_small_talk)
                                  .where(tenant_settings.c.tenant_id == principal.tenant_id))).first()
    tenant_provider = row.ai_provider if row is not None else "offline"
    small_talk = SmallTalk.model_validate(row.ai_small_talk) if row is not None and row.ai_small_talk else SmallTalk()
    threshold = body.threshold if body.threshold is not None else threshold
    offline, _, _ = await asyncio.to_thread(_providers)
    now = datetime.now(UTC)
    request = AiRequest(event_id=f"try:{principal.tenant_id}:{now.timestamp()}", tenant_id=principal.tenant_id,
                        conversation_key="try", message_wamid="try", text=body.question, requested_at=now,
                        threshold=threshold)
    decision = await decide_request(request, offline, kb, threshold=threshold, timeout_s=TRY_TIMEOUT_S,
                                    small_talk=small_talk)
    answer = decision.reply
    if answer is None and decision.outcome == "handoff" and kb:
        # Below the threshold the worker sends nothing; show what it found all the same.
        found = await offline.answer(body.question, [], kb)
        answer = found.reply
    return TryResult(outcome=decision.outcome, would_send=decision.outcome == "reply" and tenant_provider != "off",
                     reply=answer, confidence=decision.confidence, threshold=threshold, reason=decision.reason,
                     provider=decision.provider, tenant_provider=tenant_provider, note=NOTES.get(tenant_provider))


@router.get("/calibration", responses={200: json_example({
    "provider": "semantic", "threshold": 0.7, "expected_precision": 0.94, "expected_coverage": 0.85,
    "expected_oos_recall": 0.8, "suggested_threshold": 0.65, "target_precision": 0.9, "answerable": 38,
    "unanswerable": 4, "curve": [AT_THRESHOLD]})})
async def get_calibration(principal: AdminDep, engine: EngineDep) -> dict[str, Any]:
    """Expected precision and coverage at the tenant's threshold, from its own entries; a suggested threshold."""
    kb, threshold = await _tenant_kb(engine, principal.tenant_id)
    offline, _, state = await asyncio.to_thread(_providers)
    async with _busy:
        result = await calibrate(offline, kb, threshold=threshold)
    return {"provider": state.provider, **result.as_dict()}


@router.get("/gaps", responses={200: json_example({
    "days": 30, "handed_over": 57, "grouped_by": "meaning", "items": [{
        "question": "do you deliver on sundays", "count": 9, "last_at": "2026-12-01T09:14:03+00:00",
        "examples": ["do you deliver on sundays", "sunday delivery?"], "reasons": ["low confidence"]}]})})
async def get_gaps(principal: TenantDep, engine: EngineDep,
                   days: Annotated[int, Query(ge=1, le=365)] = 30,
                   limit: Annotated[int, Query(ge=1, le=100)] = 20) -> dict[str, Any]:
    """The questions handed over most often in the last ``days``, grouped by meaning, with counts."""
    since = datetime.now(UTC) - timedelta(days=days)
    payload = conversation_events.c.payload
    query = (select(messages.c.text, conversation_events.c.at, payload["reason"].astext.label("reason"))
             .select_from(conversation_events.join(messages, and_(
                 messages.c.tenant_id == conversation_events.c.tenant_id,
                 messages.c.wamid == payload["message_wamid"].astext)))
             .where(conversation_events.c.tenant_id == principal.tenant_id, conversation_events.c.kind == "ai_outcome",
                    conversation_events.c.at >= since, payload["outcome"].astext == "handoff",
                    cast(payload["applied"].astext, Boolean).is_(True), messages.c.direction == "inbound",
                    messages.c.text.is_not(None))
             .order_by(conversation_events.c.at.desc()).limit(MAX_GAP_QUESTIONS))
    async with engine.connect() as conn:
        asked = [Asked(r.text, r.at, r.reason or "") for r in await conn.execute(query)]
    offline, _, _ = await asyncio.to_thread(_providers)
    embed = offline.embed if isinstance(offline, SemanticScorer) else None
    async with _busy:
        gaps = await asyncio.to_thread(group, asked, embed, limit=limit)
    return {"days": days, "handed_over": len(asked), "grouped_by": "meaning" if embed else "words",
            "items": [{"question": g.question, "count": g.count, "last_at": g.last_at.isoformat(),
                       "examples": g.examples, "reasons": g.reasons} for g in gaps]}


@router.get("/status", responses={200: json_example({
    "workers": [{"worker": "ai-worker-1", "provider": "semantic", "model": "all-MiniLM-L6-v2", "at": AT}],
    "api": {"offline": {"provider": "semantic", "model": "all-MiniLM-L6-v2", "reason": "model loaded"}}})})
async def get_status(principal: TenantDep, redis: RedisDep) -> dict[str, Any]:
    """Which offline provider answers (each running AI worker's health record) and this server's."""
    workers = []
    async for key in redis.scan_iter(match=redis_keys.ai_worker("*"), count=100):
        raw = await redis.get(key)
        if raw:
            workers.append(json.loads(raw))
        if len(workers) >= MAX_WORKERS_LISTED:
            break
    _, _, state = await asyncio.to_thread(_providers)
    return {"workers": sorted(workers, key=lambda w: str(w.get("worker"))), "api": {"offline": state.as_dict()}}
