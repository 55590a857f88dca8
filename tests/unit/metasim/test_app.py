"""metasim.app: the simulated Graph send endpoint and the /_sim admin API, in-process.

The Graph API is called over ``httpx.ASGITransport``; webhooks go to an ``httpx.MockTransport`` that
records them. Dropped and hung connections need a real server, so those two tests run uvicorn.
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
from fastapi import FastAPI

from metasim.app import create_app
from metasim.state import SimConfig, Simulator

NUMBER, WABA, TOKEN, CUSTOMER = "1001", "waba-1", "tok-1", "15551230001"
INSTANT = {"sent_delay_s": 0, "delivered_delay_s": 0, "read_delay_s": 0, "jitter_s": 0}


class Clock:
    """A hand-driven clock: every request in a test happens at the same instant unless advanced."""

    def __init__(self, at: float = 1_750_000_000.25) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


@dataclass
class Harness:
    app: FastAPI
    client: httpx.AsyncClient
    clock: Clock
    hooks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def sim(self) -> Simulator:
        sim: Simulator = self.app.state.sim
        return sim

    async def send(self, body: dict[str, Any], *, token: str | None = TOKEN, number: str = NUMBER,
                   version: str = "v23.0") -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.client.post(f"/{version}/{number}/messages", json=body, headers=headers)

    async def customer_writes(self, wa_id: str = CUSTOMER, **extra: Any) -> httpx.Response:
        return await self.client.post("/_sim/customers/messages",
                                      json={"phone_number_id": NUMBER, "from": wa_id, "text": "hi", **extra})

    async def statuses(self) -> list[dict[str, Any]]:
        await asyncio.wait_for(self.sim.webhooks.drain(), 5)
        return [s for body in self.hooks for e in body["entry"] for c in e["changes"]
                for s in c["value"].get("statuses", [])]


def text(to: str = CUSTOMER, marker: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": "hello"}}
    if marker is not None:
        body["biz_opaque_callback_data"] = marker
    return body


def template(name: str = "order_update", params: int = 1, to: str = CUSTOMER) -> dict[str, Any]:
    parameters = [{"type": "text", "text": f"p{i}"} for i in range(params)]
    return {"messaging_product": "whatsapp", "to": to, "type": "template",
            "template": {"name": name, "language": {"code": "en_US"},
                         "components": [{"type": "body", "parameters": parameters}]}}


@contextlib.asynccontextmanager
async def harness(throughput: int = 80, **config: Any) -> AsyncIterator[Harness]:
    hooks: list[dict[str, Any]] = []

    def receive(request: httpx.Request) -> httpx.Response:
        hooks.append(json.loads(request.content))
        return httpx.Response(200)

    clock = Clock()
    config.setdefault("webhooks", INSTANT)
    app = create_app(SimConfig(**config), clock=clock, transport=httpx.MockTransport(receive))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://graph.test") as client:
        h = Harness(app, client, clock, hooks)
        await client.post("/_sim/numbers", json={"phone_number_id": NUMBER, "waba_id": WABA, "business_id": "biz-1",
                                                 "display_phone_number": "15550001001", "token": TOKEN,
                                                 "throughput": throughput})
        await client.post("/_sim/templates", json={"waba_id": WABA, "name": "order_update", "language": "en_US",
                                                   "parameters": {"body": 1}})
        yield h


def error_code(response: httpx.Response) -> int:
    code: int = response.json()["error"]["code"]
    return code


async def test_text_in_window_is_accepted_with_metas_shape() -> None:
    async with harness() as h:
        await h.customer_writes()
        response = await h.send(text(to="+1 555-123-0001"))
        assert response.status_code == 200
        body = response.json()
        assert body["messaging_product"] == "whatsapp"
        assert body["contacts"] == [{"input": "+1 555-123-0001", "wa_id": CUSTOMER}]
        [message] = body["messages"]
        assert message["id"].startswith("wamid.") and message["message_status"] == "accepted"
        assert [s["status"] for s in await h.statuses()] == ["sent", "delivered", "read"]


@pytest.mark.parametrize("token", [None, "nope"])
async def test_missing_or_unknown_token_is_190_401(token: str | None) -> None:
    async with harness() as h:
        response = await h.send(text(), token=token)
        assert response.status_code == 401 and error_code(response) == 190
        assert response.json()["error"]["type"] == "OAuthException"


async def test_revoked_token_and_foreign_waba_are_190() -> None:
    async with harness() as h:
        await h.client.post("/_sim/tokens", json={"token": "other", "waba_id": "waba-2"})
        assert error_code(await h.send(text(), token="other")) == 190
        assert (await h.client.post("/_sim/tokens/revoke", json={"token": TOKEN})).status_code == 200
        response = await h.send(text())
        assert response.status_code == 401 and error_code(response) == 190


async def test_unknown_number_is_100() -> None:
    async with harness() as h:
        response = await h.send(text(), number="999")
        assert response.status_code == 400 and error_code(response) == 100
        assert "Object with ID '999' does not exist" in response.json()["error"]["message"]


@pytest.mark.parametrize("body", [b"{not json", b'{"messaging_product":"whatsapp","type":"text","text":{}}'])
async def test_malformed_body_is_100(body: bytes) -> None:
    async with harness() as h:
        response = await h.client.post(f"/v23.0/{NUMBER}/messages", content=body,
                                       headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 400 and error_code(response) == 100
        assert response.json()["error"]["error_data"]["details"]


async def test_mark_as_read_succeeds_without_limits() -> None:
    async with harness() as h:
        response = await h.send({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.X",
                                 "typing_indicator": {"type": "text"}})
        assert response.json() == {"success": True}


@pytest.mark.parametrize("version", ["v18.0", "v23.0", "v26.0"])
async def test_versions_are_accepted(version: str) -> None:
    async with harness() as h:
        assert (await h.send(template(), version=version)).status_code == 200
        assert error_code(await h.send(template(), version="latest")) == 100


async def test_templates_unknown_unapproved_and_wrong_parameter_count() -> None:
    async with harness() as h:
        await h.client.post("/_sim/templates", json={"waba_id": WABA, "name": "draft", "language": "en_US",
                                                     "status": "PENDING"})
        assert error_code(await h.send(template(name="missing"))) == 132001
        assert error_code(await h.send(template(name="draft", params=0))) == 132001
        wrong = await h.send(template(params=2))
        assert wrong.status_code == 400 and error_code(wrong) == 132000
        assert (await h.send(template(params=1))).status_code == 200


async def test_free_form_outside_window_fails_by_status() -> None:
    async with harness() as h:
        response = await h.send(text(marker="m-1"))
        assert response.status_code == 200
        [failed] = await h.statuses()
        assert failed["status"] == "failed" and failed["errors"][0]["code"] == 131047
        assert failed["biz_opaque_callback_data"] == "m-1" and "pricing" not in failed


async def test_free_form_outside_window_is_400_when_configured() -> None:
    async with harness() as h:
        await h.client.put("/_sim/webhooks", json={"sync_131047": True})
        response = await h.send(text())
        assert response.status_code == 400 and error_code(response) == 131047


async def test_customer_message_opens_the_window_and_old_ones_do_not() -> None:
    async with harness() as h:
        old = await h.customer_writes(wa_id="15550000077", timestamp=int(h.clock()) - 25 * 3600)
        assert old.json()["delivered"] is True
        await h.customer_writes()
        assert (await h.send(text())).status_code == 200
        await h.send(text(to="15550000077"))
        codes = [s.get("errors", [{}])[0].get("code") for s in await h.statuses() if s["status"] == "failed"]
        assert codes == [131047]
        assert len(h.sim.counts.by_recipient) == 2


@pytest.mark.parametrize(("kind", "extra", "expected"), [
    ("button", {"payload": "STOP"}, {"type": "button", "button": {"payload": "STOP", "text": "hi"}}),
    ("interactive_list_reply", {"id": "r1", "title": "Row"},
     {"type": "interactive", "interactive": {"type": "list_reply", "list_reply": {"id": "r1", "title": "Row"}}}),
])
async def test_customer_message_shapes(kind: str, extra: dict[str, Any], expected: dict[str, Any]) -> None:
    async with harness() as h:
        await h.customer_writes(type=kind, context_id="wamid.OURS", **extra)
        [message] = h.hooks[0]["entry"][0]["changes"][0]["value"]["messages"]
        assert {k: message[k] for k in expected} == expected
        assert message["context"] == {"from": "15550001001", "id": "wamid.OURS"}


async def test_undeliverable_recipient_gets_failed_131026() -> None:
    async with harness() as h:
        await h.client.post("/_sim/recipients/undeliverable", json={"wa_id": CUSTOMER})
        assert (await h.send(template())).status_code == 200
        [failed] = await h.statuses()
        assert failed["status"] == "failed" and failed["errors"][0]["code"] == 131026


async def test_fault_5xx_in_metas_shape_then_cleared() -> None:
    async with harness() as h:
        await h.client.post(f"/_sim/faults/{NUMBER}", json={"error_5xx_rate": 1.0, "seed": 7})
        response = await h.send(template())
        assert response.status_code >= 500
        assert set(response.json()["error"]) >= {"message", "type", "code", "fbtrace_id"}
        await h.client.delete(f"/_sim/faults/{NUMBER}")
        assert (await h.send(template())).status_code == 200
        assert h.sim.counts.accepted == 1


async def test_counts_by_marker_log_and_reset() -> None:
    async with harness() as h:
        await h.customer_writes()
        for marker in ("a", "a", "b"):
            await h.send(text(marker=marker))
        await h.send(text(marker="c"), token="bad")
        counts = (await h.client.get("/_sim/counts")).json()
        assert counts["by_marker"] == {"a": 2, "b": 1} and counts["accepted"] == 3
        assert counts["by_recipient"] == {CUSTOMER: 3} and counts["errors"] == {"190": 1}
        assert counts["per_second"][NUMBER] == {str(int(h.clock())): 3}
        log = (await h.client.get("/_sim/requests", params={"phone_number_id": NUMBER})).json()["data"]
        assert [e["biz_opaque_callback_data"] for e in log] == ["a", "a", "b", None]
        assert log[0]["headers"]["authorization"] == f"Bearer {TOKEN}" and log[0]["status"] == 200
        assert log[0]["response"]["messages"][0]["message_status"] == "accepted"
        assert (await h.client.get("/_sim/requests", params={"since": h.clock() + 1})).json()["data"] == []
        await h.client.post("/_sim/reset")
        assert (await h.client.get("/_sim/counts")).json()["accepted"] == 0
        assert (await h.send(text(marker="d"))).status_code == 200


async def test_admin_refuses_bad_input() -> None:
    async with harness() as h:
        assert (await h.client.put("/_sim/webhooks", json={"duplicate_rate": 2})).status_code == 422
        assert (await h.client.post(f"/_sim/faults/{NUMBER}", json={"error_5xx_rate": 0.6,
                                                                   "drop_connection_rate": 0.6})).status_code == 422
        assert (await h.client.get("/_sim/health")).json()["status"] == "ok"


# --- faults that need a real connection ----------------------------------------------------------

@contextlib.asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(500):  # uvicorn offers a flag, not an event
        if server.started:
            break
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task


async def test_dropped_connection_and_timeout_after_accept() -> None:
    async with harness() as h, served(h.app) as url, httpx.AsyncClient(base_url=url, timeout=0.3) as client:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        await client.post(f"/_sim/faults/{NUMBER}", json={"drop_connection_rate": 1.0})
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(f"/v23.0/{NUMBER}/messages", json=template(), headers=headers)
        assert h.sim.counts.accepted == 0
        await client.post(f"/_sim/faults/{NUMBER}", json={"timeout_after_accept_rate": 1.0, "hang_s": 0.6})
        with pytest.raises(httpx.ReadTimeout):
            await client.post(f"/v23.0/{NUMBER}/messages", json=template(), headers=headers)
        assert h.sim.counts.accepted == 1
        assert [e["fault"] for e in h.sim.requests(NUMBER)] == ["drop_connection", "timeout_after_accept"]


async def test_webhooks_can_be_switched_off() -> None:
    async with harness() as h:
        await h.client.put("/_sim/webhooks", json={"enabled": False})
        assert (await h.send(template())).status_code == 200
        assert await h.statuses() == [] and h.sim.webhooks.pending == 0
