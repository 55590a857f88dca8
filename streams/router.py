"""The router: raw webhooks in, routed events out.

For each batch from ``wa.webhooks.raw``: split every body into its events, drop those already
routed (a seen-set in Redis, plus duplicates inside the batch), resolve the tenant from the
directory, give each customer their one identity (``streams.identities``: a number, a BSUID or both name
one person), and emit to ``wa.inbound`` / ``wa.statuses`` / ``wa.account.events`` (or
``wa.unroutable``), with a customer's media asked of the dispatcher on ``media.requests``
(``schemas.routing.routed_records``). Events are marked seen only after the runtime has the broker's
acknowledgement of the outputs, and the source offsets are committed after that: a crash may
re-emit (the projector absorbs it), never lose.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import orjson
from confluent_kafka import Message
from redis.asyncio import Redis

from broker.runtime import Output, dead_letter
from config import redis_keys
from db.redis_wire import redis_wire
from schemas.catalogue import ROUTER_GROUP, WEBHOOKS_RAW
from schemas.events import InboundMessage, RoutedEvent, StatusUpdate
from schemas.identity import Identity
from schemas.routing import dedupe_key, route_key, routed_records, unroutable
from streams.directory import TenantDirectory
from streams.identities import IdentityBook
from streams.split import split_parts

log = logging.getLogger(__name__)

SEEN_TTL_S = 7 * 24 * 3600  # Meta retries a webhook for up to 7 days


class Router:
    """The ``Processor`` of ``wa.webhooks.raw``."""

    group_id = ROUTER_GROUP

    def __init__(self, directory: TenantDirectory, redis: Redis, identities: IdentityBook, *, prefix: str,
                 sync_timeout: float) -> None:
        self.directory = directory
        self.wire = redis_wire(redis)  # every batch's commands, on one multiplexed connection
        self.identities = identities
        self.prefix = prefix
        self.sync_timeout = sync_timeout
        self.topics = [WEBHOOKS_RAW.full_name(prefix)]
        self._marks: list[str] = []

    async def process(self, batch: Sequence[Message]) -> list[Output]:
        events: list[tuple[RoutedEvent, str | None]] = []
        letters: list[Output] = []
        for msg in batch:
            try:
                found = split_parts(msg.value() or b"", received_at=datetime.now(UTC))
            except ValueError as exc:  # not a webhook at all (orjson's errors are ValueErrors too)
                log.error("raw webhook %s@%s is unreadable; dead-lettered: %s", msg.partition(), msg.offset(), exc)
                letters.append(dead_letter(self.group_id, msg, exc, self.prefix))
                continue
            for part in found.unreadable:
                log.error("raw webhook %s@%s: %s is unreadable; dead-lettered, the rest routed: %s",
                          msg.partition(), msg.offset(), part.where, part.reason)
                letters.append(dead_letter(self.group_id, msg, ValueError(part.reason), self.prefix,
                                           part=orjson.dumps(part.part), where=part.where))
            events.extend((event, dedupe_key(event)) for event in found.events)
        keys = [k for _, k in events if k is not None]
        seen = set()
        if keys:
            flags = await self.wire.mget([redis_keys.routed(k) for k in keys])
            seen = {k for k, flag in zip(keys, flags, strict=True) if flag is not None}
        fresh: list[RoutedEvent] = []
        self._marks = []
        for event, key in events:
            if key is not None:
                if key in seen:
                    continue
                seen.add(key)
                self._marks.append(key)
            fresh.append(event)
        # One catch-up of the directory per batch, and only when some number is unknown: a number attached a
        # moment ago is then found, and a batch of unroutable events waits for one sync, not one each.
        if any(self.directory.lookup(route_key(e)) is None and route_key(e) for e in fresh):
            await asyncio.get_running_loop().run_in_executor(None, self.directory.sync, self.sync_timeout)
        return [*letters, *(out for event in await self._identify(fresh) for out in self._route(event))]

    async def saved(self) -> None:
        # The batch's marks and its new identities' cache: one trip.
        await self.wire.run([*(("SET", redis_keys.routed(key), b"1", "EX", SEEN_TTL_S) for key in self._marks),
                             *self.identities.cache_commands()])

    async def _identify(self, events: list[RoutedEvent]) -> list[RoutedEvent]:
        """Each customer's message or status, keyed by the person's one identity in their tenant."""
        at: list[int] = []
        people: list[tuple[str, Identity]] = []
        for i, event in enumerate(events):
            tenant = self.directory.lookup(route_key(event))
            if not isinstance(event, InboundMessage | StatusUpdate) or tenant is None:
                continue
            if event.phone or event.user_id:
                at.append(i)
                people.append((tenant, Identity(event.phone, event.user_id)))
        if not people:
            return events
        out = list(events)
        for i, person in zip(at, await self.identities.resolve(people), strict=True):
            field = "wa_id" if isinstance(out[i], InboundMessage) else "recipient_id"
            out[i] = out[i].model_copy(update={field: person})
        return out

    def _route(self, event: RoutedEvent) -> list[Output]:
        tenant = self.directory.lookup(route_key(event))
        if tenant is None:
            spec, key, value = unroutable(event)  # type: ignore[arg-type]
            log.info("no tenant for %s; event kept in %s", key, spec.name)
            return [Output(spec.full_name(self.prefix), key.encode(), value.encode())]
        routed = event.model_copy(update={"tenant_id": tenant})
        return [Output(spec.full_name(self.prefix), key.encode(), value)
                for spec, key, value in routed_records(routed)]
