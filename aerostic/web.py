"""The one web server: Meta's webhook hot path beside the tenant API and console.

``/webhooks/meta`` goes straight to ``ingress.webhook.WebhookHandler`` (no framework on the
hot path); every other path, and the lifespan, go to the FastAPI app of ``api.app``. Both
share one Kafka producer. They are two process packages that never import each other; this
module, at the roof, is where they are served together.
"""

from __future__ import annotations

from fastapi import FastAPI

from api.app import create_api
from broker.producer import AsyncProducer
from config.settings import IngressSettings
from ingress.webhook import PATH, Receive, Scope, Send, WebhookHandler
from schemas.catalogue import RECORD_HEADROOM_BYTES


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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PATH:
            await self.webhook(scope, receive, send)
        else:
            await self.api(scope, receive, send)


def create_app(settings: IngressSettings | None = None) -> WebApp:
    return WebApp(settings or IngressSettings())
