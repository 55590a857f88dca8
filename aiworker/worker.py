"""The AI worker process: ``ai.requests`` → the tenant's provider → ``ai.decisions``.

Requests are answered concurrently (a slow model never holds up other conversations) and their
offsets committed only up to the last request whose decision the broker acknowledged. Each tenant's
provider choice and threshold travel with the request (the conversation processor read them); its
knowledge base comes from PostgreSQL, reloaded when a request names a newer configuration version.
The offline provider serves every tenant: the semantic one when its model is installed, else BM25
(said once in the log, and in the worker's health record in Redis, refreshed every 10 s); the
OpenAI-compatible model is one shared client. Greetings, thanks and goodbyes get the tenant's
small-talk replies. A request redelivered after a crash is answered again with the same decision
id; the conversation processor applies a decision at most once per message version.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Sequence

import redis.asyncio as aioredis
import uvloop
from confluent_kafka import Consumer, Message, TopicPartition
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ai.agent import decide_request
from ai.embedding import MODEL_PACKAGE
from ai.exceptions import AIError
from ai.knowledge import KnowledgeBase, KnowledgeEntry
from ai.offline import load_offline
from ai.openai_provider import OpenAIConfig, OpenAIProvider
from ai.provider import Answer, Provider
from ai.scorer import OfflineScorer
from ai.small_talk import SmallTalk
from aiworker.metrics import Measured, decided
from broker.batches import next_batch
from broker.consumer import COMMIT_EVERY_S, CommitError, build_consumer, subscribe
from broker.metrics import GroupMetrics, slices
from broker.offsets import OffsetTracker, commit_finished
from broker.producer import AsyncProducer, DeliveryError
from broker.runtime import set_aside
from broker.shutdown import stop_on_signals
from broker.tasks import keep_running
from config import redis_keys
from config.logs import bind
from config.settings import AiSettings
from db.tables import knowledge_entries, tenant_settings
from schemas.ai import AiDecision, AiRequest, Turn
from schemas.catalogue import AI_DECISIONS, AI_GROUP, AI_REQUESTS

log = logging.getLogger(__name__)

HEALTH_EVERY_S = 10.0
HEALTH_TTL_S = 30


class Unconfigured(AIError):
    """The tenant chose the OpenAI provider but this deployment has no model configured."""


async def load_knowledge(engine: AsyncEngine, tenant_id: str, version: int) -> tuple[KnowledgeBase, SmallTalk]:
    """The tenant's knowledge base at configuration ``version`` and its small-talk replies."""
    async with engine.connect() as conn:
        rows = await conn.execute(select(knowledge_entries).where(knowledge_entries.c.tenant_id == tenant_id)
                                  .order_by(knowledge_entries.c.created_at, knowledge_entries.c.id))
        entries = [KnowledgeEntry(id=str(r.id), question=r.question, answer=r.answer, keywords=tuple(r.keywords or ()))
                   for r in rows]
        stored = (await conn.execute(select(tenant_settings.c.ai_small_talk)
                                     .where(tenant_settings.c.tenant_id == tenant_id))).scalar()
    small_talk = SmallTalk.model_validate(stored) if stored else SmallTalk()
    return KnowledgeBase(entries, tenant_id=tenant_id, version=f"{tenant_id}:{version}"), small_talk


class _NoModel:
    """Stands in for the OpenAI provider when no model is configured: every request goes to a person."""

    name = "openai"

    async def answer(self, question: str, history: Sequence[Turn], knowledge: Sequence[KnowledgeEntry]) -> Answer:
        raise Unconfigured("no OpenAI-compatible model is configured (AEROSTIC_OPENAI_BASE_URL)")

    async def aclose(self) -> None:
        return None


