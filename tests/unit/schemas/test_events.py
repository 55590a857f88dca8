"""schemas.events codec and schemas.routing topic/key selection."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas import catalogue, routing
from schemas.events import (
    SCHEMA_VERSION,
    AccountEvent,
    DirectoryEntry,
    Event,
    InboundMessage,
    RoutedEvent,
    StatusUpdate,
    UnroutableEvent,
    derived_event_id,
)
from streams.split import split_webhook
from tests.unit._vectors import WEBHOOK_FILES, WEBHOOK_IDS, changes, load

AT = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
SENT_AT = datetime(2025, 6, 1, 11, 59, 30, tzinfo=UTC)


def inbound(**overrides: object) -> InboundMessage:
    fields: dict[str, object] = {
        "event_id": derived_event_id("in", "pn-1", "wamid.in-1"),
        "tenant_id": "tenant-1",
        "phone_number_id": "pn-1",
        "waba_id": "waba-1",
        "display_phone_number": "15550001111",
        "received_at": AT,
        "wamid": "wamid.in-1",
        "wa_id": "15551234567",
        "profile_name": "Zoë ☕",
        "type": "text",
        "timestamp": SENT_AT,
        "text": "hello \u00e9\u4e16",
        "payload": {"id": "wamid.in-1", "text": {"body": "hello"}, "nested": {"n": None, "l": [1, 2.5]}},
    }
    fields.update(overrides)
    return InboundMessage.model_validate(fields)


def status(**overrides: object) -> StatusUpdate:
    fields: dict[str, object] = {
        "event_id": derived_event_id("st", "pn-1", "wamid.out-1", "failed", "1"),
        "phone_number_id": "pn-1",
        "waba_id": "waba-1",
        "received_at": AT,
        "wamid": "wamid.out-1",
        "recipient_id": "15557654321",
        "status": "failed",
        "timestamp": SENT_AT,
        "error_code": 130472,
        "error_title": "User's number is part of an experiment",
        "error_details": "details",
        "biz_opaque_callback_data": "tracker",
        "payload": {"id": "wamid.out-1", "status": "failed"},
    }
    fields.update(overrides)
    return StatusUpdate.model_validate(fields)


def account(**overrides: object) -> AccountEvent:
    fields: dict[str, object] = {
        "event_id": derived_event_id("acct", "waba-1", "1", "0", "account_update", "{}"),
        "phone_number_id": "",
        "waba_id": "waba-1",
        "received_at": AT,
        "field": "account_update",
        "event": "PARTNER_ADDED",
        "payload": {"field": "account_update", "entry_time": None, "value": {"event": "PARTNER_ADDED"}},
    }
    fields.update(overrides)
    return AccountEvent.model_validate(fields)


EVENTS: dict[str, Event] = {
    "inbound": inbound(),
    "inbound-minimal": inbound(tenant_id=None, display_phone_number=None, profile_name=None, text=None),
    "status-failed": status(),
    "status-minimal": status(status="read", error_code=None, error_title=None, error_details=None,
                             biz_opaque_callback_data=None),
    "account": account(),
    "account-with-phone": account(phone_number_id="pn-1", field="calls", event=None, tenant_id="t"),
    "unroutable-inbound": UnroutableEvent(event_id="u1", phone_number_id="pn-1", inner=inbound()),
    "unroutable-status": UnroutableEvent(event_id="u2", phone_number_id="pn-1", inner=status()),
    "unroutable-account": UnroutableEvent(event_id="u3", phone_number_id="waba-1", inner=account()),
    "directory-attached": DirectoryEntry(event_id="d1", phone_number_id="pn-1", tenant_id="tenant-1",
                                         waba_id="waba-1", display_phone_number="15550001111"),
}


@pytest.mark.parametrize("name", list(EVENTS))
def test_round_trip(name: str) -> None:
    event = EVENTS[name]
    encoded = event.encode()
    decoded = type(event).decode(encoded)

    assert isinstance(encoded, bytes)
    assert type(decoded) is type(event)
    assert decoded == event
    assert decoded.model_dump() == event.model_dump()
    assert type(event).decode(encoded.decode()) == event
    assert json.loads(encoded)["schema_version"] == SCHEMA_VERSION


@pytest.mark.parametrize("name", list(EVENTS))
def test_encode_omits_none_and_decode_ignores_unknown_fields(name: str) -> None:
    event = EVENTS[name]
    data = json.loads(event.encode())
    assert None not in data.values()
    data["added_in_a_later_version"] = {"x": 1}
    assert type(event).decode(json.dumps(data)) == event


def test_datetimes_keep_their_instant() -> None:
    decoded = InboundMessage.decode(inbound().encode())
    assert decoded.received_at == AT
    assert decoded.timestamp == SENT_AT
    assert decoded.received_at.utcoffset() is not None


def test_detached_directory_entry_round_trips() -> None:
    detached = DirectoryEntry(event_id="d2", phone_number_id="pn-1", tenant_id=None, status="detached")
    assert DirectoryEntry.decode(detached.encode()) == detached


@pytest.mark.parametrize("name", ["unroutable-inbound", "unroutable-status", "unroutable-account"])
def test_unroutable_keeps_the_inner_concrete_type(name: str) -> None:
    event = EVENTS[name]
    assert isinstance(event, UnroutableEvent)
    decoded = UnroutableEvent.decode(event.encode())

    assert type(decoded.inner) is type(event.inner)
    assert decoded.inner == event.inner


def _split_all(path: Path) -> list[RoutedEvent]:
    return split_webhook(path.read_bytes(), received_at=AT)


@pytest.mark.parametrize("path", WEBHOOK_FILES, ids=WEBHOOK_IDS)
def test_split_events_round_trip(path: Path) -> None:
    events = _split_all(path)
    assert events
    for event in events:
        assert type(event).decode(event.encode()) == event
        key = event.phone_number_id or event.waba_id
        wrapped = UnroutableEvent(event_id=event.event_id, phone_number_id=key, inner=event)
        back = UnroutableEvent.decode(wrapped.encode())
        assert type(back.inner) is type(event)
        assert back.inner == event


# --- routing -------------------------------------------------------------------------------------


def test_destination_of_inbound() -> None:
    topic, key = routing.destination(inbound())
    assert topic is catalogue.INBOUND
    assert topic.name == "wa.inbound"
    assert key == "pn-1:15551234567" == catalogue.conversation_key("pn-1", "15551234567")


def test_destination_of_status() -> None:
    topic, key = routing.destination(status())
    assert topic is catalogue.STATUSES
    assert topic.name == "wa.statuses"
    assert key == "pn-1:15557654321"


@pytest.mark.parametrize("event", [account(), account(phone_number_id="pn-9", field="calls")])
def test_destination_of_account_event_is_keyed_by_waba(event: AccountEvent) -> None:
    topic, key = routing.destination(event)
    assert topic is catalogue.ACCOUNT_EVENTS
    assert topic.name == "wa.account.events"
    assert key == "waba-1"


def test_dedupe_keys() -> None:
    assert routing.dedupe_key(inbound()) == "m:pn-1:wamid.in-1"
    assert routing.dedupe_key(status()) == "s:pn-1:wamid.out-1:failed"
    assert routing.dedupe_key(status(status="delivered")) == "s:pn-1:wamid.out-1:delivered"
    assert routing.dedupe_key(account()) is None


def test_dedupe_key_separates_phone_numbers() -> None:
    assert routing.dedupe_key(inbound()) != routing.dedupe_key(inbound(phone_number_id="pn-2"))


@pytest.mark.parametrize(
    ("event", "key"),
    [
        (inbound(), "pn-1"),
        (status(), "pn-1"),
        (account(), "waba-1"),
        (account(phone_number_id="pn-3"), "pn-3"),
    ],
)
def test_unroutable(event: InboundMessage | StatusUpdate | AccountEvent, key: str) -> None:
    topic, topic_key, wrapped = routing.unroutable(event)
    assert topic is catalogue.UNROUTABLE
    assert topic.name == "wa.unroutable"
    assert topic_key == key == wrapped.phone_number_id
    assert wrapped.event_id == event.event_id
    assert wrapped.inner == event


@pytest.mark.parametrize("path", WEBHOOK_FILES, ids=WEBHOOK_IDS)
def test_destinations_of_vector_events(path: Path) -> None:
    """Topic and key of every event of every vector, expected from the raw JSON."""
    raw = load(path)
    expected: list[tuple[str, str, str | None]] = []
    for entry, change in changes(raw):
        value = change["value"]
        pnid = (value.get("metadata") or {}).get("phone_number_id")
        if change["field"] == "messages" and pnid:
            for m in value.get("messages", []):
                expected.append(("wa.inbound", f"{pnid}:{m['from']}", f"m:{pnid}:{m['id']}"))
            for s in value.get("statuses", []):
                expected.append(
                    ("wa.statuses", f"{pnid}:{s['recipient_id']}", f"s:{pnid}:{s['id']}:{s['status']}")
                )
            if value.get("errors") or not (value.get("messages") or value.get("statuses")):
                expected.append(("wa.account.events", entry["id"], None))
        else:
            expected.append(("wa.account.events", entry["id"], None))

    actual = []
    for event in _split_all(path):
        topic, key = routing.destination(event)
        assert isinstance(event, topic.value or type(None))
        actual.append((topic.name, key, routing.dedupe_key(event)))
    assert actual == expected
