"""The dispatcher's signup lane: ``signup.requests`` → ``Onboarding`` → ``tenants.directory`` + ``signup.results``.

Requests are handled one at a time, in their own consumer group, beside the send lanes. The
outcome is kept in Redis before anything is published, so a request redelivered after a crash
republishes that outcome instead of exchanging a code that Meta already consumed. A connected
signup publishes each number to the compacted directory (the router then routes its webhooks),
replays what ``wa.unroutable`` held for those numbers, asks for each WABA's template registry to be synced
(``templates.requests``), then publishes the result; the offset is
committed last.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from functools import partial

from confluent_kafka import KafkaException, Message
from pydantic import ValidationError
from redis.asyncio import Redis

from broker.batches import next_batch
from broker.consumer import CommitError, build_consumer, commit, last_offsets, subscribe
from broker.producer import AsyncProducer, DeliveryError
from broker.runtime import set_aside
from config import redis_keys
from config.settings import DispatcherSettings
from dispatcher.onboarding import Onboarding
from schemas.catalogue import SIGNUP_GROUP, SIGNUP_REQUESTS, SIGNUP_RESULTS, TEMPLATES_REQUESTS, TENANTS_DIRECTORY
from schemas.events import DirectoryEntry
from schemas.signup import SignupRequest, SignupResult
from schemas.templates import TemplateRequest
from tenants.replay import replay_unroutable

log = logging.getLogger(__name__)

OUTCOME_TTL = timedelta(days=7)
PUBLISH_RETRY_S = 1.0


class SignupWorker:
    """Consumes signup requests until ``stopping`` is set."""

    def __init__(self, settings: DispatcherSettings, onboarding: Onboarding, redis: Redis,
                 producer: AsyncProducer) -> None:
        self.settings, self.onboarding, self.redis, self.producer = settings, onboarding, redis, producer
        self.consumer = build_consumer(settings, SIGNUP_GROUP)

    async def run(self, stopping: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        subscribe(self.consumer, SIGNUP_GROUP, [SIGNUP_REQUESTS.full_name(self.settings.topic_prefix)])
        try:
            while not stopping.is_set():
                batch = await loop.run_in_executor(None, next_batch, self.consumer, 1, 0.2)
                if not batch:
                    continue
                msg = batch[0]
                await self._handle(msg)
                try:
                    await loop.run_in_executor(None, partial(commit, self.consumer, last_offsets([msg])))
                except CommitError as exc:
                    log.warning("signup offset commit failed (the outcome is republished, not redone): %s", exc)
        finally:
            await loop.run_in_executor(None, self.consumer.close)

    async def _handle(self, msg: Message) -> None:
        try:
            request = SignupRequest.decode(msg.value() or b"")
        except ValidationError as exc:
            await set_aside(self.producer, SIGNUP_GROUP, msg, exc, self.settings.topic_prefix)
            return
        key = redis_keys.signup_attempt(request.attempt_id)
        saved = await self.redis.get(key)
        if saved is not None:
            result = SignupResult.decode(saved)
            log.info("signup %s was already handled (%s); republishing its outcome", request.attempt_id[:8],
                     result.outcome)
        else:
            result = await self.onboarding.connect(request)
            await self.redis.set(key, result.encode(), ex=OUTCOME_TTL)
        while True:
            try:
                await self._publish(result)
                return
            except (DeliveryError, KafkaException, TimeoutError) as exc:
                log.error("signup %s outcome not published yet (%s); retrying", request.attempt_id[:8], exc)
                await asyncio.sleep(PUBLISH_RETRY_S)

    async def _publish(self, result: SignupResult) -> None:
        prefix = self.settings.topic_prefix
        if result.outcome == "connected":
            directory = TENANTS_DIRECTORY.full_name(prefix)
            for number in result.numbers:
                entry = DirectoryEntry.owned(number.phone_number_id, result.tenant_id, waba_id=number.waba_id,
                                             display_phone_number=number.display_phone_number)
                await self.producer.send(directory, entry.encode(), number.phone_number_id)
            keys = {n.phone_number_id for n in result.numbers} | {w.waba_id for w in result.wabas}
            await replay_unroutable(self.settings, self.producer, keys, tenant_id=result.tenant_id)
            for waba in result.wabas:  # the template registry of a newly connected account is synced at once
                sync = f"{result.attempt_id}:sync:{waba.waba_id}"
                request = TemplateRequest(event_id=sync, request_id=sync, tenant_id=result.tenant_id,
                                          waba_id=waba.waba_id, action="sync", requested_by="signup",
                                          requested_at=result.finished_at)
                await self.producer.send(TEMPLATES_REQUESTS.full_name(prefix), request.encode(), waba.waba_id)
        await self.producer.send(SIGNUP_RESULTS.full_name(prefix), result.encode(), result.tenant_id)
