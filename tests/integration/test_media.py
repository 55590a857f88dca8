"""Media, end to end: customers' media through ingress → stream worker → dispatcher (Meta's media API in the
simulator) → media store → PostgreSQL → the tenant API; uploads through the API → dispatcher → the simulator.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from broker.producer import AsyncProducer
from config.settings import CoreSettings
from mediastore.local import LocalStore
from mediastore.retention import prune, purge_tenant
from schemas.catalogue import UNROUTABLE
from stack.launcher import LocalStack
from tenants.api_keys import create_key_for
from tenants.commands import attach_number, create_tenant
from tests.integration.helpers import (
    VAULT_KEYS,
    Business,
    BusinessFactory,
    TopicTail,
    customer_writes,
    fresh_id,
    scalar,
    wait_for,
)
from vault.cipher import Vault

pytestmark = pytest.mark.usefixtures("pipeline_ready")

JPEG = b"\xff\xd8\xff\xe0" + os.urandom(40_000)
PDF = b"%PDF-1.4\n" + os.urandom(30_000) + b"\n%%EOF"


def _wa_id() -> str:
    return f"1555{random.randrange(10**6, 10**7)}"


async def _seed(sim: httpx.AsyncClient, business: Business, data: bytes, mime: str) -> str:
    response = await sim.post("/_sim/media", json={"phone_number_id": business.phone_number_id, "mime_type": mime,
                                                   "content_b64": base64.b64encode(data).decode()})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def _customer_sends(sim: httpx.AsyncClient, business: Business, wa_id: str, kind: str, media_id: str,
                          **extra: Any) -> str:
    response = await sim.post("/_sim/customers/messages", json={
        "phone_number_id": business.phone_number_id, "from": wa_id, "type": kind, "media_id": media_id, **extra})
    assert response.status_code == 200, response.text
    return str(response.json()["wamid"])


async def _media_of(api: httpx.AsyncClient, business: Business, wa_id: str, wamid: str,
                    status: str = "stored") -> dict[str, Any]:
    """The message's media reference in the conversation listing, once it has ``status``."""
    async def probe() -> dict[str, Any] | None:
        response = await api.get(f"/v1/conversations/{business.conversation(wa_id)}/messages", headers=business.auth)
        if response.status_code != 200:
            return None
        found = [m for m in response.json()["messages"] if m["wamid"] == wamid]
        media = found[0].get("media") if found else None
        return media if media and media["status"] == status else None

    result: dict[str, Any] = await wait_for(probe, what=f"the media of {wamid} to be {status}")
    return result


async def test_inbound_image_is_served_to_its_tenant_only(
        business_factory: BusinessFactory, api: httpx.AsyncClient, sim: httpx.AsyncClient) -> None:
    business, other = await business_factory("media-in"), await business_factory("media-other")
    customer = _wa_id()
    meta_id = await _seed(sim, business, JPEG, "image/jpeg")
    wamid = await _customer_sends(sim, business, customer, "image", meta_id, text="my receipt")
    media = await _media_of(api, business, customer, wamid)
    assert media["mime_type"] == "image/jpeg" and media["size_bytes"] == len(JPEG)
    assert media["url"] == f"/v1/media/{media['id']}"

    served = await api.get(media["url"], headers=business.auth)
    assert served.status_code == 200
    assert served.content == JPEG
    assert served.headers["content-type"] == "image/jpeg"
    assert served.headers["x-content-type-options"] == "nosniff"
    info = (await api.get(f"{media['url']}/info", headers=business.auth)).json()
    assert info["sha256"] == hashlib.sha256(JPEG).hexdigest() and info["origin"] == "inbound"
    assert "attachments" not in served.headers.get("location", "") and "attachments" not in str(info)  # never Meta's

    assert (await api.get(media["url"], headers=other.auth)).status_code == 404
    assert (await api.get(f"{media['url']}/info", headers=other.auth)).status_code == 404
    assert (await api.get(media["url"])).status_code == 401


