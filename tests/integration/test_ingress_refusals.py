"""Bad input gets the right status code and nothing reaches ``wa.webhooks.raw``; a webhook up to the ingress's
limit is appended and routed."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from confluent_kafka.admin import AdminClient, ConfigResource
from sqlalchemy.ext.asyncio import AsyncEngine

from config.settings import IngressSettings
from ingress.signature import sign
from metasim import payloads
from schemas.catalogue import DEAD_LETTERS, RECORD_HEADROOM_BYTES, ROUTER_GROUP, UNROUTABLE, WEBHOOKS_RAW
from stack.launcher import LocalStack
from tests.integration.helpers import (
    PYWA_SIGNATURE,
    SECRET,
    VECTORS,
    VERIFY_TOKEN,
    Poster,
    TenantFactory,
    TopicTail,
    scalar,
    wait_for,
)


def _body() -> tuple[dict[str, Any], bytes]:
    """A fresh webhook and the marker (its wamid) that finds it in ``wa.webhooks.raw``."""
    wamid = payloads.new_wamid()
    return payloads.customer_text("100000000000001", "200000000000001", "15550001234", "hi", wamid=wamid), \
        wamid.encode()


async def _produced(tail: TopicTail, marker: bytes, action: Callable[[], Awaitable[httpx.Response]]
                    ) -> tuple[int, int]:
    """The answer's status and how many records carrying ``marker`` it added to the raw topic."""
    before = await asyncio.to_thread(tail.count, marker)
    response = await action()
    return response.status_code, await asyncio.to_thread(tail.count, marker) - before


async def test_no_signature_is_401_and_nothing_written(raw_tail: TopicTail, post: Poster) -> None:
    body, marker = _body()
    assert await _produced(raw_tail, marker, lambda: post(body, headers={"Content-Type": "application/json"})
                           ) == (401, 0)


async def test_wrong_signature_is_401_and_nothing_written(raw_tail: TopicTail, post: Poster) -> None:
    body, marker = _body()
    assert await _produced(raw_tail, marker, lambda: post(body, secret="not-the-app-secret")) == (401, 0)


async def test_signature_of_other_body_is_401(raw_tail: TopicTail, http: httpx.AsyncClient) -> None:
    body, marker = _body()
    raw = payloads.encode(body)
    header = sign(raw + b" ", SECRET.encode())
    assert await _produced(raw_tail, marker, lambda: http.post("/webhooks/meta", content=raw,
                                                               headers={"X-Hub-Signature-256": header})) == (401, 0)


async def test_a_correctly_signed_body_is_written_once(raw_tail: TopicTail, post: Poster) -> None:
    body, marker = _body()
    assert await _produced(raw_tail, marker, lambda: post(body)) == (200, 1)


async def test_previous_secret_during_rotation_is_accepted(raw_tail: TopicTail, http: httpx.AsyncClient) -> None:
    """pywa's recorded request, byte for byte, signed with the (second, previous) secret."""
    raw = (VECTORS / "webhooks" / "pywa-signed-text-message.json").read_bytes()
    marker = json.loads(raw)["entry"][0]["changes"][0]["value"]["messages"][0]["id"].encode()
    headers = {"X-Hub-Signature-256": PYWA_SIGNATURE["x_hub_signature_256"], "Content-Type": "application/json"}
    assert await _produced(raw_tail, marker, lambda: http.post("/webhooks/meta", content=raw, headers=headers)
                           ) == (200, 1)


async def test_signed_malformed_json_is_400(raw_tail: TopicTail, post: Poster) -> None:
    marker = uuid.uuid4().hex.encode()
    body = b'{"object": "whatsapp_business_account", "marker": "' + marker + b'", "entry": ['
    assert await _produced(raw_tail, marker, lambda: post(body)) == (400, 0)


async def test_signed_json_that_is_not_an_object_is_400(raw_tail: TopicTail, post: Poster) -> None:
    marker = uuid.uuid4().hex.encode()
    assert await _produced(raw_tail, marker, lambda: post(b'[1, 2, "' + marker + b'"]')) == (400, 0)


async def test_four_megabyte_body_is_413(raw_tail: TopicTail, post: Poster) -> None:
    body, marker = _body()
    huge = payloads.encode({**body, "padding": "x" * (4 * 1024 * 1024)})
    assert await _produced(raw_tail, marker, lambda: post(huge)) == (413, 0)


async def test_a_webhook_near_the_limit_is_appended_and_routed(
        raw_tail: TopicTail, post: Poster, tenant_factory: TenantFactory, db: AsyncEngine,
        pipeline_ready: None) -> None:
    """2.5 MB (Meta may batch, and adds fields): above librdkafka's default 1 MB record, within the ingress's 3 MB.
    The ingress's producer and the topics take it; the router reads it and its message reaches PostgreSQL."""
    tenant = await tenant_factory("large webhook")
    wamid = payloads.new_wamid()
    body = payloads.customer_text(tenant.phone_number_id, tenant.waba_id, "15550009876", "a large one", wamid=wamid)
    raw = payloads.encode({**body, "padding": "x" * (2_500_000 - len(payloads.encode(body)))})
    assert 2_500_000 <= len(raw) < IngressSettings(environment="test").max_body_bytes
    assert await _produced(raw_tail, wamid.encode(), lambda: post(raw)) == (200, 1)
    assert [len(v) for v in raw_tail.values if wamid.encode() in v] == [len(raw)]
    await wait_for(lambda: scalar(db, "SELECT count(*) FROM messages WHERE tenant_id = :t AND wamid = :w",
                                  t=tenant.tenant_id, w=wamid), timeout=60, what="the large webhook's message")


def test_the_topics_that_carry_a_webhook_take_the_ingress_limit(stack: LocalStack) -> None:
    """The broker keeps each topic's ``max.message.bytes`` from the catalogue (Kafka enforces it; the embedded
    Tansu stores it but enforces only the producer's side), at least the ingress's limit plus headroom."""
    needed = IngressSettings(environment="test").max_body_bytes + RECORD_HEADROOM_BYTES
    admin = AdminClient({"bootstrap.servers": stack.kafka})
    topics = [WEBHOOKS_RAW.name, UNROUTABLE.name, DEAD_LETTERS[ROUTER_GROUP].name]
    described = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, t) for t in topics])
    sizes = {resource.name: int(future.result(timeout=10)["max.message.bytes"].value)
             for resource, future in described.items()}
    assert sizes.keys() == set(topics)
    assert all(size >= needed for size in sizes.values()), sizes


async def test_chunked_oversized_body_is_413(raw_tail: TopicTail, http: httpx.AsyncClient) -> None:
    marker = uuid.uuid4().hex.encode()

    async def chunks():  # type: ignore[no-untyped-def]
        yield marker
        for _ in range(5):
            yield b"x" * (1024 * 1024)

    assert await _produced(raw_tail, marker, lambda: http.post(
        "/webhooks/meta", content=chunks(), headers={"X-Hub-Signature-256": "sha256=00"})) == (413, 0)


@pytest.mark.parametrize(("params", "status", "body"), [
    ({"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}, 200, "1158201444"),
    ({"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1158201444"}, 403, None),
    ({"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"}, 403, None),
    ({}, 403, None),
])
async def test_verification_handshake(http: httpx.AsyncClient, params: dict[str, str], status: int,
                                      body: str | None) -> None:
    response = await http.get("/webhooks/meta", params=params)
    assert response.status_code == status
    if body is not None:
        assert response.text == body
