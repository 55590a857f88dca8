"""The router agent: raw webhooks in, routed events out.

For each raw body from ``wa.webhooks.raw``: split it into events, skip the ones already
routed (the ``seen`` table), resolve the tenant from the directory, and send each event to
``wa.inbound`` / ``wa.statuses`` / ``wa.account.events`` (or ``wa.unroutable``). An event is
marked seen only after its send was acknowledged, and the source offset is committed only
after the whole body was handled: a crash may re-emit (the projector absorbs it), never lose.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

import faust

from schemas.catalogue import WEBHOOKS_RAW
from schemas.events import RoutedEvent
from streams.directory import TenantDirectory
from streams.routing import dedupe_key, destination, route_key, unroutable
from streams.split import split_webhook

log = logging.getLogger(__name__)


class Router:
    """Holds the router's collaborators; ``install()`` registers its agent on the app."""

    def __init__(self, app: faust.App, directory: TenantDirectory, *, prefix: str,
                 sync_timeout: float) -> None:
        self.app = app
        self.directory = directory
        self.prefix = prefix
        self.sync_timeout = sync_timeout
        self.seen = app.Table("router-seen", default=None, partitions=WEBHOOKS_RAW.partitions,
                              schema=faust.Schema(key_type=str, key_serializer="json",
                                                  value_serializer="json"))
        self._topics: dict[str, Any] = {}

    def install(self) -> None:
        source = self.app.topic(WEBHOOKS_RAW.full_name(self.prefix), partitions=WEBHOOKS_RAW.partitions,
                                value_serializer="raw", key_serializer="raw", internal=False)
        self.app.agent(source, name="router")(self._agent)

    def _topic(self, name: str) -> Any:
        if name not in self._topics:
            self._topics[name] = self.app.topic(name, value_serializer="raw", key_serializer="raw",
                                                internal=False)
        return self._topics[name]

    async def _agent(self, stream: faust.StreamT) -> None:
        async for raw in stream:
            await self.handle(raw)

    async def handle(self, raw: bytes) -> None:
        try:
            events = split_webhook(raw, received_at=datetime.now(UTC))
        except ValueError as exc:
            log.error("raw webhook could not be split (kept in wa.webhooks.raw): %s", exc)
            return
        fresh = [(e, dedupe_key(e)) for e in events]
        fresh = [(e, k) for e, k in fresh if k is None or self.seen.get(k) is None]
        pending = [await self._send(event) for event, _ in fresh]
        await asyncio.gather(*pending)
        now = time.time()
        for _, key in fresh:
            if key is not None:
                self.seen[key] = now

    async def _send(self, event: RoutedEvent) -> Any:
        tenant = await self._tenant(route_key(event))
        if tenant is None:
            spec, key, value = unroutable(event)  # type: ignore[arg-type]
            log.info("no tenant for %s; event kept in %s", key, spec.name)
            return await self._topic(spec.full_name(self.prefix)).send(key=key.encode(), value=value.encode())
        routed = event.model_copy(update={"tenant_id": tenant})
        spec, key = destination(routed)
        return await self._topic(spec.full_name(self.prefix)).send(key=key.encode(), value=routed.encode())

    async def _tenant(self, key: str) -> str | None:
        tenant = self.directory.lookup(key)
        if tenant is None and key:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self.directory.sync, self.sync_timeout)
            tenant = self.directory.lookup(key)
        return tenant
