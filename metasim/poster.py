"""The webhook sender's HTTP client: keep-alive HTTP/1.1 POSTs to one URL over a few pooled connections.

httpx spent about 1.5 ms of CPU per POST in the simulator (more than the rest of a send); the simulator
posts to one URL only, so a bare client over asyncio streams does: a request is one ``write`` of the
head and body, the answer's status line and headers are read in one ``readuntil``, and its body by
``Content-Length`` (or chunks, or until close). A kept-alive connection that the receiver closed while
idle is detected and replaced; an exchange that fails on a reused connection before any answer arrived
is tried once more on a new one (the receiver never saw it, or dropped it unanswered).

``HttpxPoster`` posts through an ``httpx`` transport instead: unit tests give the app an in-memory one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Protocol
from urllib.parse import urlsplit

import httpx

HEAD_LIMIT = 64 * 1024  # a longer answer head is refused (the answers to webhooks are a few hundred bytes)
BODY_LIMIT = 1024 * 1024  # answer bodies are read and discarded; a longer one ends the connection
_Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class PostFailed(Exception):
    """No answer: refused, reset, timed out, or an answer that is not HTTP/1.1."""


class Poster(Protocol):
    async def post(self, raw: bytes, headers: dict[str, str], timeout_s: float) -> int:
        """POST ``raw`` with ``headers``; the answer's status code, or ``PostFailed``."""

    async def close(self) -> None:
        """Close the connections."""


class StreamPoster:
    """At most ``connections`` keep-alive connections to ``url`` (``http`` or ``https``)."""

    def __init__(self, url: str, *, connections: int) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl = ssl.create_default_context() if parts.scheme == "https" else None
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._head = f"POST {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: metasim\r\n".encode("latin-1")
        self._slots = asyncio.Semaphore(connections)
        self._idle: list[_Stream] = []  # at most ``connections`` (one per slot)

    async def post(self, raw: bytes, headers: dict[str, str], timeout_s: float) -> int:
        head = self._head + "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode("latin-1") \
            + b"Content-Length: %d\r\n\r\n" % len(raw)
        async with self._slots:
            try:
                async with asyncio.timeout(timeout_s):
                    return await self._exchange(head, raw)
            except TimeoutError:
                raise PostFailed("timed out") from None

    async def _exchange(self, head: bytes, raw: bytes) -> int:
        while self._idle:
            stream = self._idle.pop()
            if stream[0].at_eof() or stream[1].is_closing():
                _close(stream)
                continue
            try:
                return await self._once(stream, head, raw)
            except _Unanswered:
                break  # closed by the receiver while idle: once more on a new connection
        try:
            stream = await asyncio.open_connection(self._host, self._port, ssl=self._ssl, limit=HEAD_LIMIT)
        except OSError as exc:
            raise PostFailed(repr(exc)) from None
        try:
            return await self._once(stream, head, raw)
        except _Unanswered as exc:
            raise PostFailed(str(exc)) from None

    async def _once(self, stream: _Stream, head: bytes, raw: bytes) -> int:
        """One request and its answer on ``stream``; it goes back to the pool if the receiver keeps it open."""
        reader, writer = stream
        answered = False
        try:
            writer.write(head + raw)
            await writer.drain()
            status_and_headers = await reader.readuntil(b"\r\n\r\n")
            answered = True
            status, keep = await _read_rest(reader, status_and_headers)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            _close(stream)
            if answered:
                raise PostFailed(repr(exc)) from None
            raise _Unanswered(repr(exc)) from None
        except BaseException:  # cancelled or timed out mid-exchange: the connection's state is unknown
            _close(stream)
            raise
        if keep:
            self._idle.append(stream)
        else:
            _close(stream)
        return status

    async def close(self) -> None:
        while self._idle:
            _close(self._idle.pop())


class _Unanswered(Exception):
    """The connection failed before any byte of an answer arrived."""


async def _read_rest(reader: asyncio.StreamReader, head: bytes) -> tuple[int, bool]:
    """The status code, and whether the connection stays open, once the answer's body was read."""
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    if not version.startswith("HTTP/1."):
        raise ValueError(f"not an HTTP/1.x answer: {lines[0][:40]!r}")
    status = int(rest[:3])
    fields: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            fields[name.strip().lower()] = value.strip().lower()
    keep = "close" not in fields.get("connection", "") and version == "HTTP/1.1"
    if status < 200 or status in (204, 304):
        return status, keep
    if "chunked" in fields.get("transfer-encoding", ""):
        total = 0
        while (size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)) > 0:
            total += size
            if total > BODY_LIMIT:
                raise ValueError("answer body too long")
            await reader.readexactly(size + 2)
        while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
            pass
    elif "content-length" in fields:
        length = int(fields["content-length"])
        if length > BODY_LIMIT:
            raise ValueError("answer body too long")
        await reader.readexactly(length)
    else:  # delimited by the close
        await reader.read(BODY_LIMIT)
        keep = False
    return status, keep


def _close(stream: _Stream) -> None:
    with contextlib.suppress(Exception):
        stream[1].close()


class HttpxPoster:
    """POSTs through an ``httpx`` transport (unit tests: an in-memory one)."""

    def __init__(self, url: str, transport: httpx.AsyncBaseTransport, *, connections: int) -> None:
        self._url = url
        self._client = httpx.AsyncClient(transport=transport, limits=httpx.Limits(
            max_connections=connections, max_keepalive_connections=connections))

    async def post(self, raw: bytes, headers: dict[str, str], timeout_s: float) -> int:
        try:
            response = await self._client.post(self._url, content=raw, headers=headers, timeout=timeout_s)
        except (httpx.HTTPError, OSError) as exc:
            raise PostFailed(repr(exc)) from None
        return response.status_code

    async def close(self) -> None:
        await self._client.aclose()
