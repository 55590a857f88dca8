"""metasim.callbacks: status webhooks posted to a real HTTP receiver (uvicorn on a free port).

The receiver records every POST's exact bytes and headers and answers from a script (200 by default),
so the tests check what Aerostic's ingress would see: signatures, order, duplicates, batches, retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from ingress.signature import verify
from metasim.app import create_app
from metasim.callbacks import CallbackSender, Route, WebhookSettings, billing, delivery_chain
from metasim.state import SimConfig, Simulator

SECRET = "test-app-secret"
ROUTE = Route("waba-1", "1001", "15550001001")
FAST = {"sent_delay_s": 0.0, "delivered_delay_s": 0.01, "read_delay_s": 0.01, "jitter_s": 0.0}


@dataclass
class Post:
    raw: bytes
    headers: dict[str, str]
    at: float

    @property
    def statuses(self) -> list[dict[str, Any]]:
        body = json.loads(self.raw)
        return [s for e in body["entry"] for c in e["changes"] for s in c["value"].get("statuses", [])]


@dataclass
class Receiver:
    url: str = ""
    posts: list[Post] = field(default_factory=list)
    script: list[int] = field(default_factory=list)
    always: int = 200

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.posts.append(Post(b"".join(chunks), headers, asyncio.get_running_loop().time()))
        status = self.script.pop(0) if self.script else self.always
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    def statuses(self) -> list[dict[str, Any]]:
        return [s for post in self.posts for s in post.statuses]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(rec, log_level="critical", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(500):  # uvicorn offers a flag, not an event
        if server.started:
            break
        await asyncio.sleep(0.01)
    rec.url = f"http://127.0.0.1:{sock.getsockname()[1]}/webhooks/meta"
    yield rec
    server.should_exit = True
    await task


@contextlib.asynccontextmanager
async def sender(receiver: Receiver, **settings: Any) -> AsyncIterator[CallbackSender]:
    out = CallbackSender(receiver.url, SECRET, WebhookSettings(**{**FAST, **settings}), concurrency=8, seed=1)
    out.start()
    try:
        yield out
    finally:
        await out.stop()


def queue_message(out: CallbackSender, wamid: str, *, marker: str | None = None,
                  epoch: float = 1_750_000_000.0) -> None:
    bill = billing("utility", free=False, conversation_id="c1", expires_at=1, with_conversation=True)
    out.chain(ROUTE, delivery_chain(out.settings, wamid, "15551230001", callback_data=marker, bill=bill),
              epoch=epoch)


async def settle(out: CallbackSender) -> None:
    await asyncio.wait_for(out.drain(), 5)


async def test_statuses_arrive_signed_in_order_with_pricing(receiver: Receiver) -> None:
    async with sender(receiver) as out:
        for i in range(5):
            queue_message(out, f"wamid.{i}", marker=f"m{i}")
        await settle(out)
    for post in receiver.posts:
        assert verify(post.raw, post.headers["x-hub-signature-256"], [SECRET.encode()])
        assert post.raw.isascii() and post.headers["content-type"] == "application/json"
    for i in range(5):
        mine = [s for s in receiver.statuses() if s["id"] == f"wamid.{i}"]
        assert [s["status"] for s in mine] == ["sent", "delivered", "read"]
        assert {s["biz_opaque_callback_data"] for s in mine} == {f"m{i}"}
        assert mine[0]["pricing"]["category"] == "utility" and "expiration_timestamp" in mine[0]["conversation"]
        assert "expiration_timestamp" not in mine[1]["conversation"] and "pricing" not in mine[2]


async def test_reordering_posts_read_first_with_logical_timestamps(receiver: Receiver) -> None:
    async with sender(receiver, reorder_rate=1.0, delivered_delay_s=0.55, read_delay_s=0.55) as out:
        queue_message(out, "wamid.r", epoch=1_750_000_000.9)
        await settle(out)
    statuses = receiver.statuses()
    assert [s["status"] for s in statuses] == ["read", "delivered", "sent"]
    assert [s["timestamp"] for s in statuses] == ["1750000002", "1750000001", "1750000000"]


async def test_duplicates_when_configured(receiver: Receiver) -> None:
    async with sender(receiver, duplicate_rate=1.0) as out:
        queue_message(out, "wamid.d")
        await settle(out)
        assert out.counters.duplicates == 3
    seen = [s["status"] for s in receiver.statuses()]
    assert sorted(seen) == sorted(["sent", "delivered", "read"] * 2)


async def test_batching_combines_statuses_and_numbers(receiver: Receiver) -> None:
    async with sender(receiver, batch_max=50, batch_window_s=0.2, read=False) as out:
        for i in range(10):
            queue_message(out, f"wamid.b{i}")
        out.chain(Route("waba-2", "2002", "15550002002"),
                  delivery_chain(out.settings, "wamid.other", "15551230002", callback_data=None, bill={}),
                  epoch=1_750_000_000.0)
        await settle(out)
    assert len(receiver.statuses()) == 22
    assert len(receiver.posts) <= 4
    first = json.loads(receiver.posts[0].raw)
    assert {e["id"] for e in first["entry"]} == {"waba-1", "waba-2"}
    assert len(receiver.posts[0].statuses) == 11


async def test_retries_with_backoff_until_200(receiver: Receiver) -> None:
    receiver.script = [500, 503]
    async with sender(receiver, read=False, retry_initial_s=0.05) as out:
        queue_message(out, "wamid.x")
        await settle(out)
        assert (out.counters.retried, out.counters.failed_attempts, out.counters.posted) == (2, 2, 2)
    first, second, third = receiver.posts[:3]
    assert first.raw == second.raw == third.raw, "a retry resends the same signed bytes"
    assert 0.04 <= second.at - first.at and 0.09 <= third.at - second.at
    assert [s["status"] for s in receiver.statuses()[2:]] == ["sent", "delivered"]


async def test_gives_up_after_the_horizon(receiver: Receiver) -> None:
    receiver.always = 500
    async with sender(receiver, read=False, retry_initial_s=0.02, retry_horizon_s=0.05) as out:
        queue_message(out, "wamid.lost")
        await settle(out)
        assert out.counters.abandoned == 2 and out.counters.posted == 0 and out.pending == 0


async def test_thousands_of_messages_through_a_mock_transport() -> None:
    posted: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        posted.append(request.content.count(b'"status":'))
        return httpx.Response(200)

    settings = WebhookSettings(**FAST, batch_max=200, batch_window_s=0.05)
    out = CallbackSender("http://hooks.test/", SECRET, settings, seed=2, transport=httpx.MockTransport(answer))
    out.start()
    for i in range(3000):
        queue_message(out, f"wamid.{i}")
    await asyncio.wait_for(out.drain(), 10)
    await out.stop()
    assert sum(posted) == 9000 and out.counters.statuses == 9000


async def test_app_posts_customer_messages_and_statuses_signed(receiver: Receiver) -> None:
    config = SimConfig(callback_url=receiver.url, app_secret=SECRET, webhooks=FAST)
    app = create_app(config)
    sim: Simulator = app.state.sim
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://graph.test") as client:
        await client.post("/_sim/numbers", json={"phone_number_id": "1001", "waba_id": "waba-1", "token": "t"})
        reply = await client.post("/_sim/customers/messages",
                                  json={"phone_number_id": "1001", "from": "15551230001", "name": "Zoë", "text": "hé"})
        assert reply.json()["delivered"] is True
        sent = await client.post("/v24.0/1001/messages", headers={"Authorization": "Bearer t"},
                                 json={"messaging_product": "whatsapp", "to": "15551230001", "type": "text",
                                       "text": {"body": "hi"}, "biz_opaque_callback_data": "mk"})
        await asyncio.wait_for(sim.webhooks.drain(), 5)
    inbound = receiver.posts[0]
    assert b"Zo\\u00eb" in inbound.raw and verify(inbound.raw, inbound.headers["x-hub-signature-256"],
                                                   [SECRET.encode()])
    statuses = receiver.statuses()
    assert [s["id"] for s in statuses] == [sent.json()["messages"][0]["id"]] * 3
    assert statuses[0]["pricing"]["type"] == "free_customer_service"
    assert all("conversation" not in s for s in statuses), "v24.0+ omits conversation objects"
