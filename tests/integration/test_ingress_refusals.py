"""Bad input gets the right status code and nothing reaches ``wa.webhooks.raw``."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from ingress.signature import sign
from metasim import payloads
from tests.integration.helpers import PYWA_SIGNATURE, SECRET, VECTORS, VERIFY_TOKEN, Poster, TopicTail


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
