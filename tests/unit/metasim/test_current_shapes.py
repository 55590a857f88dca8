"""metasim: Meta's current shapes (BSUIDs, usernames, username-only customers, contacts in statuses, context on
interactive replies), sends by ``recipient``, the carousel and request_contact_info types, and Graph's error for
paths it does not know; each webhook is read back by Aerostic's own splitter."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from metasim.customers import Customers, bsuid
from schemas.events import InboundMessage, StatusUpdate
from streams.split import split_webhook
from tests.unit.metasim.test_app import CUSTOMER, NUMBER, harness, text

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _messages(hooks: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Every (change value, message) pair the simulator posted."""
    return [(c["value"], m) for body in hooks for e in body["entry"] for c in e["changes"]
            for m in c["value"].get("messages", [])]


async def test_a_customer_with_a_number_has_a_bsuid_a_parent_and_from_user_id() -> None:
    async with harness() as h:
        answer = (await h.customer_writes()).json()
        [(value, message)] = _messages(h.hooks)
        [contact] = value["contacts"]
        assert contact["wa_id"] == message["from"] == CUSTOMER == answer["wa_id"]
        assert contact["user_id"] == message["from_user_id"] == answer["user_id"] == bsuid("biz-1", f"p:{CUSTOMER}")
        assert contact["parent_user_id"].startswith("US.ENT.")
        [event] = split_webhook(json.dumps(h.hooks[0]), received_at=NOW)
        assert isinstance(event, InboundMessage)
        assert (event.wa_id, event.phone, event.user_id) == (CUSTOMER, CUSTOMER, contact["user_id"])


async def test_a_username_only_customer_has_no_number_and_keeps_the_bsuid_when_sharing_one() -> None:
    async with harness() as h:
        first = (await h.client.post("/_sim/customers/messages", json={
            "phone_number_id": NUMBER, "username": "shop.fan", "text": "hi"})).json()
        [(value, message)] = _messages(h.hooks)
        assert "from" not in message and "wa_id" not in value["contacts"][0]
        assert message["from_user_id"] == first["user_id"] == value["contacts"][0]["user_id"]
        assert value["contacts"][0]["profile"]["username"] == "shop.fan" and first["wa_id"] is None
        later = (await h.client.post("/_sim/customers/messages", json={
            "phone_number_id": NUMBER, "username": "shop.fan", "from": "+91 98000 00001", "text": "my number"})).json()
        assert (later["wa_id"], later["user_id"]) == ("919800000001", first["user_id"])
        nobody = await h.client.post("/_sim/customers/messages", json={"phone_number_id": NUMBER, "text": "?"})
        assert nobody.status_code == 422


async def test_a_send_by_recipient_reaches_a_username_only_customer_and_its_statuses_name_the_bsuid() -> None:
    async with harness() as h:
        user_id = (await h.client.post("/_sim/customers/messages", json={
            "phone_number_id": NUMBER, "username": "shop.fan", "text": "hi"})).json()["user_id"]
        body = {"messaging_product": "whatsapp", "recipient": user_id, "type": "text", "text": {"body": "hello"}}
        response = await h.send(body)
        assert response.status_code == 200, response.text
        assert response.json()["contacts"] == [{"input": user_id, "user_id": user_id}]
        statuses = await h.statuses()
        assert [s["status"] for s in statuses] == ["sent", "delivered", "read"]
        assert all(s["recipient_user_id"] == user_id and "recipient_id" not in s for s in statuses)
        status_bodies = [b for b in h.hooks if b["entry"][0]["changes"][0]["value"].get("statuses")]
        assert all(b["entry"][0]["changes"][0]["value"]["contacts"] == [{"user_id": user_id}] for b in status_bodies)
        events = [e for b in status_bodies for e in split_webhook(json.dumps(b), received_at=NOW)]
        assert all(isinstance(e, StatusUpdate) and (e.recipient_id, e.phone, e.user_id) == (user_id, None, user_id)
                   for e in events)


