"""streams.split.split_parts: a part of a webhook that cannot be read does not lose the rest."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from metasim import payloads
from schemas.events import AccountEvent, InboundMessage, StatusUpdate
from streams.split import split_parts, split_webhook

AT = datetime(2026, 1, 1, tzinfo=UTC)
PNID, WABA, CUSTOMER = "106540352242922", "102290129340398", "16505551234"


def _with(*changes: dict) -> bytes:
    body = payloads.customer_text(PNID, WABA, CUSTOMER, "hello", wamid="wamid.OK")
    body["entry"][0]["changes"].extend(changes)
    return json.dumps(body).encode()


def test_an_account_update_without_its_event_is_set_aside_and_the_message_kept() -> None:
    split = split_parts(_with({"field": "account_update", "value": {"ban_info": {}}}), received_at=AT)
    assert [type(e) for e in split.events] == [InboundMessage]
    assert split.events[0].wamid == "wamid.OK"  # type: ignore[union-attr]
    [bad] = split.unreadable
    assert bad.where == "entry[0].changes[1]"
    assert "event" in bad.reason
    assert bad.part == {"field": "account_update", "value": {"ban_info": {}}}
    with pytest.raises(ValueError, match=r"entry\[0\]\.changes\[1\]"):
        split_webhook(_with({"field": "account_update", "value": {"ban_info": {}}}), received_at=AT)


def test_one_bad_message_or_status_among_good_ones() -> None:
    body = payloads.customer_text(PNID, WABA, CUSTOMER, "first", wamid="wamid.A")
    value = body["entry"][0]["changes"][0]["value"]
    value["messages"].append({"from": CUSTOMER, "timestamp": "1700000000", "type": "text"})  # no id
    value["messages"].append({**value["messages"][0], "id": "wamid.B"})
    value["statuses"] = [{"id": "wamid.S", "status": "read", "timestamp": "1700000001", "recipient_id": CUSTOMER},
                         {"status": "read"}]
    split = split_parts(json.dumps(body), received_at=AT)
    assert [(type(e), getattr(e, "wamid", None)) for e in split.events] == [
        (InboundMessage, "wamid.A"), (InboundMessage, "wamid.B"), (StatusUpdate, "wamid.S")]
    assert [u.where for u in split.unreadable] == ["entry[0].changes[0].value.messages[1]",
                                                  "entry[0].changes[0].value.statuses[1]"]


def test_a_bad_entry_does_not_lose_the_next_entry() -> None:
    good = payloads.customer_text(PNID, WABA, CUSTOMER, "hi", wamid="wamid.C")
    body = {"object": "whatsapp_business_account", "entry": [{"changes": []}, *good["entry"]]}
    split = split_parts(json.dumps(body), received_at=AT)
    assert [e.event_id for e in split.events] == [e.event_id for e in split_webhook(json.dumps(good), received_at=AT)]
    assert [u.where for u in split.unreadable] == ["entry[0]"]


@pytest.mark.parametrize("body", [b"[]", b'"text"', b'{"entry": {"not": "a list"}}', b"{nope"])
def test_a_body_that_is_no_webhook_raises(body: bytes) -> None:
    with pytest.raises(ValueError):
        split_parts(body, received_at=AT)


def test_the_same_account_change_at_another_index_is_the_same_event() -> None:
    change = {"field": "account_update", "value": {"event": "ACCOUNT_DELETED"}}
    alone = split_parts(_with(change), received_at=AT).events[1]
    behind = split_parts(_with({"field": "account_update", "value": {"event": "PARTNER_ADDED"}}, change),
                         received_at=AT).events[2]
    assert isinstance(alone, AccountEvent) and isinstance(behind, AccountEvent)
    assert alone.event_id == behind.event_id
