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
from ingress.metrics import METRICS
from ingress.signature import Verifier
from schemas.catalogue import WEBHOOKS_RAW
from schemas.meta_webhook import routing_key

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

PATH = "/webhooks/meta"
_JSON = [(b"content-type", b"application/json")]
_TEXT = [(b"content-type", b"text/plain; charset=utf-8")]


Answer = tuple[dict[str, Any], dict[str, Any]]  # an answer's two ASGI messages: the start and the body


def _answer(status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> Answer:
    """One answer's two ASGI messages (the fixed ones are built once: servers only read them)."""
    return ({"type": "http.response.start", "status": status,
             "headers": [*headers, (b"content-length", str(len(body)).encode())]},
            {"type": "http.response.body", "body": body})


OK = _answer(200, b'{"ok":true}', _JSON)
TOO_LARGE = _answer(413, b'{"error":"body too large"}', _JSON)
BAD_SIGNATURE = _answer(401, b'{"error":"invalid signature"}', _JSON)
NOT_JSON = _answer(400, b'{"error":"body is not JSON"}', _JSON)
NOT_OBJECT = _answer(400, b'{"error":"body is not a JSON object"}', _JSON)
UNAVAILABLE = _answer(503, b'{"error":"temporarily unavailable"}', _JSON)
NOT_ALLOWED = _answer(405, b'{"error":"method not allowed"}', _JSON)
FORBIDDEN = _answer(403, b"forbidden", _TEXT)


class WebhookHandler:
    """The ASGI callable for ``/webhooks/meta``."""

    def __init__(self, settings: IngressSettings, producer: AsyncProducer) -> None:
        self._verify_signature = Verifier([s.get_secret_value().encode() for s in settings.app_secrets])
        self._verify_token = settings.verify_token.get_secret_value().encode()
        self._max = settings.max_body_bytes
        self._topic = WEBHOOKS_RAW.full_name(settings.topic_prefix)
        self._producer = producer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if method == "POST":
            # One coroutine from the request to the answer (no helper coroutines): each frame more is paid again
            # on every resumption, and this route takes all of Meta's traffic.
            headers = dict(scope["headers"])
            length = headers.get(b"content-length")
            raw = None if length is not None and length.isdigit() and int(length) > self._max else (
                await _read_body(receive, self._max))
            answer, key = self._check(raw, headers)
            if answer is None:
                assert raw is not None  # _check accepted it
                started = time.perf_counter()
                try:
                    await self._producer.append(self._topic, raw, key)
                except DeliveryError as exc:
                    METRICS.refuse("broker_unavailable")
                    log.error("webhook not appended to %s: %s", self._topic, exc)
                    answer = UNAVAILABLE
                else:
                    METRICS.accepted(time.perf_counter() - started)
                    answer = OK
        elif method in ("GET", "HEAD"):
            challenge = self._verify(scope)
            answer = FORBIDDEN if challenge is None else _answer(200, challenge, _TEXT)
        else:
            answer = NOT_ALLOWED
        await send(answer[0])
        await send(answer[1])

    def _verify(self, scope: Scope) -> bytes | None:
        """Meta's handshake: the challenge to echo, or None when refused."""
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        mode = query.get("hub.mode", [""])[0]
        token = query.get("hub.verify_token", [""])[0].encode()
        challenge = query.get("hub.challenge", [""])[0]
        if mode == "subscribe" and hmac.compare_digest(token, self._verify_token):
            return challenge.encode()
        METRICS.refuse("verification")
        log.warning("webhook verification refused (mode=%r)", mode)
        return None

    def _check(self, raw: bytes | None, headers: dict[bytes, bytes]) -> tuple[Answer | None, str]:
        """``(None, routing key)`` for a body to append, else ``(the refusal, "")`` (counted and logged).
        ``raw`` is None when the body was over the size limit."""
        if raw is None:
            METRICS.refuse("too_large")
            return TOO_LARGE, ""
        signature = headers.get(b"x-hub-signature-256")
        if not self._verify_signature(raw, signature.decode("latin-1") if signature else None):
            METRICS.refuse("bad_signature")
            return BAD_SIGNATURE, ""
        try:
            decoded = orjson.loads(raw)
        except orjson.JSONDecodeError:
            METRICS.refuse("not_json")
            log.warning("signed webhook body is not JSON (%d bytes)", len(raw))
            return NOT_JSON, ""
        if not isinstance(decoded, dict):
            METRICS.refuse("not_json")
            log.warning("signed webhook body is not a JSON object")
            return NOT_OBJECT, ""
        return None, routing_key(decoded)


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it is over ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
