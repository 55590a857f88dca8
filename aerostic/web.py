"""The one web server: Meta's webhook hot path beside the tenant API and console.

``/webhooks/meta`` goes straight to ``ingress.webhook.WebhookHandler`` (no framework on the
hot path); every other path, and the lifespan, go to the FastAPI app of ``api.app``. Both
share one Kafka producer. They are two process packages that never import each other; this
module, at the roof, is where they are served together.

Only the API's paths pass uvicorn's proxy-header middleware (trusting ``FORWARDED_ALLOW_IPS`` as
uvicorn does; the server runs with ``proxy_headers=False``): the API reads the client's address
(login throttling), while a webhook is proven by its signature alone and skips the layer.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any, cast

from fastapi import FastAPI
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api.app import create_api
from broker.producer import AsyncProducer
from config.settings import IngressSettings
from ingress.webhook import PATH, Receive, Scope, Send, WebhookHandler
from schemas.catalogue import RECORD_HEADROOM_BYTES

TRUSTED_PROXIES = "127.0.0.1,::1"  # uvicorn's own default
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class WebApp:
    """Dispatches the hot path to the bare handler and the rest to FastAPI."""

    def __init__(self, settings: IngressSettings) -> None:
        self.settings = settings
        self.producer = AsyncProducer(settings.kafka_bootstrap_servers,
                                      delivery_timeout_ms=settings.delivery_timeout_ms,
                                      linger_ms=settings.linger_ms,
                                      max_message_bytes=settings.max_body_bytes + RECORD_HEADROOM_BYTES,
                                      extra={"batch.num.messages": settings.batch_records}, poll_in_loop=True)
        self.webhook = WebhookHandler(settings, self.producer)
        self.api: FastAPI = create_api(settings, self.producer)
        # uvicorn types its middleware with its own ASGI types; FastAPI's are the plain mappings used here.
        self._api = cast(ASGIApp, ProxyHeadersMiddleware(
            cast(Any, self.api), os.environ.get("FORWARDED_ALLOW_IPS", TRUSTED_PROXIES)))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PATH:
            await self.webhook(scope, receive, send)
        else:
            await self._api(scope, receive, send)


def create_app(settings: IngressSettings | None = None) -> WebApp:
    return WebApp(settings or IngressSettings())
