"""metasim.poster: the webhook sender's keep-alive HTTP/1.1 client against a scripted raw TCP server."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from metasim.poster import PostFailed, StreamPoster

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
Answer = Callable[[int, bytes], bytes | None]  # (request number, request) -> raw answer; None: close unanswered


@dataclass
class Server:
    """Reads each request (head and Content-Length body) and writes what ``answer`` returns for it."""

    answer: Answer
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    close_after_each: bool = False
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                answer = self.answer(len(self.requests), request)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                if self.close_after_each:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open_now -= 1
            writer.close()


@contextlib.asynccontextmanager
async def serving(answer: Answer, *, close_after_each: bool = False) -> AsyncIterator[Server]:
    server = Server(answer, close_after_each=close_after_each)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    async with listener:
        yield server


def url(server: Server) -> str:
    return f"http://127.0.0.1:{server.port}/webhooks/meta?x=1"


async def test_posts_over_one_kept_alive_connection_with_the_exact_bytes() -> None:
    async with serving(lambda _n, _r: OK) as server:
        poster = StreamPoster(url(server), connections=4)
        for i in range(5):
            assert await poster.post(b'{"n":%d}' % i, {"X-Hub-Signature-256": "sha256=ab"}, 5) == 200
        await poster.close()
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"POST /webhooks/meta?x=1 HTTP/1.1\r\n")
    assert b"\r\nX-Hub-Signature-256: sha256=ab\r\n" in first and first.endswith(b'\r\n\r\n{"n":0}')


async def test_status_codes_chunked_bodies_and_close_delimited_answers() -> None:
    answers = {1: b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
               2: b"HTTP/1.1 204 No Content\r\n\r\n",
               3: b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
               4: b"HTTP/1.0 200 OK\r\n\r\nbody until the close"}
    async with serving(lambda n, _r: answers.get(n, OK)) as server:
        poster = StreamPoster(url(server), connections=1)
        assert [await poster.post(b"{}", {}, 5) for _ in range(5)] == [503, 204, 200, 200, 200]
        await poster.close()
    assert server.connections == 3  # after the Connection: close and after the HTTP/1.0 answer


async def test_a_connection_the_receiver_closed_while_idle_is_replaced_without_a_failure() -> None:
    async with serving(lambda _n, _r: OK, close_after_each=True) as server:
        poster = StreamPoster(url(server), connections=1)
        for _ in range(3):
            assert await poster.post(b"{}", {}, 5) == 200
            await asyncio.sleep(0.05)  # the close reaches the idle connection
        for _ in range(3):  # back to back: the close may arrive only once the next request was written
            assert await poster.post(b"{}", {}, 5) == 200
        await poster.close()
    assert len(server.requests) == 6


async def test_an_unanswered_request_fails_after_one_fresh_attempt() -> None:
    async with serving(lambda _n, _r: None) as server:
        poster = StreamPoster(url(server), connections=1)
        with pytest.raises(PostFailed):
            await poster.post(b"{}", {}, 5)
        await poster.close()
    assert len(server.requests) == 1  # a new connection's failure is not retried


async def test_refused_garbled_and_timed_out_posts_fail() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        refused = StreamPoster(f"http://127.0.0.1:{unused.getsockname()[1]}/", connections=1)
        with pytest.raises(PostFailed):
            await refused.post(b"{}", {}, 5)
    async with serving(lambda _n, _r: b"SSH-2.0-nope\r\n\r\n") as garbled:
        with pytest.raises(PostFailed):
            await StreamPoster(url(garbled), connections=1).post(b"{}", {}, 5)
    hung = asyncio.Event()

    async def never_answer(_reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
        await hung.wait()

    listener = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    async with listener:
        slow = StreamPoster(f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}/", connections=1)
        with pytest.raises(PostFailed, match="timed out"):
            await slow.post(b"{}", {}, 0.2)
        hung.set()


async def test_concurrent_posts_share_at_most_the_given_connections() -> None:
    async with serving(lambda _n, _r: OK) as server:
        poster = StreamPoster(url(server), connections=3)
        codes = await asyncio.gather(*(poster.post(b"{}", {}, 5) for _ in range(40)))
        await poster.close()
    assert codes == [200] * 40 and server.most_open <= 3 and len(server.requests) == 40


def test_only_http_urls() -> None:
    with pytest.raises(ValueError, match="not an http"):
        StreamPoster("ftp://example.test/", connections=1)
