"""``GET /v1/live``: the console's live feed as Server-Sent Events.

Why SSE: the feed is one-way (server → browser); ``EventSource`` reconnects by itself and sends the last
event's id back as ``Last-Event-ID``; it is plain HTTP through the same FastAPI server, cookie and CSP
(``connect-src 'self'``), with no second protocol to proxy or secure.

Who: the console session cookie, or a bearer token (a user's session token, or an API key, which acts as
its tenant's admin like everywhere on ``/v1``); 401 without. A stream carries only its tenant's events;
agents get everything of their tenant's conversations and presence but not ``campaign`` events.

Resume: each event's ``id`` is a cursor (``api.live.cursor``) valid in every web process. A stream opened
with ``Last-Event-ID`` (header, or ``?last_event_id=``) sends exactly the events after it: from the ring of
recent events, and when the cursor is older than the ring, the gap read from Kafka (``api.live.gap``,
bounded); past those bounds, or for a cursor that is not one of ours, it sends a ``reset`` event (the page
reloads its state) and goes on from now. A new stream starts now: its first frame is an ``id`` line with the
feed's position, so even a quiet stream resumes exactly. Heartbeats (``: ping`` and the position) come every
15 s.

Limits: ``live_max_connections`` streams per process (503 past it) and ``live_max_per_tenant`` per tenant
(429); a browser with ``live_queue_events`` events waiting is cut off (it reconnects and resumes). The
credential is checked again every ``RECHECK_S``: a revoked or expired session or key ends its stream then; and a
stream ends after ``MAX_STREAM_S`` at the latest. Each stream's rechecks start at a random point of the period
(streams opened together do not query the database together, on the loop the webhooks share), and the streams
of one credential share one answer for ``SHARE_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, cast

from fastapi import APIRouter, Header, HTTPException, Query, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from api.auth import TenantDep, authenticated, credential_of
from api.live.fanout import Client, Entry, frame
from api.live.gap import GapTooLong, read_gap
from api.live.hub import LiveFull, LiveHub, payload
from config.settings import IngressSettings

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["live"])

MAX_STREAM_S = 3600.0
RECHECK_S = 30.0  # how long a revoked session's open stream may outlive the revocation
SHARE_S = 5.0  # a credential's answer (or its check under way) serves its other streams this long
RETRY_MS = 2000
COALESCE = 64  # frames written in one send when a browser has several waiting
HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-store"),
           (b"x-accel-buffering", b"no")]


def hub_of(request: Request) -> LiveHub:
    """The process's feed (kept on ``app.state``; created on first use, stopped by the lifespan)."""
    state = request.app.state
    if getattr(state, "live_hub", None) is None:
        state.live_hub = LiveHub(cast(IngressSettings, state.settings))
    return cast(LiveHub, state.live_hub)


def reset_frame(hub: LiveHub, reason: str) -> bytes:
    assert hub.layout is not None
    at = datetime.now(UTC).isoformat(timespec="milliseconds")
    return frame(hub.layout.encode(hub.position), payload("reset", at, None, {"reason": reason}))


class EventStream(Response):
    """How the API reference describes the answer: ``text/event-stream``, not JSON."""

    media_type = "text/event-stream"


@router.get("/live", response_class=EventStream, responses={
                                200: {"description": "the event stream", "content": {"text/event-stream": {
                                    "example": 'id: 0-2041-1\nevent: message.in\ndata: {"id": "0-2041-1", '
                                               '"type": "message.in", "at": "2026-12-01T09:14:03.120Z", '
                                               '"conversation_key": "106540352242922:15551234567", "data": '
                                               '{"wamid": "wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI5QTND", '
                                               '"wa_id": "15551234567", "text": "Hi"}}\n\n'}}},
                                401: {"description": "no or bad credentials"},
                                429: {"description": "too many live streams for this tenant"},
                                503: {"description": "the feed is not available, or this server is full"}})
async def live(request: Request, principal: TenantDep,
               last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=1024)] = None,
               last_event_query: Annotated[str | None, Query(alias="last_event_id", max_length=1024)] = None,
               ) -> Response:
    """The tenant's live events as ``text/event-stream`` (see the module docstring for the contract)."""
    hub = hub_of(request)
    if not await hub.started():
        raise HTTPException(503, "the live feed is not available yet; retry shortly", headers={"Retry-After": "2"})
    assert hub.layout is not None and hub.ring is not None
    cursor = last_event_id or last_event_query
    start = hub.layout.decode(cursor) if cursor else None
    preface = [f"retry: {RETRY_MS}\n".encode()]
    if cursor and start is None:
        preface.append(reset_frame(hub, "the cursor is not valid here"))
    try:
        client = hub.register(principal.tenant_id, principal.role, start)
    except LiveFull as full:
        raise HTTPException(full.status, full.detail, headers={"Retry-After": "5"}) from None
    if start is None:
        preface.append(b"id: " + hub.layout.encode(client.pos).encode() + b"\n\n")
    stream = LiveStream(hub, client, preface, start)
    token = credential_of(request)
    if token is not None:
        checks = checks_of(request)
        stream.recheck = lambda: checks.check(token, lambda: authenticated(request.app.state.engine, token))
    return stream


