"""streams.split: who the customer is in Meta's current shapes (real pywa vectors, copied into tests/data/meta with
their provenance, and the simulator's username-only shape)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from schemas.events import InboundMessage, StatusUpdate
from streams.split import split_parts, split_webhook
from tests.unit._vectors import webhook

NOW = datetime(2026, 1, 1, tzinfo=UTC)
BSUID = "US.13491208655302741918"


def _one(name: str) -> InboundMessage | StatusUpdate:
    [event] = split_webhook(json.dumps(webhook(name)), received_at=NOW)
    assert isinstance(event, InboundMessage | StatusUpdate)
    return event


def test_a_message_with_number_and_bsuid() -> None:
    event = _one("pywa-message-text.json")
    assert isinstance(event, InboundMessage)
    assert (event.wa_id, event.phone, event.user_id, event.profile_name) == (
        "972987654321", "972987654321", BSUID, "Test Name")


def test_from_user_id_names_the_bsuid_of_a_reply_without_context() -> None:
    event = _one("pywa-callback-button-quick-reply-without-context.json")
    assert isinstance(event, InboundMessage)
    assert (event.phone, event.user_id) == ("972987654321", BSUID)


def test_a_status_takes_the_bsuid_from_its_contacts() -> None:
    event = _one("pywa-message-status-sent.json")
    assert isinstance(event, StatusUpdate)
    assert (event.recipient_id, event.phone, event.user_id) == ("972987654321", "972987654321", BSUID)


def test_a_group_status_is_the_groups_and_its_participants_contacts_are_not_the_recipient() -> None:
    event = _one("pywa-message-status-group.json")
    assert isinstance(event, StatusUpdate)
    assert (event.recipient_id, event.phone, event.user_id) == ("fowefinoewcnw", None, None)


def _username_only(message: dict[str, object], contacts: list[dict[str, object]]) -> str:
    return json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
        "field": "messages", "value": {"metadata": {"phone_number_id": "2"}, "contacts": contacts,
                                       "messages": [message]}}]}]})


def test_a_username_only_customer_is_named_by_bsuid_with_their_username() -> None:
    message = {"from_user_id": BSUID, "id": "wamid.A", "timestamp": "1", "type": "text", "text": {"body": "hi"}}
    contacts = [{"profile": {"name": "Fan", "username": "shop.fan"}, "user_id": BSUID, "parent_user_id": "US.ENT.1"}]
    [event] = split_webhook(_username_only(message, contacts), received_at=NOW)
    assert isinstance(event, InboundMessage)
    assert (event.wa_id, event.phone, event.user_id, event.username, event.profile_name) == (
        BSUID, None, BSUID, "shop.fan", "Fan")


def test_a_message_naming_nobody_is_unreadable_and_the_rest_is_kept() -> None:
    message = {"id": "wamid.B", "timestamp": "1", "type": "text", "text": {"body": "hi"}}
    split = split_parts(_username_only(message, []), received_at=NOW)
    assert split.events == [] and [u.where for u in split.unreadable] == ["entry[0].changes[0].value.messages[0]"]
