"""The ingress ASGI application: the webhook hot path in front of a FastAPI app.

``/webhooks/meta`` goes straight to ``WebhookHandler``; every other path goes to FastAPI
(health, the tenant API in ``ingress.api``, Embedded Signup in ``ingress.signup`` and the
console in ``ingress.console``). The lifespan opens the Kafka producer, the
database engine and the Redis client once and keeps them on ``app.state`` for the API.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from aerostic.settings import IngressSettings
from ingress import api
from ingress.api.deps import close_clients, open_clients
from ingress.console.pages import router as console_router
from ingress.producer import AsyncProducer
from ingress.signup import router as signup_router
from ingress.webhook import PATH, Receive, Scope, Send, WebhookHandler


class IngressApp:
    """Dispatches the hot path to the bare handler and the rest to FastAPI."""

    def __init__(self, settings: IngressSettings) -> None:
        self.settings = settings
        self.producer = AsyncProducer(settings.kafka_bootstrap_servers,
                                      delivery_timeout_ms=settings.delivery_timeout_ms,
                                      linger_ms=settings.linger_ms)
        self.webhook = WebhookHandler(settings, self.producer)
        # No unauthenticated docs: every route but login, the OAuth callback and health needs a credential.
        self.api = FastAPI(title="Aerostic", lifespan=self._lifespan, docs_url=None, redoc_url=None,
                           openapi_url=None)
        self.api.add_api_route("/healthz", self._health, methods=["GET"])
        api.install(self.api)
        self.api.include_router(signup_router)
        self.api.include_router(console_router)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        await self.producer.start()
        try:
            engine, redis = open_clients(self.settings)
            app.state.settings, app.state.producer = self.settings, self.producer
            app.state.engine, app.state.redis = engine, redis
            try:
                yield
            finally:
                await close_clients(engine, redis)
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
