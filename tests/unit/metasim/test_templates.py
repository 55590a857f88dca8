"""metasim.templates: template CRUD with Meta's shapes, review webhooks, pausing, pacing and 131049, in-process."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.unit.metasim.test_app import CUSTOMER, TOKEN, WABA, Harness, error_code, harness

AUTH = {"Authorization": f"Bearer {TOKEN}"}
CREATE = {"name": "order_shipped", "language": "en_US", "category": "MARKETING", "components": [
    {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::aW1n"]}},
    {"type": "BODY", "text": "Hi {{1}}, order {{2}} shipped.", "example": {"body_text": [["Ann", "42"]]}},
    {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Track", "url": "https://x.test/{{1}}",
                                     "example": ["https://x.test/42"]}]}]}
GOOD = [{"type": "header", "parameters": [{"type": "image", "image": {"link": "https://x.test/a.jpg"}}]},
        {"type": "body", "parameters": [{"type": "text", "text": "Ann"}, {"type": "text", "text": "42"}]},
        {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "42"}]}]


def send_body(components: list[dict[str, Any]], name: str = "order_shipped") -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "to": CUSTOMER, "type": "template",
            "template": {"name": name, "language": {"code": "en_US"}, "components": components}}


def template_hooks(h: Harness, field: str) -> list[dict[str, Any]]:
    return [c["value"] for body in h.hooks for e in body["entry"] for c in e["changes"] if c["field"] == field]


async def settle(h: Harness) -> None:
    """Wait for the simulator's background work (reviews, webhooks) to finish."""
    async with asyncio.timeout(5):
        while h.sim.background:
            await asyncio.gather(*list(h.sim.background))


async def approved(h: Harness) -> str:
    created = await h.client.post(f"/v23.0/{WABA}/message_templates", json=CREATE, headers=AUTH)
    assert created.status_code == 200 and created.json()["status"] == "PENDING"
    await settle(h)
    template_id: str = created.json()["id"]
    return template_id


async def test_create_is_reviewed_then_listed_and_sendable() -> None:
    async with harness(templates={"review_s": 0}) as h:
        template_id = await approved(h)
        [event] = template_hooks(h, "message_template_status_update")
        assert event["event"] == "APPROVED" and event["message_template_id"] == int(template_id)
        assert event["message_template_name"] == "order_shipped" and event["message_template_category"] == "MARKETING"
        listed = (await h.client.get(f"/v23.0/{WABA}/message_templates", headers=AUTH)).json()["data"]
        assert {t["name"]: t["status"] for t in listed} == {"order_update": "APPROVED", "order_shipped": "APPROVED"}
        one = (await h.client.get(f"/v23.0/{template_id}", params={"fields": "name,status"}, headers=AUTH)).json()
        assert one == {"id": template_id, "name": "order_shipped", "status": "APPROVED"}
        response = await h.send(send_body(GOOD))
        assert response.status_code == 200


async def test_creation_errors_have_metas_shape() -> None:
    async with harness(templates={"review_s": 0, "creations_per_hour": 1}) as h:
        bad = await h.client.post(f"/v23.0/{WABA}/message_templates", json={**CREATE, "name": "Bad Name"},
                                  headers=AUTH)
        assert bad.status_code == 400 and error_code(bad) == 100
        assert "lowercase" in bad.json()["error"]["error_user_msg"]
        await approved(h)
        again = await h.client.post(f"/v23.0/{WABA}/message_templates", json=CREATE, headers=AUTH)
        assert again.json()["error"]["error_subcode"] == 2388024
        third = await h.client.post(f"/v23.0/{WABA}/message_templates", json={**CREATE, "name": "third"},
                                    headers=AUTH)
        assert error_code(third) == 4  # one creation per hour in this test
        foreign = await h.client.post("/v23.0/other-waba/message_templates", json=CREATE, headers=AUTH)
        assert error_code(foreign) == 100 and foreign.json()["error"]["error_subcode"] == 33


async def test_review_may_reject() -> None:
    async with harness(templates={"review_s": 0, "decision": "REJECTED"}) as h:
        await approved(h)
        [event] = template_hooks(h, "message_template_status_update")
        assert event["event"] == "REJECTED" and event["rejection_info"]["reason"] == "INVALID_FORMAT"
        assert error_code(await h.send(send_body(GOOD))) == 132001


async def test_sends_are_checked_against_the_components() -> None:
    async with harness(templates={"review_s": 0}) as h:
        await approved(h)
        short = [GOOD[0], {"type": "body", "parameters": [{"type": "text", "text": "Ann"}]}, GOOD[2]]
        assert error_code(await h.send(send_body(short))) == 132000
        text_header = [{"type": "header", "parameters": [{"type": "text", "text": "x"}]}, *GOOD[1:]]
        wrong = await h.send(send_body(text_header))
        assert error_code(wrong) == 132012 and "expected IMAGE, received TEXT" in wrong.text
        assert error_code(await h.send(send_body(GOOD, name="nope"))) == 132001


