"""api.limits.BodyLimit: bodies past their path's limit are refused before (or while) they are read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from api import limits
from api.limits import ROUTE_LIMITS, BodyLimit, Message

LIMIT = 1000


class Reader:
    """An app that reads the whole body, then answers 200 with its length (or 400 if the client left)."""

    def __init__(self) -> None:
        self.called = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.called = True
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                await send({"type": "http.response.start", "status": 400, "headers": []})
                await send({"type": "http.response.body", "body": b"client gone"})
                return
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(size).encode()})


class Client:
    """Feeds a body in chunks and records what was read and what was answered."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._left = len(chunks)
        self.read = 0
        self.read_when_answered: int | None = None
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        chunk = next(self._chunks)
        self._left -= 1
        self.read += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": self._left > 0}

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.read_when_answered = self.read
        self.sent.append(message)

    @property
    def status(self) -> int:
        [start] = [m for m in self.sent if m["type"] == "http.response.start"]
        return int(start["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        [start] = [m for m in self.sent if m["type"] == "http.response.start"]
        return dict(start["headers"])


def scope(path: str = "/v1/things", length: int | str | None = None) -> dict[str, Any]:
    headers = [] if length is None else [(b"content-length", str(length).encode())]
    return {"type": "http", "method": "POST", "path": path, "headers": headers}


async def test_a_declared_length_past_the_limit_is_413_without_reading_or_calling_the_app() -> None:
    app = Reader()
    client = Client([b"x" * 10])
    await BodyLimit(app, default=LIMIT)(scope(length=LIMIT + 1), client.receive, client.send)
    assert client.status == 413 and client.read_when_answered == 0 and not app.called
    assert client.headers[b"connection"] == b"close"
    assert "at most 1000 bytes" in json.loads(client.sent[1]["body"])["detail"]


async def test_a_body_without_a_length_is_refused_as_soon_as_it_passes_the_limit() -> None:
    client = Client([b"x" * 400] * 100)  # 40 kB, sent in 400-byte chunks
    await BodyLimit(Reader(), default=LIMIT)(scope(), client.receive, client.send)
    assert client.status == 413 and client.headers[b"connection"] == b"close"
    assert client.read_when_answered == 1200  # answered as the third chunk passed 1000
    assert client.read == 40_000  # then what the client still sent was read and dropped (lingering close)
    body = [m for m in client.sent if m["type"] == "http.response.body"]
    assert [m.get("more_body", False) for m in body] == [True, False]  # the app's own answer went nowhere
    assert json.loads(body[0]["body"])["detail"] == "request body too large: at most 1000 bytes here"


async def test_lingering_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "LINGER_BYTES", 10_000)
    client = Client([b"x" * 1000] * 1000)  # 1 MB: more than the linger takes
    await BodyLimit(Reader(), default=LIMIT)(scope(), client.receive, client.send)
    assert client.status == 413 and client.read == 1000 + 1000 + 10_000


async def test_a_declared_body_too_large_to_linger_over_is_closed_on_at_once() -> None:
    client = Client([b"x" * 1000] * 10)
    await BodyLimit(Reader(), default=LIMIT)(scope(length=500 * 1024 * 1024), client.receive, client.send)
    assert client.status == 413 and client.read == 0


async def test_a_client_that_waits_for_100_continue_gets_no_lingering() -> None:
    client = Client([b"x" * 10])
    refused = scope(length=LIMIT + 1)
    refused["headers"].append((b"expect", b"100-continue"))
    await BodyLimit(Reader(), default=LIMIT)(refused, client.receive, client.send)
    assert client.status == 413 and client.read == 0


async def test_a_body_within_the_limit_reaches_the_app_whole() -> None:
    client = Client([b"x" * 500, b"y" * 500])
    await BodyLimit(Reader(), default=LIMIT)(scope(length=LIMIT), client.receive, client.send)
    assert client.status == 200 and client.sent[-1]["body"] == b"1000"


async def test_a_lying_content_length_is_still_counted() -> None:
    client = Client([b"x" * 800, b"x" * 800, b"x" * 800])
    await BodyLimit(Reader(), default=LIMIT)(scope(length=10), client.receive, client.send)
    assert client.status == 413 and client.read_when_answered == 1600


@pytest.mark.parametrize("length", ["-1", "12a", "99999999999999999999999"])
async def test_a_content_length_that_is_not_a_length_is_400(length: str) -> None:
    app = Reader()
    client = Client([b""])
    await BodyLimit(app, default=LIMIT)(scope(length=length), client.receive, client.send)
    assert client.status == 400 and not app.called


def test_paths_take_the_first_matching_route_limit_else_the_default() -> None:
    limits = BodyLimit(Reader(), default=LIMIT, routes=[("/v1/auth/", 10), ("/v1/", 20)])
    assert limits.limit("/v1/auth/login") == 10 and limits.limit("/v1/knowledge") == 20
    assert limits.limit("/console") == LIMIT
    assert BodyLimit(Reader(), default=LIMIT).limit("/v1/auth/login") == dict(ROUTE_LIMITS)["/v1/auth/"]


async def test_other_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    async def nothing() -> Message:
        return {}

    async def ignore(message: Message) -> None:
        return None

    await BodyLimit(app, default=LIMIT)({"type": "lifespan"}, nothing, ignore)
    assert seen == ["lifespan"]
