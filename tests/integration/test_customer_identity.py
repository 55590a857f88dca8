"""One person, one contact, one conversation, whether Meta names them by number, by BSUID or both: through the
simulator (today's webhook shapes), the router's identity book, the conversation processor, the AI worker, the
dispatcher (``recipient`` for a customer without a number) and PostgreSQL."""

from __future__ import annotations

import json
import random
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from metasim import payloads
from templates.registry import template_id
from tenants.users import create_user
from tests.integration.helpers import Business, BusinessFactory, Poster, rows, scalar, wait_for

pytestmark = pytest.mark.asyncio(loop_scope="session")

ANSWER = "Orders ship within 2 business days and arrive in 3 to 5 days."


async def _shop(api: httpx.AsyncClient, db: AsyncEngine, business_factory: BusinessFactory) -> tuple[Business,
                                                                                                     dict[str, str]]:
    """A tenant whose AI answers delivery questions, and an agent's session."""
    business = await business_factory("identity shop")
    made = await api.post("/v1/knowledge", headers=business.auth, json={
        "question": "How long does shipping take?", "answer": ANSWER, "keywords": ["delivery", "arrive"]})
    assert made.status_code == 201, made.text
    configured = await api.put("/v1/settings/ai", headers=business.auth, json={"provider": "offline",
                                                                               "threshold": 0.7})
    assert configured.status_code == 200, configured.text
    email, password = f"ann-{business.tenant_id}@shop.test", "ann's long password"
    async with db.begin() as conn:
        await create_user(conn, tenant_id=business.tenant_id, email=email, password=password, role="agent")
    login = await api.post("/v1/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    return business, {"Authorization": f"Bearer {login.json()['token']}"}


async def _writes(sim: httpx.AsyncClient, db: AsyncEngine, business: Business, text: str, **who: Any
                  ) -> dict[str, Any]:
    response = await sim.post("/_sim/customers/messages", json={
        "phone_number_id": business.phone_number_id, "type": "text", "text": text, **who})
    assert response.status_code == 200, response.text
    sent = dict(response.json())
    await wait_for(lambda: scalar(db, "SELECT conversation_key FROM messages WHERE tenant_id = :t AND wamid = :w",
                                  t=business.tenant_id, w=sent["wamid"]), what="the customer's message stored")
    return sent


async def _sent(sim: httpx.AsyncClient, business: Business) -> list[dict[str, Any]]:
    """The bodies Meta accepted from the business's number."""
    answer = await sim.get("/_sim/requests", params={"phone_number_id": business.phone_number_id})
    return [e["body"] for e in answer.json()["data"] if e["status"] == 200 and isinstance(e["body"], dict)
            and e["body"].get("type") == "text"]


async def _count(db: AsyncEngine, table: str, tenant: str) -> int:
    return int(await scalar(db, f"SELECT count(*) FROM {table} WHERE tenant_id = :t", t=tenant))  # noqa: S608


async def test_a_username_only_customer_is_one_contact_and_one_conversation_when_they_share_their_number(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, business_factory: BusinessFactory) -> None:
    business, ann = await _shop(api, db, business_factory)
    username = f"fan.{random.getrandbits(32):08x}"
    first = await _writes(sim, db, business, "how long does delivery take?", username=username)
    assert first["wa_id"] is None and first["user_id"].startswith("US.")
    bsuid = first["user_id"]
    key = business.conversation(bsuid)
    assert await scalar(db, "SELECT conversation_key FROM messages WHERE wamid = :w", w=first["wamid"]) == key

    async def to_them(text: str) -> list[dict[str, Any]]:
        return [b for b in await _sent(sim, business) if b["text"]["body"] == text]

    [ai] = await wait_for(lambda: to_them(ANSWER), what="the AI's answer at Meta")
    assert ai["recipient"] == bsuid and "to" not in ai  # no number: addressed by BSUID

    view = (await api.get(f"/v1/conversations/{key}", headers=business.auth)).json()
    assert (view["wa_id"], view["phone"], view["user_id"], view["username"]) == (bsuid, None, bsuid, username)

    reply = await api.post(f"/v1/conversations/{key}/reply", headers=ann,
                           json={"message": {"type": "text", "text": {"body": "Ann here, anything else?"}}})
    assert reply.status_code == 202, reply.text
    [human] = await wait_for(lambda: to_them("Ann here, anything else?"), what="the agent's reply at Meta")
    assert human["recipient"] == bsuid and "to" not in human
    # Their statuses name the customer by BSUID only (recipient_user_id, contacts without wa_id): still theirs.
    async def both_read() -> bool:
        return await scalar(db, "SELECT count(*) FROM messages WHERE tenant_id = :t AND conversation_key = :k AND "
                                "direction = 'outbound' AND status = 'read'", t=business.tenant_id, k=key) == 2

    await wait_for(both_read, what="both replies read")

    phone = f"9198{random.randrange(10**8):08d}"
    later = await _writes(sim, db, business, "thanks, here is my number", **{"from": phone, "username": username})
    assert (later["wa_id"], later["user_id"]) == (phone, bsuid)  # Meta: the same person, the same BSUID
    assert await scalar(db, "SELECT conversation_key FROM messages WHERE wamid = :w", w=later["wamid"]) == key
    assert await _count(db, "conversations", business.tenant_id) == 1
    [contact] = await rows(db, "SELECT wa_id, phone, user_id, username FROM contacts WHERE tenant_id = :t",
                           t=business.tenant_id)
    assert tuple(contact) == (bsuid, phone, bsuid, username)
    for q in (f"@{username}", phone[-6:]):  # the inbox finds them by username and by the number they shared
        found = (await api.get("/v1/conversations", headers=business.auth, params={"q": q})).json()
        assert [c["key"] for c in found["items"]] == [key], (q, found)
    listed = (await api.get("/v1/contacts", headers=business.auth, params={"q": f"@{username}"})).json()["items"]
    assert [(c["wa_id"], c["phone"], c["user_id"], c["username"]) for c in listed] == [
        (bsuid, f"+{phone}", bsuid, username)]

    # A send naming them by their number now reaches the same conversation (and Meta by BSUID).
    sent = await api.post("/v1/messages", headers=business.auth,
                          json={"to": phone, "type": "text", "text": {"body": "Got it."}})
    assert sent.status_code == 202 and sent.json()["conversation_key"] == key, sent.text
    [by_number] = await wait_for(lambda: to_them("Got it."), what="the send by number at Meta")
    assert by_number["recipient"] == bsuid
    assert await _count(db, "conversations", business.tenant_id) == 1


async def test_a_conversation_keyed_by_number_keeps_its_key_and_statuses_link_a_bsuid(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, post: Poster,
        business_factory: BusinessFactory) -> None:
    business = await business_factory("identity keeps")
    phone = f"9197{random.randrange(10**8):08d}"
    # Before BSUIDs: Meta's old shape (no user_id) starts the conversation, keyed by the number.
    old = payloads.envelope(business.waba_id, [payloads.messages_change(
        business.phone_number_id, contacts=[{"profile": {"name": "Old"}, "wa_id": phone}],
        messages=[payloads.text_message(phone, "hello from before")])])
    assert (await post(old)).status_code == 200
    key = business.conversation(phone)
    await wait_for(lambda: scalar(db, "SELECT count(*) FROM conversations WHERE key = :k", k=key),
                   what="the conversation keyed by number")
    # Today's shape adds the BSUID: the key stays the number's, the contact learns the BSUID.
    now = await _writes(sim, db, business, "hello again", **{"from": phone})
    assert await scalar(db, "SELECT conversation_key FROM messages WHERE wamid = :w", w=now["wamid"]) == key
    # A message naming them by BSUID only (no number) still lands there.
    hidden_wamid = payloads.new_wamid()
    hidden = payloads.envelope(business.waba_id, [payloads.messages_change(
        business.phone_number_id, contacts=[{"profile": {"name": "Old"}, "user_id": now["user_id"]}],
        messages=[{"from_user_id": now["user_id"], "id": hidden_wamid, "timestamp": "1700000000", "type": "text",
                   "text": {"body": "number hidden"}}])])
    assert (await post(hidden)).status_code == 200
    assert await wait_for(lambda: scalar(db, "SELECT conversation_key FROM messages WHERE wamid = :w",
                                         w=hidden_wamid), what="the BSUID-only message") == key
    assert await _count(db, "conversations", business.tenant_id) == 1
    assert tuple((await rows(db, "SELECT wa_id, user_id FROM contacts WHERE tenant_id = :t",
                             t=business.tenant_id))[0]) == (phone, now["user_id"])

    # A status webhook's contacts ({wa_id, user_id}) link a number and its BSUID before the person ever wrote.
    newcomer, their_bsuid = f"9196{random.randrange(10**8):08d}", f"US.{random.randrange(10**19):019d}"
    status = payloads.status(payloads.new_wamid(), "sent", newcomer)
    assert (await post(payloads.envelope(business.waba_id, [payloads.messages_change(
        business.phone_number_id, contacts=[{"wa_id": newcomer, "user_id": their_bsuid}],
        statuses=[status])]))).status_code == 200
    linked = await wait_for(lambda: scalar(db, "SELECT canonical FROM contact_identities WHERE tenant_id = :t AND "
                                               "identity = :b", t=business.tenant_id, b=their_bsuid),
                            what="the status's BSUID linked")
    assert linked == newcomer
    bsuid_only = payloads.envelope(business.waba_id, [payloads.messages_change(
        business.phone_number_id, contacts=[{"profile": {"name": "New"}, "user_id": their_bsuid}],
        messages=[{"from_user_id": their_bsuid, "id": payloads.new_wamid(), "timestamp": status["timestamp"],
                   "type": "text", "text": {"body": "hi"}}])])
    assert (await post(bsuid_only)).status_code == 200
    wamid = bsuid_only["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    assert await wait_for(lambda: scalar(db, "SELECT conversation_key FROM messages WHERE wamid = :w", w=wamid),
                          what="the newcomer's message") == business.conversation(newcomer)


async def test_a_campaign_reaches_a_username_only_customer_by_recipient(
        api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine, business_factory: BusinessFactory) -> None:
    business = await business_factory("identity campaign")
    name, components = "identity_promo", [{"type": "BODY", "text": "Hello, our sale starts today"}]
    added = await sim.post("/_sim/templates", json={"waba_id": business.waba_id, "name": name, "language": "en_US",
                                                    "status": "APPROVED", "category": "MARKETING"})
    assert added.status_code < 300, added.text
    async with db.begin() as conn:  # approved in the registry, as a sync would leave it
        await conn.execute(text(
            "INSERT INTO message_templates (id, tenant_id, waba_id, name, language, category, status, "
            "parameter_format, components, status_at) VALUES (:id, :t, :w, :n, 'en_US', 'MARKETING', 'APPROVED', "
            "'positional', CAST(:c AS jsonb), now())"),
            {"id": template_id(business.tenant_id, business.waba_id, name, "en_US"), "t": business.tenant_id,
             "w": business.waba_id, "n": name, "c": json.dumps(components)})
    fan = await _writes(sim, db, business, "hi", username=f"promo.{random.getrandbits(32):08x}")
    phone = f"9195{random.randrange(10**8):08d}"
    await _writes(sim, db, business, "hello", **{"from": phone})
    made = await api.post("/v1/campaigns", headers=business.auth, json={
        "name": "everyone", "template": {"name": name, "language": "en_US"}, "audience": {"kind": "segment",
                                                                                         "filter": {}}})
    assert made.status_code == 201, made.text
    launched = await api.post(f"/v1/campaigns/{made.json()['id']}/launch", headers=business.auth)
    assert launched.status_code == 200, launched.text

    async def addressed() -> set[tuple[str, str]] | None:
        log = (await sim.get("/_sim/requests", params={"phone_number_id": business.phone_number_id})).json()["data"]
        found = {(k, e["body"][k]) for e in log if e["status"] == 200 and e["body"].get("type") == "template"
                 for k in ("to", "recipient") if k in e["body"]}
        return found if len(found) == 2 else None

    assert await wait_for(addressed, timeout=120, what="both campaign messages at Meta") == {
        ("recipient", fan["user_id"]), ("to", phone)}


async def test_an_unknown_graph_path_answers_metas_error_shape(sim: httpx.AsyncClient) -> None:
    for method in ("GET", "POST"):
        answer = await sim.request(method, "/v23.0/1234567890/no_such_edge")
        assert answer.status_code == 400
        error = answer.json()["error"]
        assert (error["type"], error["code"], error["error_subcode"]) == ("GraphMethodException", 100, 33)
        assert f"Unsupported {method.lower()} request. Object with ID '1234567890'" in error["message"]
        assert "detail" not in answer.json()
