"""The simulator's media: uploads with Meta's errors, ``GET /{media-id}``, token-bound expiring URLs, customers'
media messages with real bytes, and sends naming media ids the WABA does not have."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from metasim.app import create_app
from metasim.state import SimConfig
from tests.unit.metasim.conftest import Clock

NUMBER, WABA, TOKEN = "3001", "waba-media", "media-token"
OTHER_NUMBER, OTHER_WABA, OTHER_TOKEN = "3002", "waba-other", "other-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8


@dataclass
class Harness:
    client: httpx.AsyncClient
    clock: Clock
    posted: list[bytes]


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    clock, posted = Clock(), []

    def receive(request: httpx.Request) -> httpx.Response:
        posted.append(request.content)
        return httpx.Response(200)

    app = create_app(SimConfig(app_secret="unit-app-secret", webhooks={"enabled": False}), clock=clock,
                     transport=httpx.MockTransport(receive))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://graph.test") as client:
        for number, waba, token in ((NUMBER, WABA, TOKEN), (OTHER_NUMBER, OTHER_WABA, OTHER_TOKEN)):
            added = await client.post("/_sim/numbers", json={"phone_number_id": number, "waba_id": waba,
                                                             "token": token})
            assert added.status_code == 200, added.text
        yield Harness(client, clock, posted)


async def _upload(h: Harness, data: bytes, mime: str, *, token: str = TOKEN) -> httpx.Response:
    return await h.client.post(f"/v23.0/{NUMBER}/media", headers={"Authorization": f"Bearer {token}"},
                               data={"messaging_product": "whatsapp", "type": mime},
                               files={"file": ("f", data, mime)})


async def test_upload_then_resolve_then_download_with_the_token(h: Harness) -> None:
    uploaded = await _upload(h, JPEG, "image/jpeg")
    assert uploaded.status_code == 200, uploaded.text
    media_id = uploaded.json()["id"]
    assert media_id.isdigit()
    info = (await h.client.get(f"/v23.0/{media_id}", headers=AUTH)).json()
    assert info["mime_type"] == "image/jpeg" and info["file_size"] == str(len(JPEG))
    assert info["sha256"] == base64.b64encode(hashlib.sha256(JPEG).digest()).decode()
    url = info["url"]
    assert "/whatsapp_business/attachments/?mid=" in url
    assert (await h.client.get(url, headers=AUTH)).content == JPEG
    assert (await h.client.get(url)).status_code == 401  # the URL needs the token
    assert (await h.client.get(url, headers={"Authorization": f"Bearer {OTHER_TOKEN}"})).status_code == 401
    other = await h.client.get(f"/v23.0/{media_id}", headers={"Authorization": f"Bearer {OTHER_TOKEN}"})
    assert other.status_code == 401 and other.json()["error"]["code"] == 190
    h.clock.at += 301  # Meta's URLs expire after about five minutes
    assert (await h.client.get(url, headers=AUTH)).status_code == 404
    fresh = (await h.client.get(f"/v23.0/{media_id}", headers=AUTH)).json()["url"]
    assert (await h.client.get(fresh, headers=AUTH)).content == JPEG
    deleted = await h.client.delete(f"/v23.0/{media_id}", headers=AUTH)
    assert deleted.json() == {"success": True}
    assert (await h.client.get(f"/v23.0/{media_id}", headers=AUTH)).status_code != 200


@pytest.mark.parametrize(("data", "mime", "reason"), [
    (b"PK\3\4", "application/zip", "not supported"),
    (b"\0" * (5 * 1024 * 1024 + 1), "image/jpeg", "larger than"),
    (b"\0" * (500 * 1024 + 1), "image/webp", "larger than"),
])
async def test_uploads_meta_refuses(h: Harness, data: bytes, mime: str, reason: str) -> None:
    refused = await _upload(h, data, mime)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == 131053 and reason in error["error_data"]["details"]


async def test_upload_needs_a_token_of_the_number(h: Harness) -> None:
    assert (await _upload(h, JPEG, "image/jpeg", token="nope")).json()["error"]["code"] == 190
    assert (await _upload(h, JPEG, "image/jpeg", token=OTHER_TOKEN)).json()["error"]["code"] == 190


async def test_expire_urls_control(h: Harness) -> None:
    media_id = (await _upload(h, JPEG, "image/jpeg")).json()["id"]
    before = (await h.client.get(f"/v23.0/{media_id}", headers=AUTH)).json()["url"]
    assert (await h.client.post(f"/_sim/media/{media_id}/expire-urls", json={"following": 1})).status_code == 200
    h.clock.at += 1
    first = (await h.client.get(f"/v23.0/{media_id}", headers=AUTH)).json()["url"]
    second = (await h.client.get(f"/v23.0/{media_id}", headers=AUTH)).json()["url"]
    assert [(await h.client.get(u, headers=AUTH)).status_code for u in (before, first, second)] == [404, 404, 200]
    downloads = (await h.client.get(f"/_sim/media/{media_id}")).json()["downloads"]
    assert [d["status"] for d in downloads] == [404, 404, 200]


async def test_customers_media_messages_carry_ids_of_real_bytes(h: Harness) -> None:
    seeded = await h.client.post("/_sim/media", json={"phone_number_id": NUMBER, "mime_type": "application/pdf",
                                                      "content_b64": base64.b64encode(b"%PDF-1.4").decode()})
    media_id = seeded.json()["id"]
    for kind, extra in (("document", {"media_id": media_id, "filename": "a.pdf"}), ("sticker", {}), ("audio", {})):
        sent = await h.client.post("/_sim/customers/messages", json={
            "phone_number_id": NUMBER, "from": "15551230001", "type": kind, **extra})
        assert sent.status_code == 200, sent.text
    messages = [json.loads(b)["entry"][0]["changes"][0]["value"]["messages"][0] for b in h.posted]
    assert [m["type"] for m in messages] == ["document", "sticker", "audio"]
    assert messages[0]["document"]["id"] == media_id and messages[0]["document"]["filename"] == "a.pdf"
    for message in messages[1:]:
        generated = message[message["type"]]["id"]
        info = (await h.client.get(f"/v23.0/{generated}", headers=AUTH)).json()
        assert info["mime_type"] == message[message["type"]]["mime_type"]


async def test_a_send_naming_an_unknown_media_id_is_refused(h: Harness) -> None:
    await h.client.post("/_sim/customers/messages", json={"phone_number_id": NUMBER, "from": "15551230001"})
    theirs = await h.client.post(f"/v23.0/{OTHER_NUMBER}/media", headers={"Authorization": f"Bearer {OTHER_TOKEN}"},
                                 data={"messaging_product": "whatsapp", "type": "image/jpeg"},
                                 files={"file": ("f", JPEG, "image/jpeg")})
    ours = (await _upload(h, JPEG, "image/jpeg")).json()["id"]
    answers = []
    for media_id in ("123456789", theirs.json()["id"], ours):
        answers.append(await h.client.post(f"/v23.0/{NUMBER}/messages", headers=AUTH, json={
            "messaging_product": "whatsapp", "to": "15551230001", "type": "image", "image": {"id": media_id}}))
    assert [a.status_code for a in answers] == [400, 400, 200]
    assert answers[0].json()["error"]["code"] == 131009


async def test_a_template_naming_an_unknown_header_media_id_is_refused(h: Harness) -> None:
    await h.client.post("/_sim/templates", json={"waba_id": WABA, "name": "invoice", "language": "en_US",
                                                 "parameters": {"header": 1}})
    ours = (await _upload(h, b"%PDF-1.4", "application/pdf")).json()["id"]
    answers = []
    for media_id in ("987654321", ours):
        answers.append(await h.client.post(f"/v23.0/{NUMBER}/messages", headers=AUTH, json={
            "messaging_product": "whatsapp", "to": "15551230001", "type": "template", "template": {
                "name": "invoice", "language": {"code": "en_US"}, "components": [
                    {"type": "header", "parameters": [{"type": "document", "document": {"id": media_id}}]}]}}))
    assert answers[0].status_code == 400 and answers[0].json()["error"]["code"] == 131009, answers[0].text
    assert answers[1].status_code == 200, answers[1].text
