"""The dispatcher's media lane: inbound media from Meta into the media store, and uploads for sends.

``MediaWorker`` consumes ``media.requests`` (its own group, a few requests at a time, beside the send lanes):
resolve the media id (``GET /{media-id}`` with the number's token), check the type and declared size against
Meta's limits (``schemas.media``), stream the file from Meta's URL into the store (counted against the limit
as it comes), and publish ``media.results``. Meta's URL needs the token and expires after minutes: a URL
that answers 401/403/404/410 is resolved again once and retried (failing again: ``failed``). Transient
failures (Graph 5xx, transport, the store) are retried with back-off; then the result is ``failed`` with the
reason. It also prunes media past each tenant's retention every ``PRUNE_INTERVAL_S``.

``MediaUploads`` is the send path's: a message whose media ``id`` is one of Aerostic's (a UUID from
``POST /v1/media``) gets Meta's media id instead, uploaded with ``POST /{phone_number_id}/media`` on first use
and cached per number in Redis until shortly before Meta forgets it (30 days); a send Meta refuses for its media
(131009, 131053) forgets the cached ids and is tried once more, uploading again.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import tempfile
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import quote

import httpx
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
from db.tables import media as media_table
from dispatcher.accounts import Accounts
from dispatcher.exceptions import DispatchError, GraphError, TransportError, human_reason
from dispatcher.graph import GraphClient
from mediastore import NotFound, ObjectStore, TooLarge
from mediastore.retention import prune
from schemas.catalogue import MEDIA_GROUP, MEDIA_REQUESTS, MEDIA_RESULTS
from schemas.media import (
    LIMITS,
    MediaRefused,
    MediaRequest,
    MediaResult,
    check,
    is_media_id,
    media_objects,
    storage_key,
)

log = logging.getLogger(__name__)

ATTEMPTS = 4
CONCURRENCY = 8  # requests handled at once (one batch; its offsets are committed when all are done)
PUBLISH_RETRY_S = 1.0
PRUNE_INTERVAL_S = 3600.0
EXPIRED_URL = frozenset({401, 403, 404, 410})
META_MEDIA_TTL_S = 29 * 24 * 3600  # Meta keeps uploaded media 30 days; the cache forgets a day before
STALE_MEDIA_CODES = frozenset({131009, 131053})  # Meta refused a media id we cached: forget it, upload again
SPOOL_BYTES = 8 * 1024 * 1024


class UrlExpired(Exception):
    """Meta's media URL no longer serves the file (expired, or a token it does not take)."""


class MediaUnavailable(Exception):
    """A message names one of Aerostic's media ids that the tenant does not have (or whose file is gone)."""


