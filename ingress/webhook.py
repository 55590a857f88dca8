"""``GET/POST /webhooks/meta``: the hot path, written as a bare ASGI handler.

POST: size limit (413) → signature over the raw bytes (401) → JSON (400) → append the raw
bytes to ``wa.webhooks.raw`` keyed by the routing key, and answer 200 only after the broker
acknowledged (503 otherwise, so Meta retries). Nothing is produced for a refused request.
GET: Meta's verification handshake.

It bypasses FastAPI's routing and validation on purpose: this route takes all of Meta's
traffic (about 4x the messages sent) and must stay cheap.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

import orjson

from broker.producer import AsyncProducer, DeliveryError
from config.settings import IngressSettings
from ingress.metrics import ACCEPTED, APPEND_SECONDS, REFUSED
from ingress.signature import verify
from schemas.catalogue import WEBHOOKS_RAW
from schemas.meta_webhook import routing_key

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

PATH = "/webhooks/meta"
_JSON = [(b"content-type", b"application/json")]
_TEXT = [(b"content-type", b"text/plain; charset=utf-8")]


class BodyTooLarge(Exception):
    """The request body exceeds the configured maximum."""


class WebhookHandler:
    """The ASGI callable for ``/webhooks/meta``."""

    def __init__(self, settings: IngressSettings, producer: AsyncProducer) -> None:
        self._secrets = [s.get_secret_value().encode() for s in settings.app_secrets]
        self._verify_token = settings.verify_token.get_secret_value().encode()
        self._max = settings.max_body_bytes
        self._topic = WEBHOOKS_RAW.full_name(settings.topic_prefix)
        self._producer = producer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if method == "POST":
            status, body = await self._post(scope, receive)
            await _respond(send, status, body, _JSON)
        elif method in ("GET", "HEAD"):
            status, text = self._verify(scope)
            await _respond(send, status, text, _TEXT)
        else:
            await _respond(send, 405, b'{"error":"method not allowed"}', _JSON)

    def _verify(self, scope: Scope) -> tuple[int, bytes]:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        mode = query.get("hub.mode", [""])[0]
        token = query.get("hub.verify_token", [""])[0].encode()
        challenge = query.get("hub.challenge", [""])[0]
        if mode == "subscribe" and hmac.compare_digest(token, self._verify_token):
            return 200, challenge.encode()
        REFUSED["verification"].inc()
        log.warning("webhook verification refused (mode=%r)", mode)
        return 403, b"forbidden"

    async def _post(self, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self._max:
            REFUSED["too_large"].inc()
            return 413, b'{"error":"body too large"}'
        try:
            raw = await _read_body(receive, self._max)
        except BodyTooLarge:
            REFUSED["too_large"].inc()
            return 413, b'{"error":"body too large"}'
        signature = headers.get(b"x-hub-signature-256")
        if not verify(raw, signature.decode("latin-1") if signature else None, self._secrets):
            REFUSED["bad_signature"].inc()
            return 401, b'{"error":"invalid signature"}'
        try:
            decoded = orjson.loads(raw)
        except orjson.JSONDecodeError:
            REFUSED["not_json"].inc()
            log.warning("signed webhook body is not JSON (%d bytes)", len(raw))
            return 400, b'{"error":"body is not JSON"}'
        if not isinstance(decoded, dict):
            REFUSED["not_json"].inc()
            log.warning("signed webhook body is not a JSON object")
            return 400, b'{"error":"body is not a JSON object"}'
        started = time.perf_counter()
        try:
            await self._producer.send(self._topic, raw, routing_key(decoded))
        except DeliveryError as exc:
            REFUSED["broker_unavailable"].inc()
            log.error("webhook not appended to %s: %s", self._topic, exc)
            return 503, b'{"error":"temporarily unavailable"}'
        APPEND_SECONDS.observe(time.perf_counter() - started)
        ACCEPTED.inc()
        return 200, b'{"ok":true}'


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