async def test_media_of_a_number_attached_late_is_fetched_when_its_message_is_replayed(
        stack: LocalStack, settings: CoreSettings, producer: AsyncProducer, api: httpx.AsyncClient,
        sim: httpx.AsyncClient) -> None:
    """A customer's picture to a number no tenant has yet is held; once the number is attached, the replay asks
    for its media as the router would have (``schemas.routing.routed_records``), and the tenant gets the file."""
    pnid, waba, business_id = fresh_id(), fresh_id(), fresh_id()
    token = f"EAAG{random.getrandbits(128):032x}"
    registered = await sim.post("/_sim/numbers", json={
        "phone_number_id": pnid, "waba_id": waba, "business_id": business_id, "token": token,
        "display_phone_number": "15550003333", "throughput": 80})
    assert registered.status_code < 300, registered.text
    customer, at_meta_only = _wa_id(), Business("", pnid, waba, business_id, token, "")  # no tenant, no key yet
    held = TopicTail(stack.kafka, UNROUTABLE.name)
    try:
        meta_id = await _seed(sim, at_meta_only, JPEG, "image/jpeg")
        wamid = await _customer_sends(sim, at_meta_only, customer, "image", meta_id)
        await wait_for(lambda: asyncio.to_thread(held.count, wamid.encode()), timeout=30,
                       what="the message in wa.unroutable")
    finally:
        held.close()

    tenant_id = await create_tenant(settings, "media-late")
    assert await attach_number(settings, producer, tenant_id=tenant_id, phone_number_id=pnid, waba_id=waba,
                               token=token, vault=Vault.from_spec(VAULT_KEYS), business_id=business_id) == 1
    _, api_key = await create_key_for(settings, tenant_id=tenant_id, name="tests")
    business = Business(tenant_id, pnid, waba, business_id, token, api_key)
    media = await _media_of(api, business, customer, wamid)
    served = await api.get(media["url"], headers=business.auth)
    assert served.status_code == 200 and served.content == JPEG


async def test_an_expired_media_url_is_resolved_again_once(
        business_factory: BusinessFactory, api: httpx.AsyncClient, sim: httpx.AsyncClient) -> None:
    business = await business_factory("media-expiry")
    customer = _wa_id()
    meta_id = await _seed(sim, business, PDF, "application/pdf")
    expired = await sim.post(f"/_sim/media/{meta_id}/expire-urls", json={"following": 1})
    assert expired.status_code == 200, expired.text
    wamid = await _customer_sends(sim, business, customer, "document", meta_id, filename="invoice.pdf")
    media = await _media_of(api, business, customer, wamid)
    served = await api.get(media["url"], headers=business.auth)
    assert served.content == PDF and served.headers["content-type"] == "application/pdf"
    assert "invoice.pdf" in served.headers["content-disposition"]
    downloads = (await sim.get(f"/_sim/media/{meta_id}")).json()["downloads"]
    assert [d["status"] for d in downloads] == [404, 200]  # the expired URL, then the fresh one

    # Resolved once more only: a second expired URL fails the media (with the reason), and nothing is stored.
    twice = await _seed(sim, business, PDF, "application/pdf")
    assert (await sim.post(f"/_sim/media/{twice}/expire-urls", json={"following": 2})).status_code == 200
    wamid = await _customer_sends(sim, business, customer, "document", twice, filename="again.pdf")
    failed = await _media_of(api, business, customer, wamid, status="failed")
    assert "failed again" in failed["error"]
    downloads = (await sim.get(f"/_sim/media/{twice}")).json()["downloads"]
    assert [d["status"] for d in downloads] == [404, 404]


async def test_media_over_metas_limit_is_refused_with_its_reason(
        business_factory: BusinessFactory, api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine) -> None:
    business = await business_factory("media-limits")
    big = b"\xff\xd8\xff" + b"\0" * (5 * 1024 * 1024)
    refused = await api.post("/v1/media", headers=business.auth, files={"file": ("big.jpg", big, "image/jpeg")})
    assert refused.status_code == 413, refused.text
    assert refused.json()["detail"][0]["loc"] == ["body", "file"]
    assert "image files may be at most 5 MB" in refused.json()["detail"][0]["msg"]
    wrong = await api.post("/v1/media", headers=business.auth, files={"file": ("a.zip", b"PK\3\4", "application/zip")})
    assert wrong.status_code == 422 and "application/zip" in wrong.json()["detail"][0]["msg"]
    missing = await api.post("/v1/media", headers=business.auth, files={"other": ("a.pdf", PDF, "application/pdf")})
    assert missing.status_code == 422
    assert await scalar(db, "SELECT count(*) FROM media WHERE tenant_id = :t", t=business.tenant_id) == 0

    # A customer's oversized image is not stored: the message says why.
    customer = _wa_id()
    meta_id = await _seed(sim, business, big, "image/jpeg")
    wamid = await _customer_sends(sim, business, customer, "image", meta_id)
    media = await _media_of(api, business, customer, wamid, status="failed")
    assert "at most 5 MB" in media["error"]
    assert (await api.get(media["url"], headers=business.auth)).status_code == 409

    # The simulator refuses the same as Meta does.
    upload = await sim.post(f"/v23.0/{business.phone_number_id}/media", headers={"Authorization": f"Bearer "
                                                                                 f"{business.token}"},
                            data={"messaging_product": "whatsapp", "type": "image/jpeg"},
                            files={"file": ("big.jpg", big, "image/jpeg")})
    assert upload.status_code == 400 and upload.json()["error"]["code"] == 131053


