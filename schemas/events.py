"""Internal events: the value models of Aerostic's own Kafka topics.

Each event carries an ``event_id`` (deterministic where the event is derived from a Meta
payload, so a redelivered webhook yields the same id) and a ``schema_version``. Encode with
``encode()`` and decode with ``Model.decode(raw)``: that is the codec every process uses.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


def derived_event_id(*parts: str) -> str:
    """A stable id for an event derived from Meta data (same input, same id)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


class Event(BaseModel):
    """Base of every internal event."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: str
    schema_version: int = SCHEMA_VERSION

    def encode(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def decode(cls, raw: bytes | str) -> Self:
        return cls.model_validate_json(raw)


class RoutedEvent(Event):
    """An event taken out of a Meta webhook, with the tenant it belongs to (if known)."""

    tenant_id: str | None = None
    phone_number_id: str
    waba_id: str
    display_phone_number: str | None = None
    received_at: datetime


class InboundMessage(RoutedEvent):
    """One message a customer sent to a business number (``wa.inbound``)."""

    kind: Literal["inbound_message"] = "inbound_message"
    wamid: str
    wa_id: str  # the person's one identity (schemas.identity): a number, or a BSUID for a username-only customer
    profile_name: str | None = None
    # What Meta named the customer by in this message (any may be absent): number, BSUID, username.
    phone: str | None = None
    user_id: str | None = None
    username: str | None = None
    type: str
    timestamp: datetime
    text: str | None = None
    payload: dict[str, Any]

    @property
    def conversation_key(self) -> str:
        return f"{self.phone_number_id}:{self.wa_id}"


class StatusUpdate(RoutedEvent):
    """One delivery status of a message we sent (``wa.statuses``)."""

    kind: Literal["status_update"] = "status_update"
    wamid: str
    recipient_id: str  # the person's one identity (as ``InboundMessage.wa_id``), or a group's id
    status: str
    timestamp: datetime
    error_code: int | None = None
    error_title: str | None = None
    error_details: str | None = None
    biz_opaque_callback_data: str | None = None
    # What Meta named the recipient by (its ``recipient_id`` / ``recipient_user_id`` and ``contacts``).
    phone: str | None = None
    user_id: str | None = None
    payload: dict[str, Any]

    @property
    def conversation_key(self) -> str:
        return f"{self.phone_number_id}:{self.recipient_id}"


class AccountEvent(RoutedEvent):
    """Any non-message change: templates, quality, account updates, calls, echoes… (``wa.account.events``)."""

    kind: Literal["account_event"] = "account_event"
    field: str
    event: str | None = None
    payload: dict[str, Any]


RoutedUnion = InboundMessage | StatusUpdate | AccountEvent


class UnroutableEvent(Event):
    """An event whose ``phone_number_id`` belongs to no tenant yet (``wa.unroutable``)."""

    kind: Literal["unroutable"] = "unroutable"
    phone_number_id: str
    inner: InboundMessage | StatusUpdate | AccountEvent = Field(discriminator="kind")


class DirectoryEntry(Event):
    """The owner of one phone number (``tenants.directory``, compacted, keyed by phone_number_id).

    ``tenant_id`` None means the number was detached.
    """

    phone_number_id: str
    tenant_id: str | None = None
    waba_id: str | None = None
    display_phone_number: str | None = None
    status: str = "connected"

    @classmethod
    def owned(cls, phone_number_id: str, tenant_id: str, *, waba_id: str | None,
              display_phone_number: str | None) -> DirectoryEntry:
        """``phone_number_id`` now belongs to ``tenant_id`` (the same ownership gives the same event id)."""
        return cls(event_id=derived_event_id("dir", phone_number_id, tenant_id), phone_number_id=phone_number_id,
                   tenant_id=tenant_id, waba_id=waba_id, display_phone_number=display_phone_number)
