"""The AI worker's offline provider: semantic with the model, BM25 without it, said in its log and health."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from ai.knowledge import KnowledgeBase, KnowledgeEntry
from ai.small_talk import SmallTalk
from aiworker.worker import AiWorker
from config.settings import AiSettings
from schemas.ai import AiRequest

KB = KnowledgeBase([KnowledgeEntry(id="hours", question="What are your opening hours?",
                                   answer="Monday to Friday, 9 to 5.", keywords=("open",))],
                   tenant_id="shop", version="shop:3")


def _request(text: str) -> AiRequest:
    return AiRequest(event_id="r1", tenant_id="shop", conversation_key="1:2", message_wamid="wamid.1", text=text,
                     history=[], version=1, config_version=3, requested_at=datetime(2026, 1, 1, tzinfo=UTC))


async def _worker(**kwargs: str) -> AiWorker:
    worker = AiWorker(AiSettings(environment="test", kafka_bootstrap_servers="127.0.0.1:1"), **kwargs)
    worker._knowledge["shop"] = (KB, SmallTalk())  # as loaded from PostgreSQL at configuration version 3
    return worker


async def _close(worker: AiWorker) -> None:
    await worker.engine.dispose()
    await worker.redis.aclose()


async def test_with_the_model_missing_the_worker_answers_with_bm25_and_says_so(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    worker = await _worker(model_package="aerostic_no_such_model")
    try:
        assert any(r.levelno == logging.WARNING and "BM25" in r.getMessage() for r in caplog.records)
        health = worker.health()
        assert health["offline"] == {"provider": "lexical", "model": None, "reason": worker.status.reason}
        assert "not installed" in worker.status.reason
        decision = await worker._decide(_request("when are you open?"))
        assert (decision.outcome, decision.reply, decision.provider) == ("reply", "Monday to Friday, 9 to 5.",
                                                                         "offline")
        greeting = await worker._decide(_request("hello!"))
        assert greeting.provider == "small_talk" and greeting.reply == SmallTalk().greeting
    finally:
        await _close(worker)


async def test_with_the_model_the_worker_answers_semantically() -> None:
    worker = await _worker()
    try:
        assert worker.health()["offline"]["provider"] == "semantic"  # type: ignore[index]
        decision = await worker._decide(_request("at what time do you close the shop?"))
        assert (decision.outcome, decision.provider) == ("reply", "semantic")
    finally:
        await _close(worker)