async def test_pause_then_disable_answer_132015_and_132016_with_webhooks() -> None:
    async with harness(templates={"review_s": 0}) as h:
        await approved(h)
        ref = {"waba_id": WABA, "name": "order_shipped", "language": "en_US"}
        assert (await h.client.post("/_sim/templates/status", json={**ref, "event": "PAUSED"})).status_code == 200
        assert error_code(await h.send(send_body(GOOD))) == 132015
        [quality] = template_hooks(h, "message_template_quality_update")
        assert (quality["previous_quality_score"], quality["new_quality_score"]) == ("UNKNOWN", "RED")
        paused = template_hooks(h, "message_template_status_update")[-1]
        assert paused["event"] == "PAUSED" and paused["other_info"]["title"] == "FIRST_PAUSE"
        await h.client.post("/_sim/templates/status", json={**ref, "event": "DISABLED"})
        assert error_code(await h.send(send_body(GOOD))) == 132016
        await h.client.post("/_sim/templates/category", json={**ref, "category": "UTILITY"})
        [category] = template_hooks(h, "template_category_update")
        assert (category["previous_category"], category["new_category"]) == ("MARKETING", "UTILITY")


async def test_marketing_limit_is_a_failed_status_131049() -> None:
    async with harness(templates={"review_s": 0}) as h:
        await approved(h)
        await h.client.post("/_sim/recipients/marketing-limited", json={"wa_id": CUSTOMER})
        assert (await h.send(send_body(GOOD))).status_code == 200
        [status] = await h.statuses()
        assert status["status"] == "failed" and status["errors"][0]["code"] == 131049


async def test_pacing_holds_sends_after_the_first_batch() -> None:
    async with harness(templates={"review_s": 0, "pacing_batch": 1, "pacing_hold_s": 0}) as h:
        await approved(h)
        await h.client.post("/_sim/templates/pacing", json={"waba_id": WABA, "name": "order_shipped",
                                                           "language": "en_US"})
        first, second = [(await h.send(send_body(GOOD))).json()["messages"][0]["message_status"] for _ in range(2)]
        assert (first, second) == ("accepted", "held_for_quality_assessment")


async def test_delete_removes_every_language_and_sends_deleted() -> None:
    async with harness(templates={"review_s": 0}) as h:
        await approved(h)
        deleted = await h.client.request("DELETE", f"/v23.0/{WABA}/message_templates",
                                          params={"name": "order_shipped"}, headers=AUTH)
        assert deleted.json() == {"success": True}
        await settle(h)
        assert template_hooks(h, "message_template_status_update")[-1]["event"] == "DELETED"
        missing = await h.client.request("DELETE", f"/v23.0/{WABA}/message_templates",
                                          params={"name": "order_shipped"}, headers=AUTH)
        assert isinstance(missing, httpx.Response) and error_code(missing) == 100


async def test_listing_pages_with_cursors() -> None:
    async with harness(templates={"review_s": 60}) as h:
        for i in range(5):
            await h.client.post(f"/v23.0/{WABA}/message_templates", json={**CREATE, "name": f"t{i}"}, headers=AUTH)
        names, params = [], {"limit": "2"}
        while True:
            page = (await h.client.get(f"/v23.0/{WABA}/message_templates", params=params, headers=AUTH)).json()
            names += [t["name"] for t in page["data"]]
            if "next" not in page.get("paging", {}):
                break
            params = {"limit": "2", "after": page["paging"]["cursors"]["after"]}
        assert names == ["order_update", "t0", "t1", "t2", "t3", "t4"]


async def test_an_edit_is_announced_with_the_new_texts() -> None:
    async with harness(templates={"review_s": 0}) as h:
        template_id = await approved(h)
        edited = [{"type": "BODY", "text": "Hello {{1}}, order {{2}} left.", "example": {"body_text": [["A", "1"]]}},
                  {"type": "FOOTER", "text": "Shop"}]
        response = await h.client.post(f"/v23.0/{template_id}", json={"components": edited}, headers=AUTH)
        assert response.json() == {"success": True}
        await settle(h)
        [update] = template_hooks(h, "message_template_components_update")
        assert update["message_template_element"] == "Hello {{1}}, order {{2}} left."
        assert update["message_template_footer"] == "Shop" and update["message_template_id"] == int(template_id)
        body = [{"type": "body", "parameters": [{"type": "text", "text": "Ann"}, {"type": "text", "text": "42"}]}]
        assert (await h.send(send_body(body))).status_code == 200  # the header and button are gone