class AiWorker:
    """Consumes requests, decides, publishes, commits; until ``stop()``."""

    def __init__(self, settings: AiSettings, *, model_package: str = MODEL_PACKAGE) -> None:
        self.settings = settings
        self.topic = AI_REQUESTS.full_name(settings.topic_prefix)
        self.decisions = AI_DECISIONS.full_name(settings.topic_prefix)
        self.consumer = build_consumer(settings, AI_GROUP)
        self.producer = AsyncProducer(settings.kafka_bootstrap_servers, linger_ms=1)
        self.engine = create_async_engine(settings.database_url.get_secret_value(), pool_size=4)
        self.scorer = OfflineScorer()
        self.offline, self.status = load_offline(self.scorer, package=model_package)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self.redis = aioredis.from_url(settings.redis_url.get_secret_value())
        self.started_at = time.time()
        self.model: Provider = _NoModel()
        if settings.openai_base_url:
            self.model = OpenAIProvider(OpenAIConfig(
                base_url=settings.openai_base_url, model=settings.openai_model, api_key=settings.openai_api_key,
                timeout_s=settings.timeout_s), ranker=self.scorer)
        self.offsets = OffsetTracker()
        self.group_metrics = GroupMetrics(AI_GROUP)
        self._knowledge: dict[str, tuple[KnowledgeBase, SmallTalk]] = {}
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._commit_soon = asyncio.Event()  # a request was set aside: commit it now, not at the next interval
        self._revoked: list[set[tuple[str, int]]] = []

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        await self.producer.start()
        loop = asyncio.get_running_loop()
        subscribe(self.consumer, AI_GROUP, [self.topic], on_revoke=self._on_revoke)
        committer = keep_running("AI offset committer", self._commit_forever)
        health = keep_running("AI health record", self._health_forever)
        try:
            while not self._stopping.is_set():
                batch = await loop.run_in_executor(None, next_batch, self.consumer, 200, 0.1)
                self._forget_revoked()
                if batch:
                    self.group_metrics.started(slices(batch), time.time())
                for msg in batch:
                    await self._slots.acquire()
                    task = asyncio.create_task(self._handle(msg))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        finally:
            committer.cancel()
            health.cancel()
            await asyncio.gather(*self._tasks, committer, health, return_exceptions=True)
            await self._commit()
            await loop.run_in_executor(None, self.consumer.close)
            await self.producer.stop()
            await self.model.aclose()
            await self.engine.dispose()
            with contextlib.suppress(Exception):
                await self.redis.delete(redis_keys.ai_worker(self.worker_id))
            await self.redis.aclose()

    def _forget_revoked(self) -> None:
        """Their new owner answers what was in flight for them: never commit for revoked partitions."""
        while self._revoked:
            revoked = self._revoked.pop()
            self.offsets.forget(revoked)
            self.group_metrics.forget(sorted(revoked))

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """On the polling thread: hand the revoked partitions to the event loop's next turn."""
        self._revoked.append({(tp.topic, tp.partition) for tp in partitions})

    async def _handle(self, msg: Message) -> None:
        topic, partition, offset = msg.topic() or "", msg.partition() or 0, msg.offset() or 0
        try:
            self.offsets.received(topic, partition, offset)
            try:
                request = AiRequest.decode(msg.value() or b"")
            except ValidationError as exc:
                await set_aside(self.producer, AI_GROUP, msg, exc, self.settings.topic_prefix)
                self.offsets.finished(topic, partition, offset)
                self._commit_soon.set()
                return
            bind(tenant_id=request.tenant_id, conversation_key=request.conversation_key,
                 wamid=request.message_wamid)  # this request's own task: its lines carry them
            decision = await self._decide(request)
            while True:
                try:
                    await self.producer.send(self.decisions, decision.encode(), request.conversation_key)
                    break
                except DeliveryError as exc:
                    log.error("decision for %s not published (%s); retrying", request.conversation_key, exc)
                    await asyncio.sleep(0.5)
            self.offsets.finished(topic, partition, offset)
        finally:
            self._slots.release()

    async def _decide(self, request: AiRequest) -> AiDecision:
        loaded = self._knowledge.get(request.tenant_id)
        if loaded is None or loaded[0].version != f"{request.tenant_id}:{request.config_version}":
            loaded = self._knowledge[request.tenant_id] = await load_knowledge(
                self.engine, request.tenant_id, request.config_version)
        knowledge, small_talk = loaded
        measured = Measured(self.model if request.provider == "openai" else self.offline)
        decision = await decide_request(request, measured, knowledge, threshold=request.threshold,
                                        timeout_s=self.settings.timeout_s, small_talk=small_talk)
        decided(decision, measured)
        return decision

    def health(self) -> dict[str, object]:
        """What the health record says: which offline provider answers, and why."""
        return {"worker": self.worker_id, "offline": self.status.as_dict(), "started_at": self.started_at,
                "at": time.time()}

    async def _health_forever(self) -> None:
        while True:
            await self.redis.set(redis_keys.ai_worker(self.worker_id), json.dumps(self.health()), ex=HEALTH_TTL_S)
            await asyncio.sleep(HEALTH_EVERY_S)

    async def _commit_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._commit_soon.wait(), COMMIT_EVERY_S)
            self._commit_soon.clear()
            await self._commit()

    async def _commit(self) -> None:
        offsets = self.offsets.committable()
        if not offsets:
            return
        try:
            await commit_finished(self.consumer, self.offsets, offsets, self.group_metrics)
        except CommitError as exc:
            log.warning("AI offsets not committed (the requests will be answered again): %s", exc)


def run(settings: AiSettings | None = None) -> None:
    """Run the AI worker until SIGINT/SIGTERM."""

    async def main() -> None:
        worker = AiWorker(settings or AiSettings())
        stop_on_signals(worker.stop)
        with contextlib.suppress(asyncio.CancelledError):
            await worker.run()

    uvloop.run(main())  # the cheaper event loop every long-running process runs on
