"""The dispatcher's template lane: ``templates.requests`` → Meta → ``templates.results``.

One request at a time, in its own consumer group, beside the send lanes (as ``SignupWorker`` does):

- ``sync``: ``GET /{waba}/message_templates`` page by page (``limit=100``, ``after`` cursor, at most
  ``MAX_PAGES``); each page is published as it comes, then ``synced`` with every (name, language) seen so the
  projector can mark what Meta no longer lists as deleted;
- ``create``: within Meta's 100 creations per WABA per hour (a sorted set per WABA in Redis, shared by every
  dispatcher), ``POST /{waba}/message_templates``; over the limit it fails at once with ``CREATION_LIMIT_CODE``
  and when the next slot frees, never reaching Meta;
- ``delete``: ``DELETE /{waba}/message_templates?name=…`` (every language of the name).

The final result is kept in Redis before it is published, so a redelivered request republishes it instead of
creating twice; the offset is committed last. Transient failures are retried a few times with back-off.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from confluent_kafka import KafkaException, Message
from pydantic import ValidationError
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from broker.batches import next_batch
from broker.consumer import CommitError, build_consumer, commit, last_offsets, subscribe
from broker.producer import AsyncProducer, DeliveryError
from broker.runtime import set_aside
from config import redis_keys
from config.settings import DispatcherSettings
from db.tables import whatsapp_accounts
from dispatcher.exceptions import AmbiguousOutcome, DispatchError, GraphError, human_reason
from dispatcher.graph import GraphClient
from schemas.catalogue import TEMPLATES_GROUP, TEMPLATES_REQUESTS, TEMPLATES_RESULTS
from schemas.templates import CREATION_LIMIT_CODE, TemplateRequest, TemplateResult
from vault.cipher import Vault

log = logging.getLogger(__name__)

T = TypeVar("T")
OUTCOME_TTL = timedelta(days=7)
PUBLISH_RETRY_S = 1.0
CREATIONS_PER_HOUR = 100  # Meta: at most 100 template creations per WABA per hour
HOUR_S = 3600.0
MAX_PAGES = 100  # pages of 100: 10,000, above Meta's cap of 6,000 templates per WABA
PAGE_SIZE = 100
FIELDS = "id,name,language,status,category,components,parameter_format,quality_score,rejected_reason"
ATTEMPTS = 3
NOT_CONNECTED = -3


class TemplateFailed(Exception):
    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.message, self.code = message, code


class TemplateWorker:
    """Consumes template requests until ``stopping`` is set."""

    def __init__(self, settings: DispatcherSettings, graph: GraphClient, engine: AsyncEngine, vault: Vault,
                 redis: Redis, producer: AsyncProducer, *, retry_base_s: float = 0.5,
                 creations_per_hour: int = CREATIONS_PER_HOUR) -> None:
        self.settings, self.graph, self.engine, self.vault = settings, graph, engine, vault
        self.redis, self.producer = redis, producer
        self.retry_base_s, self.creations_per_hour = retry_base_s, creations_per_hour
        self.results_topic = TEMPLATES_RESULTS.full_name(settings.topic_prefix)
        self.consumer = build_consumer(settings, TEMPLATES_GROUP)

    async def run(self, stopping: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        subscribe(self.consumer, TEMPLATES_GROUP, [TEMPLATES_REQUESTS.full_name(self.settings.topic_prefix)])
        try:
            while not stopping.is_set():
                batch = await loop.run_in_executor(None, next_batch, self.consumer, 1, 0.2)
                if not batch:
                    continue
                await self._handle(batch[0])
                try:
                    await loop.run_in_executor(None, partial(commit, self.consumer, last_offsets(batch)))
                except CommitError as exc:
                    log.warning("template request offset commit failed (its outcome is republished): %s", exc)
        finally:
            await loop.run_in_executor(None, self.consumer.close)

    async def _handle(self, msg: Message) -> None:
        try:
            request = TemplateRequest.decode(msg.value() or b"")
        except ValidationError as exc:
            await set_aside(self.producer, TEMPLATES_GROUP, msg, exc, self.settings.topic_prefix)
            return
        key = redis_keys.template_request(request.request_id)
        saved = await self.redis.get(key)
        if saved is not None:
            result = TemplateResult.decode(saved)
        else:
            result = await self.handle(request)
            await self.redis.set(key, result.encode(), ex=OUTCOME_TTL)
        await self._publish(result)

    async def handle(self, request: TemplateRequest) -> TemplateResult:
        """Carry out ``request`` with Meta; its final result (pages of a sync are published on the way)."""
        try:
            token = await self._token(request)
            if request.action == "sync":
                return await self._sync(request, token)
            if request.action == "create":
                return await self._create(request, token)
            return await self._delete(request, token)
        except TemplateFailed as failed:
            log.warning("template %s of WABA %s failed: %s", request.action, request.waba_id, failed.message)
            return self._result(request, "failed", error_code=failed.code, error_message=failed.message)

    # --- the three actions -------------------------------------------------------------------

    async def _sync(self, request: TemplateRequest, token: str) -> TemplateResult:
        seen: list[tuple[str, str]] = []
        params: dict[str, Any] = {"fields": FIELDS, "limit": PAGE_SIZE}
        started = datetime.now(UTC)  # the listing is as of its first page: later creations are not "missing"
        for page in range(MAX_PAGES):
            asked = datetime.now(UTC)
            body = await self._call(partial(self.graph.call, "GET", f"{request.waba_id}/message_templates", token,
                                            params=params))
            listed = [t for t in body.get("data") or [] if isinstance(t, dict) and t.get("name")]
            seen += [(str(t["name"]), str(t.get("language", ""))) for t in listed]
            await self._publish(self._result(request, "page", templates=listed, fetched_at=asked),
                                event_suffix=f"page{page}")
            paging = body.get("paging")
            paging = paging if isinstance(paging, dict) else {}
            cursors = paging.get("cursors")
            after = cursors.get("after") if isinstance(cursors, dict) else None
            if not paging.get("next") or not after or not listed:
                break
            params = {**params, "after": after}
        log.info("synced %d template(s) of WABA %s", len(seen), request.waba_id)
        return self._result(request, "synced", seen=seen, fetched_at=started)

    async def _create(self, request: TemplateRequest, token: str) -> TemplateResult:
        body = request.template or {}
        await self._reserve_creation(request)
        answer = await self._call(partial(self.graph.call, "POST", f"{request.waba_id}/message_templates", token,
                                          json=body), repeatable=False)
        meta_id = answer.get("id")
        if not isinstance(meta_id, str | int) or not str(meta_id):
            raise TemplateFailed("Meta answered the creation without a template id")
        return self._result(request, "created", name=str(body.get("name")), language=str(body.get("language")),
                            template=body, meta_id=str(meta_id), status=str(answer.get("status") or "PENDING"),
                            category=str(answer.get("category") or body.get("category")))

    async def _delete(self, request: TemplateRequest, token: str) -> TemplateResult:
        await self._call(partial(self.graph.call, "DELETE", f"{request.waba_id}/message_templates", token,
                                 params={"name": request.name}))
        return self._result(request, "deleted", name=request.name)

    async def _reserve_creation(self, request: TemplateRequest) -> None:
        """Count this creation in the WABA's last hour, or fail when Meta's limit is reached."""
        key, now = redis_keys.template_creations(request.waba_id), time.time()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, 0, now - HOUR_S)
            pipe.zcard(key)
            pipe.zrange(key, 0, 0, withscores=True)
            _, count, oldest = await pipe.execute()
        if count >= self.creations_per_hour:
            frees = datetime.fromtimestamp(float(oldest[0][1]) + HOUR_S, UTC) if oldest else None
            when = f"; the next one is possible at {frees:%H:%M:%S} UTC" if frees else ""
            raise TemplateFailed(f"Meta allows {self.creations_per_hour} template creations per WhatsApp Business "
                                 f"Account per hour{when}", CREATION_LIMIT_CODE)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {request.request_id: now})
            pipe.expire(key, int(HOUR_S) + 60)
            await pipe.execute()

    # --- Meta, the token and publishing --------------------------------------------------------

    async def _token(self, request: TemplateRequest) -> str:
        query = select(whatsapp_accounts.c.token_ciphertext, whatsapp_accounts.c.token_key_id,
                       whatsapp_accounts.c.status).where(whatsapp_accounts.c.waba_id == request.waba_id,
                                                         whatsapp_accounts.c.tenant_id == request.tenant_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None or row.token_ciphertext is None or row.token_key_id is None:
            raise TemplateFailed("this WhatsApp Business Account is not connected to the tenant", NOT_CONNECTED)
        if row.status != "connected":
            raise TemplateFailed(f"this WhatsApp Business Account is {row.status}; reconnect it first", NOT_CONNECTED)
        return self.vault.decrypt(bytes(row.token_ciphertext), row.token_key_id, aad=request.waba_id)

    async def _call(self, call: Callable[[], Awaitable[T]], *, repeatable: bool = True) -> T:
        """``call`` with retries of transient failures (only those that never reached Meta when not
        ``repeatable``); any other failure becomes ``TemplateFailed`` with Meta's code and message."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await call()
            except DispatchError as exc:
                sent = isinstance(exc, AmbiguousOutcome | GraphError)
                if not (exc.is_transient and (repeatable or not sent) and attempt < ATTEMPTS):
                    if isinstance(exc, GraphError):
                        text = exc.title + (f": {exc.details}" if exc.details and exc.details != exc.title else "")
                        raise TemplateFailed(text or f"Meta error {exc.code}", exc.code) from exc
                    raise TemplateFailed(human_reason(exc)) from exc
                await asyncio.sleep(self.retry_base_s * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def _result(self, request: TemplateRequest, outcome: str, **fields: Any) -> TemplateResult:
        return TemplateResult.model_validate({
            "event_id": f"{request.request_id}:{outcome}", "request_id": request.request_id,
            "tenant_id": request.tenant_id, "waba_id": request.waba_id, "action": request.action,
            "outcome": outcome, "name": request.name, **{"fetched_at": datetime.now(UTC), **fields}})

    async def _publish(self, result: TemplateResult, *, event_suffix: str | None = None) -> None:
        if event_suffix is not None:
            result = result.model_copy(update={"event_id": f"{result.request_id}:{event_suffix}"})
        while True:
            try:
                await self.producer.send(self.results_topic, result.encode(), result.waba_id)
                return
            except (DeliveryError, KafkaException, TimeoutError) as exc:
                log.error("template result %s not published yet (%s); retrying", result.event_id, exc)
                await asyncio.sleep(PUBLISH_RETRY_S)
