"""Split one raw webhook body into Aerostic events (pure; no I/O).

Meta batches: a body may hold several entries, each several changes, each several messages
and statuses. Every one becomes its own event. Event ids are derived from Meta's ids, so the
same webhook delivered twice yields the same events.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

from schemas.events import AccountEvent, InboundMessage, RoutedEvent, StatusUpdate, derived_event_id
from schemas.meta_enums import ChangeField
from schemas.meta_webhook import (
    OTHER_VALUE_MODELS,
    Change,
    Entry,
    Message,
    MessagesValue,
    Status,
    WebhookEnvelope,
)

log = logging.getLogger(__name__)


def _ts(value: str | int | None) -> datetime:
    try:
        return datetime.fromtimestamp(int(value or 0), tz=UTC)
    except (TypeError, ValueError):
        return datetime.fromtimestamp(0, tz=UTC)


def split_webhook(body: bytes | str, *, received_at: datetime) -> list[RoutedEvent]:
    """Every message, status and other change in ``body``, in order.

    The models give typed access; payloads and names are taken from the raw JSON, so a value
    Meta adds later (a new message type, status or field) is stored as Meta sent it.
    """
    raw = orjson.loads(body)
    envelope = WebhookEnvelope.model_validate(raw)
    out: list[RoutedEvent] = []
    for entry, raw_entry in zip(envelope.entry, raw.get("entry", []), strict=True):
        for index, (change, raw_change) in enumerate(zip(entry.changes, raw_entry.get("changes", []),
                                                         strict=True)):
            out.extend(_split_change(entry, index, change, str(raw_change.get("field")), received_at))
    return out


def _split_change(entry: Entry, index: int, change: Change, field: str, received_at: datetime
                  ) -> list[RoutedEvent]:
    pnid = change.phone_number_id()
    if change.field is ChangeField.MESSAGES and pnid:
        value = MessagesValue.model_validate(change.value)
        raw_messages, raw_statuses = change.value.get("messages") or [], change.value.get("statuses") or []
        events: list[RoutedEvent] = [_inbound(entry, value, m, raw, received_at)
                                     for m, raw in zip(value.messages, raw_messages, strict=True)]
        events += [_status(entry, value, s, raw, received_at)
                   for s, raw in zip(value.statuses, raw_statuses, strict=True)]
        if value.errors or not events:
            events.append(_account(entry, index, change, field, pnid, received_at, event="errors"))
        return events
    return [_account(entry, index, change, field, pnid, received_at, event=None)]


def _inbound(entry: Entry, value: MessagesValue, message: Message, raw: dict[str, Any],
             received_at: datetime) -> InboundMessage:
    wa_id = message.from_ or message.from_user_id or ""
    profile = next((c.profile.name for c in value.contacts if c.wa_id == wa_id and c.profile), None)
    if profile is None and len(value.contacts) == 1 and value.contacts[0].profile:
        profile = value.contacts[0].profile.name
    return InboundMessage(
        event_id=derived_event_id("in", value.metadata.phone_number_id, message.id),
        phone_number_id=value.metadata.phone_number_id,
        display_phone_number=value.metadata.display_phone_number,
        waba_id=entry.id,
        received_at=received_at,
        wamid=message.id,
        wa_id=wa_id,
        profile_name=profile,
        type=str(raw.get("type")),
        timestamp=_ts(message.timestamp),
        text=message.text_content(),
        payload=raw,
    )


def _status(entry: Entry, value: MessagesValue, status: Status, raw: dict[str, Any],
            received_at: datetime) -> StatusUpdate:
    error = status.errors[0] if status.errors else None
    return StatusUpdate(
        event_id=derived_event_id("st", value.metadata.phone_number_id, status.id, str(raw.get("status")),
                                  status.timestamp),
        phone_number_id=value.metadata.phone_number_id,
        display_phone_number=value.metadata.display_phone_number,
        waba_id=entry.id,
        received_at=received_at,
        wamid=status.id,
        recipient_id=status.recipient_id or "",
        status=str(raw.get("status")),
        timestamp=_ts(status.timestamp),
        error_code=error.code if error else None,
        error_title=error.title if error else None,
        error_details=error.error_data.details if error and error.error_data else None,
        biz_opaque_callback_data=status.biz_opaque_callback_data,
        payload=raw,
    )


def _account(entry: Entry, index: int, change: Change, field: str, pnid: str | None,
             received_at: datetime, event: str | None) -> AccountEvent:
    model = OTHER_VALUE_MODELS.get(change.field)
    if model is not None:
        model.model_validate(change.value)  # known shapes are checked; the raw value is what is kept
    payload: dict[str, Any] = change.value
    event_name = event or (str(payload["event"]) if isinstance(payload.get("event"), str) else None)
    return AccountEvent(
        event_id=derived_event_id("acct", entry.id, str(entry.time or ""), str(index), field,
                                  _fingerprint(change.value)),
        phone_number_id=pnid or "",
        waba_id=entry.id,
        received_at=received_at,
        field=field,
        event=event_name,
        payload={"field": field, "entry_time": entry.time, "value": payload},
    )


def _fingerprint(value: dict[str, Any]) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
