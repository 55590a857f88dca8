"""The Graph client: success shapes, error mapping, transport failures, one pooled client, no token leaks.

Sends go through aiohttp to a real local server that answers with the test's handler; the other calls go
through httpx's ``MockTransport`` to the same handler.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from dispatcher import exceptions as ex
from dispatcher.graph import GraphClient, SendAccepted, _encode, _json
from stack.processes import free_port
from tests.unit._vectors import VECTORS, load

TOKEN = "EAAGsecret-token-0123456789abcdef"
BODY = {"messaging_product": "whatsapp", "to": "15550001111", "type": "text", "text": {"body": "hi"}}
SEND_RESPONSES = [p for p in sorted((VECTORS / "send-responses").glob("*.json")) if "messages" in load(p)]

Handler = Callable[[httpx.Request], httpx.Response]


@asynccontextmanager
async def client_for(handler: Handler) -> AsyncIterator[GraphClient]:
    """A client whose sends reach a local server answering with ``handler``, its other calls a mock transport."""

    async def answer(request: web.Request) -> web.Response:
        response = handler(httpx.Request(request.method, str(request.url), headers=dict(request.headers),
                                         content=await request.read()))
        headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-type")}
        return web.Response(status=response.status_code, body=response.content, headers=headers,
                            content_type=response.headers.get("content-type", "application/octet-stream"))

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with GraphClient(f"http://127.0.0.1:{port}", "v23.0", transport=httpx.MockTransport(handler)) as graph:
            yield graph
    finally:
        await runner.cleanup()


def raising(exc: type[httpx.TransportError], text: str = "boom") -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc(text, request=request)
    return handler


async def test_send_vectors_parse() -> None:
    assert len(SEND_RESPONSES) >= 40
    for path in SEND_RESPONSES:
        raw = load(path)

        def handler(_request: httpx.Request, raw: dict[str, Any] = raw) -> httpx.Response:
            return httpx.Response(200, json=raw)

        async with client_for(handler) as graph:
            accepted = await graph.send_message("106540352242922", TOKEN, BODY)
        assert accepted == SendAccepted(wamid=raw["messages"][0]["id"], message_status="accepted",
                                        wa_id=raw["contacts"][0]["wa_id"].strip())


async def test_request_shape_and_message_status() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        message = {"id": "wamid.X", "message_status": "held_for_quality_assessment"}
        return httpx.Response(200, json={"messaging_product": "whatsapp", "messages": [message]})

    async with client_for(handler) as graph:
        accepted = await graph.send_message("106540352242922", TOKEN, BODY)
    assert accepted == SendAccepted("wamid.X", "held_for_quality_assessment", None)
    request = seen[0]
    assert request.method == "POST"
    assert request.url.path == "/v23.0/106540352242922/messages"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == BODY


SEND_REQUESTS = sorted((VECTORS / "send-requests").glob("*.json"))


@pytest.mark.parametrize("path", SEND_REQUESTS, ids=lambda p: p.name)
def test_send_bodies_encode_as_compact_utf8_json(path: Path) -> None:
    """The bytes on the wire are what ``json.dumps(ensure_ascii=False, separators=(",", ":"))`` wrote before."""
    body = load(path)
    assert _encode(body) == json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def test_encode_keeps_what_orjson_refuses_and_text_it_must_escape() -> None:
    body = {"text": {"body": "na\u00efve \u2014 \"quoted\" \\ \n\t\u0001 \U0001f600"}, "n": 2 ** 70, "f": 0.1}
    assert json.loads(_encode(body)) == body  # 2**70: beyond orjson's integers, written by json
    assert _encode({1: "x"}) == b'{"1":"x"}'  # a key that is not a string, as json wrote it
    assert _encode({"t": "\u00e9\n"}) == '{"t":"\u00e9\\n"}'.encode()


def test_answers_parse_and_what_is_not_json_is_none() -> None:
    assert _json(b'{"messages":[{"id":"wamid.X"}]}') == {"messages": [{"id": "wamid.X"}]}
    assert _json(b'{"v": NaN}')["v"] != _json(b'{"v": NaN}')["v"]  # json's reading, which orjson refuses
    assert _json(b"<html>bad gateway</html>") is None
    assert _json(b"\xff\xfe") is None


@pytest.mark.parametrize("path", sorted((VECTORS / "errors").glob("*.json")), ids=lambda p: p.name)
async def test_error_vectors_raise_graph_errors(path: Path) -> None:
    status = int(path.name.split("-")[1]) if path.name.startswith("openapi-") else 401
    raw = load(path)
    async with client_for(lambda _req: httpx.Response(status, json=raw)) as graph:
        with pytest.raises(ex.GraphError) as info:
            await graph.send_message("1", TOKEN, BODY)
    assert info.value.code == raw["error"]["code"]
    assert info.value.http_status == status
    assert type(info.value) is type(ex.GraphError.from_response(status, raw))


async def test_throttling_error_with_retry_after_header() -> None:
    body = {"error": {"message": "(#130429) Rate limit hit", "code": 130429, "fbtrace_id": "Az8"}}
    async with client_for(lambda _req: httpx.Response(400, json=body, headers={"Retry-After": "3"})) as graph:
        with pytest.raises(ex.ThroughputExceededError) as info:
            await graph.send_message("1", TOKEN, BODY)
    assert info.value.retry_after == 3.0 and info.value.slows_lane and info.value.fbtrace_id == "Az8"


async def test_business_usage_header_gives_retry_after() -> None:
    usage = json.dumps({"104996122399160": [{"type": "whatsapp", "call_count": 100,
                                             "estimated_time_to_regain_access": 2}]})
    body = {"error": {"message": "Business request limit reached", "code": 80007}}
    async with client_for(lambda _req: httpx.Response(400, json=body,
                                                      headers={"x-business-use-case-usage": usage})) as graph:
        with pytest.raises(ex.BusinessRateLimitError) as info:
            await graph.call("GET", "104996122399160/phone_numbers", TOKEN)
    assert info.value.retry_after == 120.0


@pytest.mark.parametrize(("status", "cls"), [(502, ex.UnexpectedResponse), (500, ex.UnexpectedResponse),
                                             (503, ex.UnexpectedResponse), (429, ex.TransportError),
                                             (404, ex.RequestRejected), (200, ex.UnexpectedResponse)])
async def test_non_graph_answers(status: int, cls: type[ex.DispatchError]) -> None:
    html = b"<html><body>Bad Gateway</body></html>"
    async with client_for(lambda _req: httpx.Response(status, content=html)) as graph:
        with pytest.raises(cls) as info:
            await graph.send_message("1", TOKEN, BODY)
    assert type(info.value) is cls and info.value.http_status == status
    assert info.value.is_transient is (status != 404)


async def test_success_without_wamid_is_ambiguous() -> None:
    async with client_for(lambda _req: httpx.Response(200, json={"messages": []})) as graph:
        with pytest.raises(ex.UnexpectedResponse):
            await graph.send_message("1", TOKEN, BODY)


@pytest.mark.parametrize(("raised", "cls"), [
    (httpx.ConnectError, ex.TransportError), (httpx.ConnectTimeout, ex.TransportError),
    (httpx.PoolTimeout, ex.TransportError), (httpx.ReadTimeout, ex.AmbiguousOutcome),
    (httpx.WriteTimeout, ex.AmbiguousOutcome), (httpx.ReadError, ex.AmbiguousOutcome),
    (httpx.WriteError, ex.AmbiguousOutcome), (httpx.RemoteProtocolError, ex.AmbiguousOutcome),
    (httpx.LocalProtocolError, ex.RequestRejected),
])
async def test_transport_failures(raised: type[httpx.TransportError], cls: type[ex.DispatchError]) -> None:
    async with client_for(raising(raised)) as graph:
        with pytest.raises(cls) as info:
            await graph.call("POST", "1/subscribed_apps", TOKEN)
    assert type(info.value) is cls
    assert isinstance(info.value.__cause__, raised)


async def test_token_and_query_never_in_messages_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # a CLI test before this one may have quietened httpx
    async with client_for(raising(httpx.ConnectError, f"refused while sending {TOKEN}")) as graph:
        with pytest.raises(ex.TransportError) as info:
            await graph.call("GET", "oauth/access_token", TOKEN, params={"client_secret": "s3cr3t-app"})
    for text in (str(info.value), ex.human_reason(info.value), repr(info.value.args)):
        assert TOKEN not in text and "s3cr3t-app" not in text
    body = {"error": {"message": f"Invalid token {TOKEN[:6]}", "code": 190}}
    async with client_for(lambda _req: httpx.Response(401, json=body)) as graph:
        with pytest.raises(ex.AuthorizationError) as auth:
            await graph.call("GET", "debug_token", TOKEN, params={"input_token": TOKEN})
    assert auth.value.needs_reauth and TOKEN not in str(auth.value)
    assert all(TOKEN not in r.getMessage() and "s3cr3t" not in r.getMessage() for r in caplog.records)
    assert any("debug_token?***" in r.getMessage() for r in caplog.records if r.name == "httpx")


async def test_call_with_params_and_no_token() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"access_token": "x", "token_type": "bearer"})

    async with client_for(handler) as graph:
        data = await graph.call("GET", "/oauth/access_token", None, params={"code": "abc", "client_id": "42"})
    assert data["token_type"] == "bearer"
    assert seen[0].url.path == "/v23.0/oauth/access_token"
    assert dict(seen[0].url.params) == {"code": "abc", "client_id": "42"}
    assert "authorization" not in seen[0].headers


async def test_aclose() -> None:
    async with client_for(lambda _req: httpx.Response(200, json={"messages": [{"id": "wamid.A"}]})) as graph:
        await graph.send_message("1", TOKEN, BODY)
        assert not graph.closed
        await graph.aclose()
        assert graph.closed


# -- Against a real socket: keep-alive reuse and real timeouts ---------------------------------------------------
class TinyServer:
    """A minimal HTTP/1.1 keep-alive server that counts connections; ``silent`` never answers, ``hang_up`` closes
    the connection once the request is read, ``garbage`` answers with bytes that are not HTTP."""

    def __init__(self, *, silent: bool = False, hang_up: bool = False, garbage: bool = False) -> None:
        self.silent = silent
        self.hang_up = hang_up
        self.garbage = garbage
        self.connections = 0
        self.requests = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                await reader.readexactly(length)
                self.requests += 1
                if self.silent:
                    await asyncio.sleep(30)
                if self.hang_up:
                    break
                if self.garbage:
                    writer.write(b"\x16\x03\x01 this is not HTTP\r\n\r\n")
                    await writer.drain()
                    break
                payload = json.dumps({"messages": [{"id": f"wamid.{self.requests}"}]}).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             + f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


async def serve(app: TinyServer) -> AsyncIterator[str]:
    server = await asyncio.start_server(app.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


async def test_one_pooled_connection_is_reused() -> None:
    app = TinyServer()
    async for url in serve(app):
        async with GraphClient(url, "v23.0") as graph:
            wamids = [(await graph.send_message("1", TOKEN, BODY)).wamid for _ in range(5)]
    assert wamids == [f"wamid.{i}" for i in range(1, 6)]
    assert (app.requests, app.connections) == (5, 1)


async def test_real_read_timeout_is_ambiguous() -> None:
    app = TinyServer(silent=True)
    async for url in serve(app):
        async with GraphClient(url, "v23.0", read_timeout=0.2) as graph:
            with pytest.raises(ex.AmbiguousOutcome):
                await graph.send_message("1", TOKEN, BODY)
    assert app.requests == 1  # the request had arrived: the outcome really is unknown


async def test_real_connection_refused_is_not_sent() -> None:
    async with GraphClient(f"http://127.0.0.1:{free_port()}", "v23.0") as graph:
        with pytest.raises(ex.TransportError) as info:
            await graph.send_message("1", TOKEN, BODY)
    assert not isinstance(info.value, ex.AmbiguousOutcome)


@pytest.mark.parametrize("mode", ["hang_up", "garbage"])
async def test_real_broken_answer_after_the_request_is_ambiguous(mode: str) -> None:
    app = TinyServer(**{mode: True})
    async for url in serve(app):
        async with GraphClient(url, "v23.0") as graph:
            with pytest.raises(ex.AmbiguousOutcome) as info:
                await graph.send_message("1", TOKEN, BODY)
    assert app.requests == 1 and TOKEN not in str(info.value)


async def test_token_with_a_newline_is_refused_before_sending() -> None:
    app = TinyServer()
    async for url in serve(app):
        async with GraphClient(url, "v23.0") as graph:
            with pytest.raises(ex.RequestRejected) as info:
                await graph.send_message("1", "abc\r\nX-Injected: 1", BODY)
    assert app.requests == 0 and "X-Injected" not in str(info.value)
