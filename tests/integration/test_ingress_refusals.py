"""Bad input gets the right status code and nothing reaches ``wa.webhooks.raw``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from ingress.signature import sign
from metasim import payloads
from schemas.catalogue import WEBHOOKS_RAW
from stack.launcher import LocalStack
from tests.integration.conftest import PYWA_SIGNATURE, SECRET, VECTORS, VERIFY_TOKEN, Poster, topic_end

BODY = payloads.customer_text("100000000000001", "200000000000001", "15550001234", "hi")


async def _produced(stack: LocalStack, action: Callable[[], Awaitable[httpx.Response]]) -> tuple[int, int]:
    before = topic_end(stack, WEBHOOKS_RAW.name)
    response = await action()
    return response.status_code, topic_end(stack, WEBHOOKS_RAW.name) - before


async def test_no_signature_is_401_and_nothing_written(stack: LocalStack, post: Poster) -> None:
    assert await _produced(stack, lambda: post(BODY, headers={"Content-Type": "application/json"})) == (401, 0)


async def test_wrong_signature_is_401_and_nothing_written(stack: LocalStack, post: Poster) -> None:
    assert await _produced(stack, lambda: post(BODY, secret="not-the-app-secret")) == (401, 0)


async def test_signature_of_other_body_is_401(stack: LocalStack, http: httpx.AsyncClient) -> None:
    raw = payloads.encode(BODY)
    header = sign(raw + b" ", SECRET.encode())
    assert await _produced(stack, lambda: http.post("/webhooks/meta", content=raw,
                                                    headers={"X-Hub-Signature-256": header})) == (401, 0)


async def test_previous_secret_during_rotation_is_accepted(stack: LocalStack, http: httpx.AsyncClient) -> None:
    """pywa's recorded request, byte for byte, signed with the (second, previous) secret."""
    raw = (VECTORS / "webhooks" / "pywa-signed-text-message.json").read_bytes()
    headers = {"X-Hub-Signature-256": PYWA_SIGNATURE["x_hub_signature_256"], "Content-Type": "application/json"}
    assert await _produced(stack, lambda: http.post("/webhooks/meta", content=raw, headers=headers)) == (200, 1)


async def test_signed_malformed_json_is_400(stack: LocalStack, post: Poster) -> None:
    assert await _produced(stack, lambda: post(b'{"object": "whatsapp_business_account", "entry": [')) == (400, 0)


async def test_signed_json_that_is_not_an_object_is_400(stack: LocalStack, post: Poster) -> None:
    assert await _produced(stack, lambda: post(b"[1, 2, 3]")) == (400, 0)


async def test_four_megabyte_body_is_413(stack: LocalStack, post: Poster) -> None:
    huge = payloads.encode({**BODY, "padding": "x" * (4 * 1024 * 1024)})
    assert await _produced(stack, lambda: post(huge)) == (413, 0)


async def test_chunked_oversized_body_is_413(stack: LocalStack, http: httpx.AsyncClient) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(5):
            yield b"x" * (1024 * 1024)

    assert await _produced(stack, lambda: http.post("/webhooks/meta", content=chunks(),
                                                    headers={"X-Hub-Signature-256": "sha256=00"})) == (413, 0)


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
