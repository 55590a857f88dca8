"""One delivery over HTTP against a real local endpoint: signed, refused by the production rules at delivery
time, redirects not followed, a hanging endpoint cut at the timeout; and the retry schedule."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import pytest

from deliverer.http import Clients, deliver
from deliverer.scheduler import backoff_s
from tests.unit.deliverer.receiver import HANG, Receiver
from webhooks.signing import generate_secret, verify
from webhooks.urls import Policy

TESTS = Policy(production=False, allow_loopback=True)
BODY = json.dumps({"id": "evt_1", "type": "message.received", "data": {}}).encode()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = await Receiver().start()
    yield server
    await server.close()


async def test_a_delivery_is_signed_the_standard_webhooks_way(receiver: Receiver) -> None:
    secret = generate_secret()
    clients = Clients(concurrency=2, timeout_s=5)
    attempt = await deliver(clients.get("e1", receiver.url("/in")), receiver.url("/in"), TESTS, event_id="evt_1",
                            body=BODY, secrets=[secret], timeout_s=5)
    await clients.close()
    assert attempt.ok and attempt.status == 200
    [got] = receiver.at("/in")
    assert got.body == BODY and got.headers["webhook-id"] == "evt_1"
    assert got.headers["content-type"] == "application/json"
    verify(secret, got.headers, got.body, now=int(time.time()))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_the_production_rules_refuse_a_loopback_endpoint_at_delivery_time(receiver: Receiver,
                                                                                 host: str) -> None:
    url = f"http://{host}:{receiver.port}/in".replace("http:", "https:")
    clients = Clients(concurrency=2, timeout_s=5)
    attempt = await deliver(clients.get("e1", url), url, Policy(production=True), event_id="evt_1", body=BODY,
                            secrets=[generate_secret()], timeout_s=5)
    await clients.close()
    assert not attempt.ok and attempt.status is None and (attempt.error or "").startswith("refused")
    assert receiver.received == []


async def test_a_redirect_is_not_followed(receiver: Receiver) -> None:
    receiver.script("/moved", [302])
    clients = Clients(concurrency=2, timeout_s=5)
    attempt = await deliver(clients.get("e1", receiver.url("/moved")), receiver.url("/moved"), TESTS,
                            event_id="evt_1", body=BODY, secrets=[generate_secret()], timeout_s=5)
    await clients.close()
    assert attempt.status == 302 and not attempt.ok
    assert [r.path for r in receiver.received] == ["/moved"]


async def test_a_hanging_endpoint_is_cut_at_the_timeout(receiver: Receiver) -> None:
    receiver.script("/hang", [HANG])
    clients = Clients(concurrency=2, timeout_s=0.5)
    started = time.monotonic()
    attempt = await deliver(clients.get("e1", receiver.url("/hang")), receiver.url("/hang"), TESTS,
                            event_id="evt_1", body=BODY, secrets=[generate_secret()], timeout_s=0.5)
    await clients.close()
    assert attempt.error is not None and "timed out" in attempt.error
    assert 0.4 < time.monotonic() - started < 3


def test_the_back_off_doubles_with_jitter_up_to_its_ceiling() -> None:
    assert backoff_s(1, 30, 3600, rand=lambda: 0.0) == 15
    assert backoff_s(1, 30, 3600, rand=lambda: 1.0) == 30
    assert backoff_s(3, 30, 3600, rand=lambda: 1.0) == 120
    assert backoff_s(30, 30, 3600, rand=lambda: 1.0) == 3600
    assert backoff_s(10_000, 30, 3600, rand=lambda: 0.5) == 2700