class MediaWorker:
    """Consumes media requests until ``stopping`` is set."""

    def __init__(self, settings: DispatcherSettings, graph: GraphClient, accounts: Accounts, store: ObjectStore,
                 producer: AsyncProducer, engine: AsyncEngine) -> None:
        self.settings, self.graph, self.accounts, self.store = settings, graph, accounts, store
        self.producer, self.engine = producer, engine
        self.results_topic = MEDIA_RESULTS.full_name(settings.topic_prefix)
        self.consumer = build_consumer(settings, MEDIA_GROUP)

    async def run(self, stopping: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        subscribe(self.consumer, MEDIA_GROUP, [MEDIA_REQUESTS.full_name(self.settings.topic_prefix)])
        pruner = asyncio.create_task(self._prune_forever())
        try:
            while not stopping.is_set():
                batch = await loop.run_in_executor(None, next_batch, self.consumer, CONCURRENCY, 0.2)
                if not batch:
                    continue
                await asyncio.gather(*(self._handle(msg) for msg in batch))  # a large file does not hold the rest
                try:
                    await loop.run_in_executor(None, partial(commit, self.consumer, last_offsets(batch)))
                except CommitError as exc:
                    log.warning("media request offset commit failed (it is done again, harmlessly): %s", exc)
        finally:
            pruner.cancel()
            await asyncio.gather(pruner, return_exceptions=True)
            await loop.run_in_executor(None, self.consumer.close)

    async def _handle(self, msg: Message) -> None:
        try:
            request = MediaRequest.decode(msg.value() or b"")
        except ValidationError as exc:
            await set_aside(self.producer, MEDIA_GROUP, msg, exc, self.settings.topic_prefix)
            return
        result = await self.handle(request)
        while True:
            try:
                await self.producer.send(self.results_topic, result.encode(), request.conversation_key.encode())
                return
            except (DeliveryError, KafkaException, TimeoutError) as exc:
                log.error("media %s result not published yet (%s); retrying", request.media_id, exc)
                await asyncio.sleep(PUBLISH_RETRY_S)

    async def handle(self, request: MediaRequest) -> MediaResult:
        """Download and store ``request``'s media; the result, stored or failed (never raises for Meta's sake)."""
        for attempt in range(ATTEMPTS):
            try:
                return await self._fetch(request)
            except MediaRefused as exc:
                return self._result(request, "failed", error=exc.reason)
            except UrlExpired as exc:  # resolved again once already: Meta's URLs keep failing
                return self._result(request, "failed", error=str(exc))
            except GraphError as exc:
                if not exc.is_transient or attempt == ATTEMPTS - 1:
                    return self._result(request, "failed", error=human_reason(exc), error_code=exc.code)
            except (DispatchError, OSError, RuntimeError) as exc:
                if attempt == ATTEMPTS - 1:
                    return self._result(request, "failed", error=str(exc) or type(exc).__name__)
                log.warning("media %s: %s; retrying", request.media_id, exc)
            await asyncio.sleep(self.settings.retry_base_s * 2 ** attempt)
        raise AssertionError("unreachable")

    async def _fetch(self, request: MediaRequest) -> MediaResult:
        profile = await self.accounts.profile(request.phone_number_id)
        if profile is None or profile.tenant_id != request.tenant_id:
            return self._result(request, "failed", error="the phone number is not connected to the tenant")
        token = self.accounts.token(profile)
        limit = LIMITS[request.media_kind]
        key = storage_key(request.tenant_id, request.media_id)
        for resolve in range(2):  # an expired URL: resolve once more for a fresh one
            info = await self.graph.call("GET", quote(request.meta_media_id, safe=""), token,
                                         params={"phone_number_id": request.phone_number_id})
            url, mime = str(info.get("url") or ""), str(info.get("mime_type") or request.mime_type or "")
            declared = int(info["file_size"]) if str(info.get("file_size", "")).isdigit() else None
            check(request.media_kind, mime, declared, inbound=True)
            if not url.startswith("https://") and (self.settings.is_production or not url.startswith("http://")):
                return self._result(request, "failed", error="Meta gave no usable media URL")
            try:
                stored = await self.store.put(key, self._download(url, token), max_bytes=limit.max_bytes)
            except UrlExpired as exc:
                if resolve == 1:
                    raise UrlExpired(f"Meta's media URL failed again after resolving it once more ({exc})") from exc
                log.info("media %s: Meta's URL expired; resolving it again", request.media_id)
                continue
            except TooLarge:
                check(request.media_kind, mime, limit.max_bytes + 1, inbound=True)
                raise
            return self._result(request, "stored", mime_type=mime.split(";", 1)[0].strip().lower(),
                                size_bytes=stored.size, sha256=stored.sha256, storage_key=key)
        raise UrlExpired("Meta's media URL expired twice")

    async def _download(self, url: str, token: str) -> AsyncIterator[bytes]:
        try:
            async with self.graph.stream(url, token) as response:
                if response.status_code in EXPIRED_URL:
                    raise UrlExpired(f"Meta's media URL answered {response.status_code}")
                if response.status_code != 200:
                    raise TransportError(f"Meta's media URL answered {response.status_code}",
                                         http_status=response.status_code)
                async for chunk in response.aiter_bytes(256 * 1024):
                    yield chunk
        except httpx.TransportError as exc:
            raise TransportError(f"media download: {type(exc).__name__}") from exc

    def _result(self, request: MediaRequest, outcome: str, **fields: Any) -> MediaResult:
        if outcome == "failed":
            log.warning("media %s of %s not stored: %s", request.media_id, request.wamid, fields.get("error"))
        return MediaResult.model_validate({
            "event_id": f"{request.media_id}:result", "media_id": request.media_id, "tenant_id": request.tenant_id,
            "phone_number_id": request.phone_number_id, "conversation_key": request.conversation_key,
            "wamid": request.wamid, "media_kind": request.media_kind, "outcome": outcome,
            "filename": request.filename, "completed_at": datetime.now(UTC), **fields})

    async def _prune_forever(self) -> None:
        while True:
            try:
                removed = await prune(self.engine, self.store, default_days=self.settings.media_retention_days)
                if removed:
                    log.info("media past retention removed: %d", removed)
            except Exception:
                log.exception("media pruning failed; tried again later")
            await asyncio.sleep(PRUNE_INTERVAL_S)


class MediaUploads:
    """Replaces Aerostic's media ids in a send with Meta's, uploading on first use per number."""

    def __init__(self, engine: AsyncEngine, store: ObjectStore, redis: Redis, graph: GraphClient) -> None:
        self.engine, self.store, self.redis, self.graph = engine, store, redis, graph

    async def body(self, body: dict[str, Any], *, tenant_id: str, phone_number_id: str,
                   token: Callable[[], str]) -> dict[str, Any]:
        """``body`` with every Aerostic media id (the message's media, a template's media parameters) swapped for
        Meta's; ``body`` itself when it names none."""
        if not any(is_media_id(str(obj.get("id", ""))) for _, _, obj in media_objects(body)):
            return body
        body = copy.deepcopy(body)
        for _, _, media in media_objects(body):
            media_id = str(media.get("id", ""))
            if not is_media_id(media_id):
                continue
            cache = redis_keys.meta_media(phone_number_id, media_id)
            meta_id = await self.redis.get(cache)
            if meta_id is None:
                meta_id = await self._upload(tenant_id, phone_number_id, media_id, token())
                await self.redis.set(cache, meta_id, ex=META_MEDIA_TTL_S)
            media["id"] = meta_id.decode() if isinstance(meta_id, bytes) else str(meta_id)
        return body

    async def forget(self, message: dict[str, Any], phone_number_id: str) -> bool:
        """Drop the cached Meta ids of ``message``'s Aerostic media; whether it named any."""
        keys = [redis_keys.meta_media(phone_number_id, str(obj["id"])) for _, _, obj in media_objects(message)
                if is_media_id(str(obj.get("id", "")))]
        if keys:
            await self.redis.delete(*keys)
        return bool(keys)

    async def _upload(self, tenant_id: str, phone_number_id: str, media_id: str, token: str) -> str:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(media_table.c.storage_key, media_table.c.mime_type,
                                             media_table.c.filename).where(
                media_table.c.tenant_id == tenant_id, media_table.c.id == media_id,
                media_table.c.status == "stored"))).first()
        if row is None or row.storage_key is None:
            raise MediaUnavailable(f"media {media_id} does not exist for this tenant")
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
            try:
                async for chunk in self.store.get(row.storage_key):
                    spool.write(chunk)
            except NotFound:
                raise MediaUnavailable(f"media {media_id} is no longer stored") from None
            spool.seek(0)
            answer = await self.graph.call(
                "POST", f"{quote(phone_number_id, safe='')}/media", token,
                data={"messaging_product": "whatsapp", "type": row.mime_type or "application/octet-stream"},
                files={"file": (row.filename or media_id, spool, row.mime_type or "application/octet-stream")})
        meta_id = answer.get("id")
        if not isinstance(meta_id, str) or not meta_id:
            raise TransportError("Meta's upload answer has no media id")
        log.info("media %s uploaded to Meta for %s", media_id, phone_number_id)
        return meta_id