async def test_statuses_of_a_send_by_number_carry_contacts_with_wa_id_and_user_id() -> None:
    async with harness() as h:
        await h.customer_writes()
        assert (await h.send(text())).status_code == 200
        await h.statuses()
        contacts = [b["entry"][0]["changes"][0]["value"]["contacts"] for b in h.hooks
                    if b["entry"][0]["changes"][0]["value"].get("statuses")]
        assert contacts and all(c == [{"wa_id": CUSTOMER, "user_id": bsuid("biz-1", f"p:{CUSTOMER}")}]
                                for c in contacts)


async def test_to_and_recipient_together_or_a_bad_bsuid_are_refused() -> None:
    async with harness() as h:
        await h.customer_writes()
        both = await h.send({**text(), "recipient": "US.123"})
        bad = await h.send({"messaging_product": "whatsapp", "recipient": "not-a-bsuid", "text": {"body": "x"}})
        none = await h.send({"messaging_product": "whatsapp", "text": {"body": "x"}})
        for answer, field in ((both, "recipient"), (bad, "recipient"), (none, "to")):
            assert answer.status_code == 400 and answer.json()["error"]["code"] == 100
            assert field in answer.json()["error"]["error_data"]["details"]


async def test_every_interactive_reply_has_a_context() -> None:
    async with harness() as h:
        await h.customer_writes()
        wamid = (await h.send(text())).json()["messages"][0]["id"]
        await h.customer_writes(type="interactive_button_reply", id="yes", title="Yes")
        await h.customer_writes(type="button", payload="STOP")
        await h.customer_writes(type="text", text="plain")
        replies = [m for _, m in _messages(h.hooks)]
        assert [m.get("context", {}).get("id") for m in replies] == [None, wamid, wamid, None]


async def test_carousel_and_request_contact_info_are_accepted_and_checked() -> None:
    card = {"card_index": 0, "type": "cta_url", "header": {"type": "image", "image": {"link": "https://x.test/a.png"}},
            "body": {"text": "A"}, "action": {"name": "cta_url", "parameters": {"display_text": "Buy",
                                                                                 "url": "https://x.test/a"}}}
    carousel = {"type": "carousel", "body": {"text": "Our picks"},
                "action": {"cards": [card, {**card, "card_index": 1}]}}
    ask = {"type": "request_contact_info", "body": {"text": "Share your number?"},
           "action": {"name": "request_contact_info"}}
    async with harness() as h:
        await h.customer_writes()
        for interactive in (carousel, ask):
            answer = await h.send({"messaging_product": "whatsapp", "to": CUSTOMER, "type": "interactive",
                                   "interactive": interactive})
            assert answer.status_code == 200, answer.text
        one_card = {**carousel, "action": {"cards": [card]}}
        misnumbered = {**carousel, "action": {"cards": [card, card]}}
        wrong_name = {**ask, "action": {"name": "send_location"}}
        for interactive in (one_card, misnumbered, wrong_name):
            answer = await h.send({"messaging_product": "whatsapp", "to": CUSTOMER, "type": "interactive",
                                   "interactive": interactive})
            assert answer.status_code == 400 and answer.json()["error"]["code"] == 100, interactive


async def test_unknown_graph_paths_answer_graphs_error_and_the_admin_api_keeps_its_own() -> None:
    async with harness() as h:
        for method in ("GET", "POST", "DELETE"):
            answer = await h.client.request(method, "/v23.0/98765/unknown_edge")
            error = answer.json()["error"]
            assert answer.status_code == 400 and "detail" not in answer.json()
            assert (error["type"], error["code"], error["error_subcode"]) == ("GraphMethodException", 100, 33)
            assert error["message"].startswith(f"Unsupported {method.lower()} request. Object with ID '98765'")
        admin = await h.client.post("/_sim/tokens/revoke", json={"token": "nope"})
        assert admin.status_code == 404 and "detail" in admin.json()


def test_customers_are_found_by_number_username_and_bsuid() -> None:
    book = Customers()
    fan = book.meet("biz", phone=None, username="fan")
    assert fan.key == fan.user_id and book.find("biz", fan.user_id) is fan
    assert book.meet("biz", phone="15550001", username="fan") is fan and fan.key == "15550001"
    assert book.find("biz", "15550001") is fan and book.meet("biz", phone="15550001", username=None) is fan
    assert book.meet("other", phone="15550001", username=None).user_id != fan.user_id  # scoped to the business
