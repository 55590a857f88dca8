"""Request bodies are bounded before they are read: ``BodyLimit``, the ASGI middleware around the web app.

Each path has a limit: the first prefix of ``ROUTE_LIMITS`` it starts with, else the default
(``AEROSTIC_API_MAX_BODY_BYTES``). A request that declares a longer ``Content-Length`` is answered 413 at
once, before authentication and without reading a byte of its body. A body without a length (chunked) is
counted as the app reads it: the moment the count passes the limit the client is answered 413 and the
app sees the client gone (``http.disconnect``), so nothing past the limit is ever held in memory.

A 413 closes the connection (``Connection: close``), which stops the upload. Before closing, when what is
left of the body is unknown or small (at most ``LINGER_BYTES``), it is read and dropped for at most
``LINGER_S`` (a lingering close, as web servers do): many clients read the answer only once they have
sent their whole body, and a connection closed under their upload would lose them the 413. A client that
asked ``Expect: 100-continue`` has sent nothing and is answered at once. ``/webhooks/meta`` never reaches
this app; its own limit is in ``ingress.webhook``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

import orjson

from campaigns.audience import MAX_CSV_CHARS
from contacts.csv_import import MAX_FILE_BYTES as CSV_IMPORT_BYTES
from schemas.media import MAX_MEDIA_BYTES

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

KIB = 1024
CAMPAIGN_BYTES = 2 * MAX_CSV_CHARS  # the CSV's characters, some escaped in JSON, and the rest of the campaign
LINGER_S = 1.0
LINGER_BYTES = 4 * 1024 * KIB
# Paths whose bodies are bounded otherwise than by the default: sign-in (an email and a password) is
# reachable without any credential; contact imports take CSV files. (The console's forms cap their own bodies
# at 16 KiB and answer with the form, api.console.forms; past the default they get this module's 413.)
ROUTE_LIMITS: tuple[tuple[str, int], ...] = (
    ("/v1/auth/", 16 * KIB),
    ("/v1/contacts/imports", CSV_IMPORT_BYTES),  # a CSV, spooled to disk as it arrives (contacts.csv_import)
    ("/v1/campaigns", CAMPAIGN_BYTES),  # a campaign's CSV audience comes in its JSON body (campaigns.audience)
    ("/v1/media", MAX_MEDIA_BYTES + 64 * KIB),  # a media file (multipart, spooled to disk; api.media checks its kind)
)


class BodyLimit:
    """Wraps an ASGI app so that no request body past its path's limit is read."""

    def __init__(self, app: ASGIApp, *, default: int, routes: Sequence[tuple[str, int]] = ROUTE_LIMITS) -> None:
        self.app = app
        self.default = default
        self.routes = tuple(routes)

    def limit(self, path: str) -> int:
        """The most bytes a body sent to ``path`` may have."""
        return next((limit for prefix, limit in self.routes if path.startswith(prefix)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope["path"])
        declared = _declared_length(scope)
        if declared == -1:
            await _answer(send, 400, "Content-Length is not a valid length")
            await send({"type": "http.response.body", "body": b""})
        elif declared is not None and declared > limit:
            await _refuse(scope, receive, send, limit, left=declared)
        else:
            guard = _Guard(scope, limit, declared, receive, send)
            await self.app(scope, guard.receive, guard.send)


class _Guard:
    """Counts the body as the app reads it and answers 413 the moment it passes the limit."""

    def __init__(self, scope: Scope, limit: int, declared: int | None, receive: Receive, send: Send) -> None:
        self._scope, self._limit, self._declared = scope, limit, declared
        self._receive, self._send = receive, send
        self._seen = 0
        self._started = False
        self._refused = False

    async def receive(self) -> Message:
        if self._refused:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self._seen += len(message.get("body", b""))
            if self._seen > self._limit:
                self._refused = True
                if not self._started:
                    left = 0 if not message.get("more_body", False) else (
                        None if self._declared is None else max(self._declared - self._seen, 0))
                    await _refuse(self._scope, self._receive, self._send, self._limit, left=left)
                return {"type": "http.disconnect"}
        return message

    async def send(self, message: Message) -> None:
        if self._refused:
            return  # the client has its 413; whatever the app answers to the "disconnect" goes nowhere
        if message["type"] == "http.response.start":
            self._started = True
        await self._send(message)


def _declared_length(scope: Scope) -> int | None:
    """The request's ``Content-Length``: None without one, -1 when it is not a length."""
    values = {value for name, value in scope["headers"] if name.lower() == b"content-length"}
    if not values:
        return None
    if len(values) > 1 or not all(v.isdigit() and len(v) <= 19 for v in values):
        return -1
    return int(values.pop())


async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int, *, left: int | None) -> None:
    """Answer 413; linger while the client may still send a little (``left``: bytes still to come, if known)."""
    await _answer(send, 413, f"request body too large: at most {limit} bytes here")
    expects = any(name.lower() == b"expect" for name, _ in scope["headers"])
    if not expects and (left is None or 0 < left <= LINGER_BYTES):
        await _drain(receive)
    await send({"type": "http.response.body", "body": b""})


async def _drain(receive: Receive) -> None:
    """Read and drop what the client sends, for at most ``LINGER_S`` and ``LINGER_BYTES``."""
    dropped = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(LINGER_S):
            while dropped < LINGER_BYTES:
                message = await receive()
                dropped += len(message.get("body", b""))
                if message["type"] != "http.request" or not message.get("more_body", False):
                    return


async def _answer(send: Send, status: int, detail: str) -> None:
    """The start of an answer that closes the connection, and its whole body; the caller ends it."""
    body = orjson.dumps({"detail": detail})
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body, "more_body": True})