async def test_an_uploaded_document_reaches_meta_by_media_id(
        business_factory: BusinessFactory, api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine) -> None:
    business, other = await business_factory("media-out"), await business_factory("media-out-other")
    customer = _wa_id()
    await customer_writes(sim, db, business, customer, "please send the invoice")
    uploaded = await api.post("/v1/media", headers=business.auth,
                              files={"file": ("invoice.pdf", PDF, "application/pdf")})
    assert uploaded.status_code == 201, uploaded.text
    media = uploaded.json()
    assert media["kind"] == "document" and media["size_bytes"] == len(PDF)

    refused = await api.post("/v1/messages", headers=other.auth, json={
        "to": customer, "type": "document", "document": {"id": media["id"]}})
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "document", "id"]
    as_image = await api.post("/v1/messages", headers=business.auth, json={
        "to": customer, "type": "image", "image": {"id": media["id"]}})
    assert as_image.status_code == 422 and "not a image" in as_image.json()["detail"][0]["msg"]

    sent = []
    for n in range(2):
        response = await api.post("/v1/messages", headers=business.auth, json={
            "to": customer, "type": "document", "document": {"id": media["id"], "filename": f"invoice-{n}.pdf"}})
        assert response.status_code == 202, response.text
        sent.append(response.json()["id"])

    async def sends() -> list[dict[str, Any]] | None:
        response = await sim.get("/_sim/requests", params={"phone_number_id": business.phone_number_id})
        found = [r for r in response.json()["data"] if r["path"].endswith("/messages")
                 and isinstance(r["body"], dict) and r["body"].get("type") == "document"]
        return found if len(found) == 2 and all(r["status"] == 200 for r in found) else None

    accepted = await wait_for(sends, what="both documents to reach the simulator")
    meta_ids = {r["body"]["document"]["id"] for r in accepted}
    assert len(meta_ids) == 1 and media["id"] not in meta_ids  # Meta's id, uploaded once and cached
    at_meta = (await sim.get(f"/_sim/media/{meta_ids.pop()}")).json()
    assert base64.b64decode(at_meta["content_b64"]) == PDF and at_meta["mime_type"] == "application/pdf"
    assert at_meta["phone_number_id"] == business.phone_number_id

    # Sending by public link keeps working.
    link = await api.post("/v1/messages", headers=business.auth, json={
        "to": customer, "type": "document", "document": {"link": "https://shop.test/terms.pdf"}})
    assert link.status_code == 202


async def test_media_past_retention_is_deleted(
        business_factory: BusinessFactory, api: httpx.AsyncClient, db: AsyncEngine, stack: LocalStack) -> None:
    business = await business_factory("media-retention")
    uploaded = (await api.post("/v1/media", headers=business.auth,
                               files={"file": ("a.png", b"\x89PNG" + os.urandom(100), "image/png")})).json()
    kept = await api.put("/v1/settings/media", headers=business.auth, json={"retention_days": 1})
    assert kept.status_code == 200 and (await api.get("/v1/settings/media", headers=business.auth)).json() == {
        "retention_days": 1}
    store = LocalStore(stack.root / "media")
    assert await prune(db, store, default_days=90) >= 0
    assert (await api.get(uploaded["url"], headers=business.auth)).status_code == 200  # not a day old yet
    await prune(db, store, default_days=90, now=datetime.now(UTC) + timedelta(days=2))
    assert (await api.get(uploaded["url"], headers=business.auth)).status_code == 404
    assert not (stack.root / "media" / business.tenant_id / uploaded["id"]).exists()


