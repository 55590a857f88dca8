"""schemas.meta_webhook against Meta's real webhook payloads (data-driven over every vector)."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from schemas.meta_enums import ChangeField, InteractiveType, MessageType, StatusValue
from schemas.meta_webhook import MessagesValue, WebhookEnvelope, routing_key
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

MESSAGE_FILES = files_where(has_messages)
STATUS_FILES = files_where(has_statuses)
ENUM_LOGGER = "schemas.meta_enums"


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def _expected_enum(enum: type[Any], raw: str) -> str:
    return raw if raw in {m.value for m in enum} else "UNKNOWN"


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == ENUM_LOGGER and r.levelno == logging.WARNING]


def test_vectors_are_present(vectors: Path) -> None:
    names = {p.name for p in WEBHOOK_FILES}
    assert len(WEBHOOK_FILES) >= 91
    assert "pywa-signed-text-message.json" in names
    assert MESSAGE_FILES and STATUS_FILES


@pytest.mark.parametrize("path", WEBHOOK_FILES, ids=WEBHOOK_IDS)
def test_envelope_parses(path: Path) -> None:
    raw = load(path)
    envelope = WebhookEnvelope.model_validate_json(path.read_bytes())

    assert envelope.object == raw["object"] == "whatsapp_business_account"
    assert [e.id for e in envelope.entry] == [e["id"] for e in raw["entry"]]
    parsed = [(e.id, c) for e in envelope.entry for c in e.changes]
    expected = changes(raw)
    assert len(parsed) == len(expected) >= 1
    for (entry_id, change), (raw_entry, raw_change) in zip(parsed, expected, strict=True):
        assert entry_id == raw_entry["id"]
        assert change.field.value == _expected_enum(ChangeField, raw_change["field"])
        assert change.value == raw_change["value"]
        metadata = raw_change["value"].get("metadata") or {}
        assert change.phone_number_id() == metadata.get("phone_number_id")


@pytest.mark.parametrize("path", MESSAGE_FILES, ids=_ids(MESSAGE_FILES))
def test_message_types_match_raw(path: Path) -> None:
    raw = load(path)
    seen = 0
    for _, raw_change in changes(raw):
        if raw_change["field"] != "messages":
            continue
        value = MessagesValue.model_validate(raw_change["value"])
        raw_messages = raw_change["value"].get("messages", [])
        assert len(value.messages) == len(raw_messages)
        for message, raw_message in zip(value.messages, raw_messages, strict=True):
            assert isinstance(message.type, MessageType)
            assert message.type.value == _expected_enum(MessageType, raw_message["type"])
            assert message.id == raw_message["id"]
            assert message.from_ == raw_message.get("from")
            assert message.timestamp == raw_message["timestamp"]
            raw_interactive = raw_message.get("interactive")
            if raw_interactive is not None:
                assert message.interactive is not None
                expected_type = _expected_enum(InteractiveType, raw_interactive["type"])
                assert message.interactive.type.value == expected_type
            seen += 1
    assert seen >= 1


@pytest.mark.parametrize("path", STATUS_FILES, ids=_ids(STATUS_FILES))
def test_status_values_match_raw(path: Path) -> None:
    raw = load(path)
    seen = 0
    for _, raw_change in changes(raw):
        if raw_change["field"] != "messages":
            continue
        value = MessagesValue.model_validate(raw_change["value"])
        raw_statuses = raw_change["value"].get("statuses", [])
        assert [s.id for s in value.statuses] == [s["id"] for s in raw_statuses]
        for status, raw_status in zip(value.statuses, raw_statuses, strict=True):
            assert status.status.value == _expected_enum(StatusValue, raw_status["status"])
            assert status.recipient_id == raw_status.get("recipient_id")
            assert [e.code for e in status.errors or []] == [e["code"] for e in raw_status.get("errors", [])]
            seen += 1
    assert seen >= 1


def test_failed_status_error_is_parsed() -> None:
    raw_value = webhook("pywa-message-status-failed.json")["entry"][0]["changes"][0]["value"]
    status = MessagesValue.model_validate(raw_value).statuses[0]
    assert status.status is StatusValue.FAILED
    assert status.errors is not None
    assert status.errors[0].code == 130472
    assert status.errors[0].title == "User's number is part of an experiment"
    assert status.errors[0].error_data is not None
    assert status.errors[0].error_data.details == (
        "Failed to send message because this user's phone number is part of an experiment"
    )


def test_unknown_fields_survive_model_dump() -> None:
    raw = webhook("pywa-message-text.json")
    raw_value = copy.deepcopy(raw["entry"][0]["changes"][0]["value"])
    raw_value["future_value_field"] = {"nested": [1, 2, 3]}
    raw_value["messages"][0]["future_message_field"] = "kept"
    raw_value["messages"][0]["text"]["future_text_field"] = True

    dumped = MessagesValue.model_validate(raw_value).model_dump(by_alias=True)

    assert dumped["future_value_field"] == {"nested": [1, 2, 3]}
    assert dumped["messages"][0]["future_message_field"] == "kept"
    assert dumped["messages"][0]["text"]["future_text_field"] is True
    assert dumped["messages"][0]["from"] == raw_value["messages"][0]["from"]


def test_unknown_fields_survive_envelope_round_trip() -> None:
    raw = webhook("pywa-message-text.json")
    raw["future_top_level"] = "top"
    raw["entry"][0]["future_entry_field"] = 7
    raw["entry"][0]["changes"][0]["future_change_field"] = ["x"]
    raw["entry"][0]["changes"][0]["value"]["future_value_field"] = "v"

    dumped = WebhookEnvelope.model_validate_json(json.dumps(raw)).model_dump(mode="json")

    assert dumped["future_top_level"] == "top"
    assert dumped["entry"][0]["future_entry_field"] == 7
    assert dumped["entry"][0]["changes"][0]["future_change_field"] == ["x"]
    assert dumped["entry"][0]["changes"][0]["value"]["future_value_field"] == "v"


def test_unknown_message_type_becomes_unknown(caplog: pytest.LogCaptureFixture) -> None:
    raw_value = webhook("pywa-message-text.json")["entry"][0]["changes"][0]["value"]
    raw_value["messages"][0]["type"] = "hologram"
    raw_value["messages"][0]["hologram"] = {"id": "h1"}

    with caplog.at_level(logging.WARNING, logger=ENUM_LOGGER):
        message = MessagesValue.model_validate(raw_value).messages[0]

    assert message.type is MessageType.UNKNOWN
    assert message.model_dump()["hologram"] == {"id": "h1"}
    assert any("MessageType" in m and "hologram" in m for m in _warnings(caplog))


def test_unknown_interactive_type_becomes_unknown(caplog: pytest.LogCaptureFixture) -> None:
    raw_value = webhook("openapi-interactive-button-reply-message.json")["entry"][0]["changes"][0]["value"]
    raw_value["messages"][0]["interactive"]["type"] = "carousel_reply"

    with caplog.at_level(logging.WARNING, logger=ENUM_LOGGER):
        message = MessagesValue.model_validate(raw_value).messages[0]

    assert message.interactive is not None
    assert message.interactive.type is InteractiveType.UNKNOWN
    assert any("InteractiveType" in m and "carousel_reply" in m for m in _warnings(caplog))


def test_unknown_status_becomes_unknown(caplog: pytest.LogCaptureFixture) -> None:
    raw_value = webhook("pywa-message-status-sent.json")["entry"][0]["changes"][0]["value"]
    raw_value["statuses"][0]["status"] = "teleported"

    with caplog.at_level(logging.WARNING, logger=ENUM_LOGGER):
        status = MessagesValue.model_validate(raw_value).statuses[0]

    assert status.status is StatusValue.UNKNOWN
    assert status.id == raw_value["statuses"][0]["id"]
    assert any("StatusValue" in m and "teleported" in m for m in _warnings(caplog))


def test_unknown_change_field_becomes_unknown(caplog: pytest.LogCaptureFixture) -> None:
    raw = webhook("pywa-template-status-update-approved.json")
    raw["entry"][0]["changes"][0]["field"] = "brand_new_field"

    with caplog.at_level(logging.WARNING, logger=ENUM_LOGGER):
        envelope = WebhookEnvelope.model_validate(raw)

    change = envelope.entry[0].changes[0]
    assert change.field is ChangeField.UNKNOWN
    assert change.value == raw["entry"][0]["changes"][0]["value"]
    assert any("ChangeField" in m and "brand_new_field" in m for m in _warnings(caplog))


def test_known_values_log_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    raw_value = webhook("pywa-message-text.json")["entry"][0]["changes"][0]["value"]
    with caplog.at_level(logging.WARNING, logger=ENUM_LOGGER):
        MessagesValue.model_validate(raw_value)
    assert _warnings(caplog) == []


def _expected_routing_key(raw: dict[str, Any]) -> str:
    first_change = raw["entry"][0]["changes"][0]
    metadata = first_change["value"].get("metadata") or {}
    return str(metadata.get("phone_number_id") or raw["entry"][0]["id"])


@pytest.mark.parametrize("path", WEBHOOK_FILES, ids=WEBHOOK_IDS)
def test_routing_key(path: Path) -> None:
    raw = load(path)
    assert routing_key(raw) == _expected_routing_key(raw)


def test_routing_key_takes_the_first_change() -> None:
    first = webhook("pywa-message-text.json")
    second = webhook("openapi-text-message.json")
    first["entry"][0]["changes"].append(second["entry"][0]["changes"][0])
    first["entry"].append(second["entry"][0])

    assert routing_key(first) == "1122334455667"


def test_routing_key_falls_back_to_entry_id() -> None:
    raw = webhook("pywa-account-update-partner-added.json")
    assert "metadata" not in raw["entry"][0]["changes"][0]["value"]
    assert routing_key(raw) == "2949482758682047"


@pytest.mark.parametrize("body", [{}, {"entry": []}, {"entry": [{"changes": []}]}])
def test_routing_key_of_an_empty_body(body: dict[str, Any]) -> None:
    assert routing_key(body) == "unknown"