class SharedChecks:
    """Credential rechecks shared by the streams of one credential: one database query per ``SHARE_S``."""

    def __init__(self) -> None:
        self.recent: dict[str, tuple[float, asyncio.Future[bool]]] = {}  # at most one per open stream's credential

    def check(self, token: str, query: Callable[[], Awaitable[bool]]) -> Awaitable[bool]:
        now = time.monotonic()
        for old in [t for t, (at, _) in self.recent.items() if now - at >= SHARE_S]:
            del self.recent[old]
        if token not in self.recent:
            self.recent[token] = (now, asyncio.ensure_future(query()))
        return asyncio.shield(self.recent[token][1])


def checks_of(request: Request) -> SharedChecks:
    state = request.app.state
    if getattr(state, "live_checks", None) is None:
        state.live_checks = SharedChecks()
    return cast(SharedChecks, state.live_checks)


class LiveStream(Response):
    """The open stream: a writer task, a disconnect watcher and the cut-off signal; the first to end ends it."""

    def __init__(self, hub: LiveHub, client: Client, preface: list[bytes], start: tuple[int, ...] | None) -> None:
        super().__init__(status_code=200)
        self.hub, self.client, self.preface, self.start = hub, client, preface, start
        self.recheck: Callable[[], Awaitable[bool]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tasks: list[asyncio.Task[object]] = []
        try:
            await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
            tasks = [asyncio.create_task(self._write(send)), asyncio.create_task(_disconnected(receive)),
                     asyncio.create_task(self.client.cut.wait())]
            if self.recheck is not None:
                tasks.append(asyncio.create_task(_still_valid(self.recheck, self.client)))
            expiry = asyncio.get_running_loop().call_later(MAX_STREAM_S, self.client.close, "the stream's time is up")
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                expiry.cancel()
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    log.warning("live stream failed: %r", task.exception())
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task
            self.hub.unregister(self.client)
            if self.client.cut_reason:
                log.info("live stream of tenant %s cut: %s", self.client.tenant_id, self.client.cut_reason)

    async def _write(self, send: Send) -> None:
        client, hub = self.client, self.hub
        assert hub.ring is not None and hub.layout is not None
        layout = hub.layout
        replay: list[Entry] = []
        parts = list(self.preface)
        if self.start is not None:
            ring_floor = tuple(hub.ring.floor)
            replay = hub.ring.since(client, self.start)  # taken with the floor, in one go: nothing in between
            if not hub.ring.covers(self.start):
                try:
                    async with hub.gap_reads:
                        gap = await asyncio.get_running_loop().run_in_executor(
                            None, read_gap, hub.settings, layout, client, self.start, ring_floor)
                except GapTooLong as exc:
                    parts.append(reset_frame(hub, str(exc)))
                    client.skip_to(hub.position)
                    replay, gap = [], []
                parts.extend(e.frame for e in gap)
                client.skip_to(ring_floor)
        await send({"type": "http.response.body", "body": b"".join(parts), "more_body": True})
        for i in range(0, len(replay), COALESCE):
            chunk = [f for f in (client.render(e) for e in replay[i:i + COALESCE]) if f is not None]
            if chunk:
                await send({"type": "http.response.body", "body": b"".join(chunk), "more_body": True})
        queue = client.queue
        while True:
            items = [await queue.get()]
            while len(items) < COALESCE and not queue.empty():
                items.append(queue.get_nowait())
            chunk = [f for f in (client.render(item) for item in items) if f is not None]
            if chunk:
                await send({"type": "http.response.body", "body": b"".join(chunk), "more_body": True})


async def _still_valid(recheck: Callable[[], Awaitable[bool]], client: Client) -> None:
    """Return (ending the stream) once the stream's credential no longer authenticates."""
    period = max(0.0, RECHECK_S - SHARE_S)  # a shared answer is at most SHARE_S old: revoked ends ≤ RECHECK_S
    await asyncio.sleep(period * random.random())  # noqa: S311 - spreads the streams' queries, not a secret
    while True:
        await asyncio.sleep(period)
        if not await recheck():
            client.close("the session ended")
            return


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