async def test_deleting_a_tenants_data_deletes_its_media(
        business_factory: BusinessFactory, api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine,
        stack: LocalStack) -> None:
    business, other = await business_factory("media-purge"), await business_factory("media-kept")
    customer = _wa_id()
    wamid = await _customer_sends(sim, business, customer, "image", await _seed(sim, business, JPEG, "image/jpeg"))
    inbound = await _media_of(api, business, customer, wamid)
    uploaded = (await api.post("/v1/media", headers=business.auth,
                               files={"file": ("a.pdf", PDF, "application/pdf")})).json()
    kept = (await api.post("/v1/media", headers=other.auth, files={"file": ("b.pdf", PDF, "application/pdf")})).json()
    assert await purge_tenant(db, LocalStore(stack.root / "media"), business.tenant_id) == 2
    for url in (inbound["url"], uploaded["url"]):
        assert (await api.get(url, headers=business.auth)).status_code == 404
    assert not (stack.root / "media" / business.tenant_id).exists()
    assert await scalar(db, "SELECT count(*) FROM media WHERE tenant_id = :t", t=business.tenant_id) == 0
    assert (await api.get(kept["url"], headers=other.auth)).content == PDF


async def test_a_templates_header_can_name_an_uploaded_file(
        business_factory: BusinessFactory, api: httpx.AsyncClient, sim: httpx.AsyncClient) -> None:
    business = await business_factory("media-template")
    await sim.post("/_sim/templates", json={"waba_id": business.waba_id, "name": "invoice_ready",
                                            "language": "en_US", "parameters": {"header": 1}})
    media = (await api.post("/v1/media", headers=business.auth,
                            files={"file": ("invoice.pdf", PDF, "application/pdf")})).json()

    def template(media_id: str) -> dict[str, Any]:
        return {"to": _wa_id(), "type": "template", "template": {
            "name": "invoice_ready", "language": {"code": "en_US"}, "components": [
                {"type": "header", "parameters": [{"type": "document", "document": {"id": media_id}}]}]}}

    unknown = await api.post("/v1/messages", headers=business.auth, json=template(str(uuid.uuid4())))
    assert unknown.status_code == 422, unknown.text
    assert unknown.json()["detail"][0]["loc"] == ["body", "template", "components", 0, "parameters", 0,
                                                  "document", "id"]
    sent = await api.post("/v1/messages", headers=business.auth, json=template(media["id"]))
    assert sent.status_code == 202, sent.text

    async def reached() -> list[dict[str, Any]] | None:
        response = await sim.get("/_sim/requests", params={"phone_number_id": business.phone_number_id})
        found = [r for r in response.json()["data"] if r["path"].endswith("/messages") and r["status"] == 200]
        return found or None

    [request] = await wait_for(reached, what="the template to reach the simulator")
    header = request["body"]["template"]["components"][0]["parameters"][0]["document"]["id"]
    assert header != media["id"]
    assert base64.b64decode((await sim.get(f"/_sim/media/{header}")).json()["content_b64"]) == PDF


async def test_a_file_meta_forgot_is_uploaded_again(
        business_factory: BusinessFactory, api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine) -> None:
    business = await business_factory("media-stale")
    customer = _wa_id()
    await customer_writes(sim, db, business, customer, "the contract please")
    media = (await api.post("/v1/media", headers=business.auth,
                            files={"file": ("contract.pdf", PDF, "application/pdf")})).json()

    async def documents(count: int) -> list[dict[str, Any]] | None:
        response = await sim.get("/_sim/requests", params={"phone_number_id": business.phone_number_id})
        found = [r for r in response.json()["data"] if r["path"].endswith("/messages")
                 and isinstance(r["body"], dict) and r["body"].get("type") == "document"]
        return found if len(found) == count and found[-1]["status"] == 200 else None

    async def send() -> None:
        response = await api.post("/v1/messages", headers=business.auth, json={
            "to": customer, "type": "document", "document": {"id": media["id"]}})
        assert response.status_code == 202, response.text

    await send()
    [first] = await wait_for(lambda: documents(1), what="the first document at the simulator")
    forgotten = first["body"]["document"]["id"]
    deleted = await sim.delete(f"/v23.0/{forgotten}", headers={"Authorization": f"Bearer {business.token}"})
    assert deleted.json() == {"success": True}
    await send()
    _, refused, accepted = await wait_for(lambda: documents(3), what="the second document, uploaded again")
    assert refused["body"]["document"]["id"] == forgotten and refused["response"]["error"]["code"] == 131009
    again = accepted["body"]["document"]["id"]
    assert again != forgotten
    assert base64.b64decode((await sim.get(f"/_sim/media/{again}")).json()["content_b64"]) == PDF
