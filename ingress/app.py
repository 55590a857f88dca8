"""The ingress ASGI application: the webhook hot path in front of a FastAPI app.

``/webhooks/meta`` goes straight to ``WebhookHandler``; every other path goes to FastAPI
(health now, the tenant API later). The Kafka producer is opened once in the lifespan.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from aerostic.settings import IngressSettings
from ingress.producer import AsyncProducer
from ingress.webhook import PATH, Receive, Scope, Send, WebhookHandler


class IngressApp:
    """Dispatches the hot path to the bare handler and the rest to FastAPI."""

    def __init__(self, settings: IngressSettings) -> None:
        self.settings = settings
        self.producer = AsyncProducer(settings.kafka_bootstrap_servers,
                                      delivery_timeout_ms=settings.delivery_timeout_ms,
                                      linger_ms=settings.linger_ms)
        self.webhook = WebhookHandler(settings, self.producer)
        self.api = FastAPI(title="Aerostic", lifespan=self._lifespan)
        self.api.add_api_route("/healthz", self._health, methods=["GET"])

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: FastAPI) -> AsyncIterator[None]:
        await self.producer.start()
        try:
            yield
        finally:
            await self.producer.stop()

    async def _health(self) -> dict[str, str]:
        return {"status": "ok"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PATH:
            await self.webhook(scope, receive, send)
        else:
            await self.api(scope, receive, send)


def create_app(settings: IngressSettings | None = None) -> IngressApp:
    return IngressApp(settings or IngressSettings())
