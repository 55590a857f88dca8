"""Split one raw webhook body into Aerostic events (pure; no I/O).

Meta batches: a body may hold several entries, each several changes, each several messages
and statuses. Every one becomes its own event. Event ids are derived from Meta's ids (account
changes: from what they are, not where they sit in the body), so the same webhook delivered
twice, or the same change re-sent in another batch, yields the same events.

Each part is read on its own: an entry, change, message or status that does not fit Meta's shape
becomes an ``Unreadable`` (where it was, why, its raw JSON) and everything else in the body is still
split. Only a body that is not a webhook at all raises ``ValueError``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
from pydantic import ValidationError

from schemas.events import AccountEvent, InboundMessage, RoutedEvent, StatusUpdate, derived_event_id
from schemas.identity import Identity, is_bsuid
from schemas.meta_enums import ChangeField
from schemas.meta_webhook import (
    OTHER_VALUE_MODELS,
    Change,
    Contact,
    Entry,
    Message,
    MessagesValue,
    Status,
)

log = logging.getLogger(__name__)


def _ts(value: str | int | None) -> datetime:
    try:
        return datetime.fromtimestamp(int(value or 0), tz=UTC)
    except (TypeError, ValueError):
        return datetime.fromtimestamp(0, tz=UTC)


class Unreadable(NamedTuple):
    """A part of a webhook that could not be read: where it was, why, and its raw JSON."""

    where: str
    reason: str
    part: Any


class Split(NamedTuple):
    events: list[RoutedEvent]
    unreadable: list[Unreadable]


def split_webhook(body: bytes | str, *, received_at: datetime) -> list[RoutedEvent]:
    """Every event of ``body``, in order; ``ValueError`` if any part of it cannot be read (strict form)."""
    split = split_parts(body, received_at=received_at)
    if split.unreadable:
        raise ValueError("; ".join(f"{u.where}: {u.reason}" for u in split.unreadable))
    return split.events


def split_parts(body: bytes | str, *, received_at: datetime) -> Split:
    """Every message, status and other change in ``body``, in order, and the parts that could not be read.

    The models give typed access; payloads and names are taken from the raw JSON, so a value
    Meta adds later (a new message type, status or field) is stored as Meta sent it.
    """
    raw = orjson.loads(body)
    if not isinstance(raw, dict) or not isinstance(raw.get("entry", []), list):
        raise ValueError("not a webhook: a JSON object with an entry list is expected")
    out = Split([], [])
    for e, raw_entry in enumerate(raw.get("entry", [])):
        try:
            entry = Entry.model_validate({**raw_entry, "changes": []} if isinstance(raw_entry, dict) else raw_entry)
        except ValidationError as exc:
            out.unreadable.append(Unreadable(f"entry[{e}]", _reason(exc), raw_entry))
            continue
        raw_changes = raw_entry.get("changes", [])
        for c, raw_change in enumerate(raw_changes if isinstance(raw_changes, list) else [raw_changes]):
            where = f"entry[{e}].changes[{c}]"
            try:
                change = Change.model_validate(raw_change)
                _split_change(entry, change, str(raw_change.get("field")), received_at, where, out)
            except ValidationError as exc:
                out.unreadable.append(Unreadable(where, _reason(exc), raw_change))
    return out


def _reason(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}" for err in exc.errors()[:5])


def _split_change(entry: Entry, change: Change, field: str, received_at: datetime, where: str, out: Split) -> None:
    pnid = change.phone_number_id()
    if change.field is ChangeField.MESSAGES and pnid:
        raw_messages, raw_statuses = change.value.get("messages") or [], change.value.get("statuses") or []
        value = MessagesValue.model_validate({**change.value, "messages": [], "statuses": []})
        found = 0
        for i, raw in enumerate(raw_messages):
            try:
                out.events.append(_inbound(entry, value, Message.model_validate(raw), raw, received_at))
                found += 1
            except ValidationError as exc:
                out.unreadable.append(Unreadable(f"{where}.value.messages[{i}]", _reason(exc), raw))
        for i, raw in enumerate(raw_statuses):
            try:
                out.events.append(_status(entry, value, Status.model_validate(raw), raw, received_at))
                found += 1
            except ValidationError as exc:
                out.unreadable.append(Unreadable(f"{where}.value.statuses[{i}]", _reason(exc), raw))
        if value.errors or (not found and not raw_messages and not raw_statuses):
            out.events.append(_account(entry, change, field, pnid, received_at, event="errors"))
        return
    out.events.append(_account(entry, change, field, pnid, received_at, event=None))


def _inbound(entry: Entry, value: MessagesValue, message: Message, raw: dict[str, Any],
             received_at: datetime) -> InboundMessage:
    contact = _contact(value.contacts, message.from_, message.from_user_id)
    phone = message.from_ or (contact.wa_id if contact else None)
    identity = Identity(phone, message.from_user_id or (contact.user_id if contact else None),
                        contact.profile.username if contact and contact.profile else None)
    if not identity.first:
        raise ValidationError.from_exception_data("Message", [
            {"type": "missing", "loc": ("from",), "input": raw}])
    return InboundMessage(
        event_id=derived_event_id("in", value.metadata.phone_number_id, message.id),
        phone_number_id=value.metadata.phone_number_id,
        display_phone_number=value.metadata.display_phone_number,
        waba_id=entry.id,
        received_at=received_at,
        wamid=message.id,
        wa_id=identity.first,  # the router replaces it with the person's one identity
        profile_name=contact.profile.name if contact and contact.profile else None,
        phone=identity.phone,
        user_id=identity.user_id,
        username=identity.username,
        type=str(raw.get("type")),
        timestamp=_ts(message.timestamp),
        text=message.text_content(),
        payload=raw,
    )


def _contact(contacts: list[Contact], phone: str | None, user_id: str | None) -> Contact | None:
    """The ``contacts[]`` entry of the customer named by ``phone`` or ``user_id`` (the only one, if alone)."""
    for contact in contacts:
        if (phone and contact.wa_id == phone) or (user_id and contact.user_id == user_id):
            return contact
    return contacts[0] if len(contacts) == 1 else None


def _status(entry: Entry, value: MessagesValue, status: Status, raw: dict[str, Any],
            received_at: datetime) -> StatusUpdate:
    error = status.errors[0] if status.errors else None
    phone = status.recipient_id if status.recipient_id and not is_bsuid(status.recipient_id) else None
    user_id = status.recipient_user_id or (status.recipient_id if is_bsuid(status.recipient_id) else None)
    if status.recipient_type != "group":  # a group's contacts are its participants, not the recipient
        contact = _contact(value.contacts, phone, user_id)
        if contact is not None:
            phone, user_id = phone or contact.wa_id, user_id or contact.user_id
    return StatusUpdate(
        event_id=derived_event_id("st", value.metadata.phone_number_id, status.id, str(raw.get("status")),
                                  status.timestamp),
        phone_number_id=value.metadata.phone_number_id,
        display_phone_number=value.metadata.display_phone_number,
        waba_id=entry.id,
        received_at=received_at,
        wamid=status.id,
        recipient_id=(status.recipient_id if status.recipient_type == "group" else None)
        or Identity(phone, user_id).first,
        status=str(raw.get("status")),
        timestamp=_ts(status.timestamp),
        error_code=error.code if error else None,
        error_title=error.title if error else None,
        error_details=error.error_data.details if error and error.error_data else None,
        biz_opaque_callback_data=status.biz_opaque_callback_data,
        phone=phone if status.recipient_type != "group" else None,
        user_id=user_id if status.recipient_type != "group" else None,
        payload=raw,
    )


def _account(entry: Entry, change: Change, field: str, pnid: str | None,
             received_at: datetime, event: str | None) -> AccountEvent:
    model = OTHER_VALUE_MODELS.get(change.field)
    if model is not None:
        model.model_validate(change.value)  # known shapes are checked; the raw value is what is kept
    payload: dict[str, Any] = change.value
    event_name = event or (str(payload["event"]) if isinstance(payload.get("event"), str) else None)
    return AccountEvent(
        # What the change is (its WABA, time, field and value), not where it sat in the body: the same change
        # re-sent in another batch is the same event.
        event_id=derived_event_id("acct", entry.id, str(entry.time or ""), field, _fingerprint(change.value)),
        phone_number_id=pnid or "",
        waba_id=entry.id,
        received_at=received_at,
        field=field,
        event=event_name,
        payload={"field": field, "entry_time": entry.time, "value": payload},
    )


def _fingerprint(value: dict[str, Any]) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
