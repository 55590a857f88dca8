"""streams.split.split_webhook: one event per message, status and other change (data-driven).

Expectations are computed straight from the raw JSON dicts, never by calling the code under test.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from schemas.events import AccountEvent, InboundMessage, RoutedEvent, StatusUpdate
from schemas.meta_enums import MessageType, StatusValue
from streams.split import split_webhook
from tests.unit._vectors import (
    WEBHOOK_FILES,
    WEBHOOK_IDS,
    changes,
    files_where,
    has_messages,
    has_statuses,
    load,
    webhook,
)

MESSAGE_TYPES = {m.value for m in MessageType}
STATUS_VALUES = {s.value for s in StatusValue}
MESSAGE_FILES = files_where(has_messages)
STATUS_FILES = files_where(has_statuses)


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def _ts(raw: str) -> datetime:
    return datetime.fromtimestamp(int(raw), tz=UTC)


def _expected(raw: dict[str, Any]) -> list[tuple[Any, ...]]:
    """(kind, phone_number_id, waba_id, id-or-field, type/status/event) per event, in order."""
    out: list[tuple[Any, ...]] = []
    for entry, change in changes(raw):
        value = change["value"]
        pnid = (value.get("metadata") or {}).get("phone_number_id")
        if change["field"] == "messages" and pnid:
            messages = value.get("messages", [])
            statuses = value.get("statuses", [])
            for m in messages:
                kind = m["type"] if m["type"] in MESSAGE_TYPES else "UNKNOWN"
                out.append(("inbound", pnid, entry["id"], m["id"], kind))
            for s in statuses:
                status = s["status"] if s["status"] in STATUS_VALUES else "UNKNOWN"
                out.append(("status", pnid, entry["id"], s["id"], status))
            # A messages change that carries top-level errors (or nothing at all) is also
            # reported as an account event so the error is not lost.
            if value.get("errors") or not (messages or statuses):
                out.append(("account", pnid, entry["id"], "messages", "errors"))
        else:
            event = value.get("event") if isinstance(value.get("event"), str) else None
            out.append(("account", pnid or "", entry["id"], change["field"], event))
    return out


def _actual(events: list[RoutedEvent]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for e in events:
        if isinstance(e, InboundMessage):
            out.append(("inbound", e.phone_number_id, e.waba_id, e.wamid, e.type))
        elif isinstance(e, StatusUpdate):
            out.append(("status", e.phone_number_id, e.waba_id, e.wamid, e.status))
        elif isinstance(e, AccountEvent):
            out.append(("account", e.phone_number_id, e.waba_id, e.field, e.event))
        else:  # pragma: no cover - a new event class would need its own expectation
            raise AssertionError(f"unexpected event {type(e).__name__}")
    return out


def _split(path: Path, received_at: datetime) -> list[RoutedEvent]:
    return split_webhook(path.read_bytes(), received_at=received_at)


@pytest.mark.parametrize("path", WEBHOOK_FILES, ids=WEBHOOK_IDS)
def test_one_event_per_message_status_and_change(path: Path, received_at: datetime) -> None:
    raw = load(path)
    events = _split(path, received_at)

    assert _actual(events) == _expected(raw)
    assert all(e.received_at == received_at for e in events)


@pytest.mark.parametrize("path", WEBHOOK_FILES, ids=WEBHOOK_IDS)
def test_event_counts_by_kind(path: Path, received_at: datetime) -> None:
    raw = load(path)
    n_messages = n_statuses = n_other = 0
    for _, change in changes(raw):
        if change["field"] == "messages":
            n_messages += len(change["value"].get("messages", []))
            n_statuses += len(change["value"].get("statuses", []))
        else:
            n_other += 1
    events = _split(path, received_at)

    assert sum(isinstance(e, InboundMessage) for e in events) == n_messages
    assert sum(isinstance(e, StatusUpdate) for e in events) == n_statuses
    assert sum(isinstance(e, AccountEvent) and e.field != "messages" for e in events) == n_other


@pytest.mark.parametrize("path", MESSAGE_FILES, ids=_ids(MESSAGE_FILES))
def test_inbound_fields_come_from_raw(path: Path, received_at: datetime) -> None:
    raw = load(path)
    raw_messages = [
        (c["value"], m) for _, c in changes(raw) if c["field"] == "messages" for m in c["value"]["messages"]
    ]
    inbound = [e for e in _split(path, received_at) if isinstance(e, InboundMessage)]

    assert len(inbound) == len(raw_messages) >= 1
    for event, (value, m) in zip(inbound, raw_messages, strict=True):
        assert event.wa_id == m["from"]
        assert event.timestamp == _ts(m["timestamp"])
        assert event.display_phone_number == value["metadata"]["display_phone_number"]
        assert event.payload["id"] == m["id"]
        assert event.payload["from"] == m["from"]
        assert event.conversation_key == f"{value['metadata']['phone_number_id']}:{m['from']}"


def _expected_profile(value: dict[str, Any], wa_id: str) -> str | None:
    contacts = value.get("contacts", [])
    for contact in contacts:
        if contact.get("wa_id") == wa_id and contact.get("profile"):
            return str(contact["profile"]["name"])
    if len(contacts) == 1 and contacts[0].get("profile"):
        return str(contacts[0]["profile"]["name"])
    return None


@pytest.mark.parametrize("path", MESSAGE_FILES, ids=_ids(MESSAGE_FILES))
def test_profile_name_comes_from_contacts(path: Path, received_at: datetime) -> None:
    raw = load(path)
    expected = [
        _expected_profile(c["value"], m["from"])
        for _, c in changes(raw)
        if c["field"] == "messages"
        for m in c["value"]["messages"]
    ]
    inbound = [e for e in _split(path, received_at) if isinstance(e, InboundMessage)]
    assert [e.profile_name for e in inbound] == expected


def test_profile_name_is_matched_by_wa_id(received_at: datetime) -> None:
    raw = webhook("pywa-message-text.json")
    value = raw["entry"][0]["changes"][0]["value"]
    first = value["messages"][0]
    second = {**copy.deepcopy(first), "id": "wamid.second", "from": "15550000002"}
    value["messages"].append(second)
    value["contacts"] = [
        {"profile": {"name": "Second Sender"}, "wa_id": "15550000002"},
        {"profile": {"name": "First Sender"}, "wa_id": first["from"]},
    ]

    events = split_webhook(json.dumps(raw), received_at=received_at)

    assert [(e.wa_id, e.profile_name) for e in events if isinstance(e, InboundMessage)] == [
        (first["from"], "First Sender"),
        ("15550000002", "Second Sender"),
    ]


def test_profile_name_absent_without_contacts(vectors: Path, received_at: datetime) -> None:
    body = (vectors / "webhooks" / "openapi-system-message.json").read_bytes()
    events = split_webhook(body, received_at=received_at)
    assert len(events) == 1
    assert isinstance(events[0], InboundMessage)
    assert events[0].profile_name is None


def _expected_text(m: dict[str, Any]) -> str | None:
    if m["type"] == "text":
        return str(m["text"]["body"])
    if m["type"] == "button":
        return str(m["button"].get("text") or m["button"].get("payload"))
    if m["type"] == "interactive":
        interactive = m.get("interactive") or {}
        reply = interactive.get("button_reply") or interactive.get("list_reply")
        return str(reply.get("title") or reply.get("id")) if reply else None
    raise AssertionError("not a text-bearing type")


TEXT_FILES = files_where(
    lambda raw: any(
        m["type"] in {"text", "button", "interactive"}
        for _, c in changes(raw)
        if c["field"] == "messages"
        for m in c["value"].get("messages", [])
    )
)


@pytest.mark.parametrize("path", TEXT_FILES, ids=_ids(TEXT_FILES))
def test_text_is_extracted(path: Path, received_at: datetime) -> None:
    raw = load(path)
    m = raw["entry"][0]["changes"][0]["value"]["messages"][0]
    event = _split(path, received_at)[0]

    assert isinstance(event, InboundMessage)
    assert event.text == _expected_text(m)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("pywa-message-text.json", "Body Text"),
        ("openapi-button-message.json", "Unsubscribe"),
        ("pywa-callback-button-quick-reply.json", "title"),
        ("openapi-interactive-button-reply-message.json", "Cancel"),
        ("openapi-interactive-list-reply-message.json", "Priority Mail Express"),
        ("pywa-flow-completion-completion.json", None),
    ],
)
def test_text_of_known_vectors(name: str, text: str | None, vectors: Path, received_at: datetime) -> None:
    event = split_webhook((vectors / "webhooks" / name).read_bytes(), received_at=received_at)[0]
    assert isinstance(event, InboundMessage)
    assert event.text == text


def test_button_text_falls_back_to_payload(received_at: datetime) -> None:
    raw = webhook("openapi-button-message.json")
    raw["entry"][0]["changes"][0]["value"]["messages"][0]["button"] = {"payload": "STOP"}
    event = split_webhook(json.dumps(raw), received_at=received_at)[0]
    assert isinstance(event, InboundMessage)
    assert event.text == "STOP"


@pytest.mark.parametrize("path", STATUS_FILES, ids=_ids(STATUS_FILES))
def test_status_fields_come_from_raw(path: Path, received_at: datetime) -> None:
    raw = load(path)
    raw_statuses = [s for _, c in changes(raw) if c["field"] == "messages" for s in c["value"]["statuses"]]
    statuses = [e for e in _split(path, received_at) if isinstance(e, StatusUpdate)]

    assert len(statuses) == len(raw_statuses) >= 1
    for event, s in zip(statuses, raw_statuses, strict=True):
        assert event.recipient_id == s["recipient_id"]
        assert event.timestamp == _ts(s["timestamp"])
        assert event.biz_opaque_callback_data == s.get("biz_opaque_callback_data")
        assert event.error_code == (s["errors"][0]["code"] if s.get("errors") else None)
        assert event.payload["id"] == s["id"]


def test_failed_status_carries_its_error(vectors: Path, received_at: datetime) -> None:
    raw_status = webhook("pywa-message-status-failed.json")["entry"][0]["changes"][0]["value"]["statuses"][0]
    body = (vectors / "webhooks" / "pywa-message-status-failed.json").read_bytes()
    events = split_webhook(body, received_at=received_at)

    assert len(events) == 1
    event = events[0]
    assert isinstance(event, StatusUpdate)
    assert event.status == "failed"
    assert event.wamid == raw_status["id"] == "wamid.xyzxyz"
    assert event.error_code == 130472
    assert event.error_title == "User's number is part of an experiment"
    assert event.error_details == (
        "Failed to send message because this user's phone number is part of an experiment"
    )


def test_tracker_status_keeps_callback_data(vectors: Path, received_at: datetime) -> None:
    body = (vectors / "webhooks" / "pywa-message-status-with-tracker.json").read_bytes()
    event = split_webhook(body, received_at=received_at)[0]
    assert isinstance(event, StatusUpdate)
    assert event.biz_opaque_callback_data == "some data"
    assert event.error_code is None


@pytest.mark.parametrize("path", WEBHOOK_FILES, ids=WEBHOOK_IDS)
def test_same_body_gives_same_event_ids(path: Path) -> None:
    first = split_webhook(path.read_bytes(), received_at=datetime(2025, 1, 1, tzinfo=UTC))
    second = split_webhook(path.read_bytes(), received_at=datetime(2026, 2, 2, tzinfo=UTC))

    assert [e.event_id for e in first] == [e.event_id for e in second]
    assert len({e.event_id for e in first}) == len(first)
    assert all(len(e.event_id) == 32 for e in first)


def test_different_statuses_of_one_message_get_different_ids(received_at: datetime) -> None:
    raw = webhook("pywa-message-status-sent.json")
    statuses = raw["entry"][0]["changes"][0]["value"]["statuses"]
    for status in ("delivered", "read"):
        later = str(int(statuses[0]["timestamp"]) + 1)
        statuses.append({**statuses[0], "status": status, "timestamp": later})

    events = split_webhook(json.dumps(raw), received_at=received_at)

    assert [e.status for e in events if isinstance(e, StatusUpdate)] == ["sent", "delivered", "read"]
    assert len({e.event_id for e in events}) == 3


def test_account_event_ids_tell_occurrences_apart_not_positions(received_at: datetime) -> None:
    raw = webhook("pywa-account-update-partner-added.json")
    later = copy.deepcopy(raw)
    later["entry"][0]["time"] += 60
    twice = copy.deepcopy(raw)
    twice["entry"][0]["changes"].append(copy.deepcopy(raw["entry"][0]["changes"][0]))

    first = split_webhook(json.dumps(raw), received_at=received_at)
    again = split_webhook(json.dumps(later), received_at=received_at)
    doubled = split_webhook(json.dumps(twice), received_at=received_at)

    assert first[0].event_id != again[0].event_id  # a later occurrence is another event
    assert len(doubled) == 2
    assert doubled[0].event_id == first[0].event_id == doubled[1].event_id  # the same change re-sent: the same


def _batch(
    n_entries: int, n_changes: int, n_messages: int, n_statuses: int
) -> tuple[str, list[tuple[str, ...]]]:
    """A batched body built from real vectors, and the (kind, pnid, waba, id) order expected."""
    message_value = webhook("pywa-message-text.json")["entry"][0]["changes"][0]["value"]
    status_value = webhook("pywa-message-status-sent.json")["entry"][0]["changes"][0]["value"]
    message_template = message_value["messages"][0]
    status_template = status_value["statuses"][0]
    expected: list[tuple[str, ...]] = []
    entries = []
    for e in range(n_entries):
        waba = f"waba-{e}"
        change_list = []
        for c in range(n_changes):
            pnid = f"pn-{e}-{c}"
            messages = []
            for m in range(n_messages):
                wamid = f"wamid.in-{e}-{c}-{m}"
                messages.append({**copy.deepcopy(message_template), "id": wamid, "from": f"1555000{e}{c}{m}"})
                expected.append(("inbound", pnid, waba, wamid))
            statuses = []
            for s in range(n_statuses):
                wamid = f"wamid.out-{e}-{c}-{s}"
                statuses.append({**copy.deepcopy(status_template), "id": wamid})
                expected.append(("status", pnid, waba, wamid))
            value = {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": f"1555{e}{c}", "phone_number_id": pnid},
                "messages": messages,
                "statuses": statuses,
            }
            change_list.append({"value": value, "field": "messages"})
        entries.append({"id": waba, "changes": change_list})
    return json.dumps({"object": "whatsapp_business_account", "entry": entries}), expected


@pytest.mark.parametrize(("n_messages", "n_statuses", "total"), [(1, 1, 8), (2, 2, 16)])
def test_batched_body_keeps_every_event_in_order(
    n_messages: int, n_statuses: int, total: int, received_at: datetime
) -> None:
    body, expected = _batch(2, 2, n_messages, n_statuses)
    events = split_webhook(body, received_at=received_at)

    actual = [
        ("inbound" if isinstance(e, InboundMessage) else "status", e.phone_number_id, e.waba_id, e.wamid)
        for e in events
        if isinstance(e, InboundMessage | StatusUpdate)
    ]
    assert len(events) == len(expected) == total
    assert actual == expected
    assert len({e.event_id for e in events}) == total


def test_batched_body_accepts_bytes_and_str_alike(received_at: datetime) -> None:
    body, _ = _batch(2, 2, 2, 2)
    from_str = split_webhook(body, received_at=received_at)
    from_bytes = split_webhook(body.encode(), received_at=received_at)
    assert from_str == from_bytes


def test_unknown_values_do_not_raise(received_at: datetime) -> None:
    raw = webhook("pywa-message-text.json")
    raw["entry"][0]["changes"][0]["value"]["messages"][0]["type"] = "hologram"
    status_change = webhook("pywa-message-status-sent.json")["entry"][0]["changes"][0]
    status_change["value"]["statuses"][0]["status"] = "teleported"
    raw["entry"][0]["changes"].append(status_change)
    raw["entry"][0]["changes"].append({"field": "brand_new_field", "value": {"anything": 1}})

    events = split_webhook(json.dumps(raw), received_at=received_at)

    assert [type(e).__name__ for e in events] == ["InboundMessage", "StatusUpdate", "AccountEvent"]
    inbound, status, account = events
    # Unknown values are kept as Meta sent them, not collapsed (the models still say UNKNOWN).
    assert isinstance(inbound, InboundMessage) and inbound.type == "hologram"
    assert isinstance(status, StatusUpdate) and status.status == "teleported"
    assert isinstance(account, AccountEvent) and account.field == "brand_new_field"
    assert account.payload["value"] == {"anything": 1}
    assert account.waba_id == raw["entry"][0]["id"]


def _unknown_case(kind: str) -> tuple[dict[str, Any], str]:
    if kind == "message type":
        raw = webhook("pywa-message-text.json")
        raw["entry"][0]["changes"][0]["value"]["messages"][0]["type"] = "hologram"
        return raw, "hologram"
    if kind == "status":
        raw = webhook("pywa-message-status-sent.json")
        raw["entry"][0]["changes"][0]["value"]["statuses"][0]["status"] = "teleported"
        return raw, "teleported"
    raw = webhook("pywa-template-status-update-approved.json")
    raw["entry"][0]["changes"][0]["field"] = "brand_new_field"
    return raw, "brand_new_field"


@pytest.mark.parametrize("kind", ["message type", "status", "change field"])
def test_unknown_raw_value_is_kept_in_event_payload(kind: str, received_at: datetime) -> None:
    raw, unknown = _unknown_case(kind)
    events = split_webhook(json.dumps(raw), received_at=received_at)
    assert len(events) == 1
    assert unknown in json.dumps(events[0].payload)
