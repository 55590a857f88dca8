"""Request and response models of the tenant send API.

``MessageCreate`` is ``schemas.messages.MessageContent`` (the message object named by ``type``,
exactly as Meta's Graph API takes it) plus its addressing: ``to`` (or ``recipient``, a BSUID), an optional ``from`` and
``idempotency_key``. Graph's own routing fields are accepted, so a Graph body can be sent as it is,
and never forwarded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from schemas.identity import BSUID
from schemas.messages import MESSAGE_TYPES as MESSAGE_TYPES
from schemas.messages import MessageContent as MessageContent

PhoneNumberId = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,32}$")]
IdempotencyKey = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,200}$")]


class MessageCreate(MessageContent):
    """``POST /v1/messages``: one message to one recipient, shaped like Graph's body."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "to": "+15551234567", "type": "text", "text": {"body": "Your order #1042 has shipped."},
                "idempotency_key": "order-1042-shipped",
            },
            {
                "to": "15551234567", "type": "template",
                "template": {
                    "name": "order_confirmation", "language": {"code": "en_US"},
                    "components": [{"type": "body", "parameters": [{"type": "text", "text": "1042"}]}],
                },
            },
        ]},
        extra="forbid", strict=True, populate_by_name=True)

    from_: PhoneNumberId | None = Field(None, alias="from")
    to: str | None = None
    recipient: Annotated[str, StringConstraints(pattern=BSUID.pattern, max_length=80)] | None = Field(
        None, description="the customer's business-scoped user id (BSUID, e.g. US.1349…), instead of `to`: "
                          "a customer known by username has no number")
    idempotency_key: IdempotencyKey | None = None
    # Accepted (and not forwarded) so a Graph body can be sent as it is.
    messaging_product: Literal["whatsapp"] | None = None
    recipient_type: Literal["individual"] | None = None

    @model_validator(mode="after")
    def _one_recipient(self) -> MessageCreate:
        if (self.to is None) == (self.recipient is None):
            raise ValueError("exactly one of 'to' (a phone number) and 'recipient' (a BSUID) is needed")
        return self

    @property
    def addressee(self) -> str:
        """The phone number or BSUID the message is for."""
        return self.to or self.recipient or ""

    @field_validator("to")
    @classmethod
    def _wa_id(cls, value: str) -> str:
        digits = value.removeprefix("+")
        if not (digits.isascii() and digits.isdigit() and 6 <= len(digits) <= 15 and digits[0] != "0"):
            raise ValueError("'to' must be the recipient's number in international format: 6 to 15 digits "
                             "with the country code, optionally after a '+' (no spaces or punctuation)")
        return digits


class MessageAccepted(BaseModel):
    """The answer to an accepted send (202)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "id": "0b9f6c1e-5d4a-4c3b-8a2f-7e6d5c4b3a21", "status": "queued",
                "conversation_key": "106540352242922:15551234567", "duplicate": False,
            },
        ]})

    id: str
    status: Literal["queued"] = "queued"
    conversation_key: str
    duplicate: bool = False


class MessageError(BaseModel):
    code: int | None
    title: str | None
    details: str | None


class StatusEntry(BaseModel):
    status: str
    at: datetime
    error_code: int | None = None


class MessagePublic(BaseModel):
    """``GET /v1/messages/{id}``: one message, its current status and its status history."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "id": "0b9f6c1e-5d4a-4c3b-8a2f-7e6d5c4b3a21", "conversation_key": "106540352242922:15551234567",
                "to": "15551234567", "direction": "outbound", "type": "text", "status": "delivered",
                "wamid": "wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA", "error": None, "attempts": 1,
                "ambiguous": False, "created_at": "2026-12-01T09:14:03Z",
                "history": [
                    {"status": "queued", "at": "2026-12-01T09:14:03Z", "error_code": None},
                    {"status": "sent", "at": "2026-12-01T09:14:05Z", "error_code": None},
                    {"status": "delivered", "at": "2026-12-01T09:14:06Z", "error_code": None},
                ],
            },
        ]})

    id: str
    conversation_key: str
    to: str
    direction: str
    type: str | None
    status: str
    wamid: str | None
    error: MessageError | None
    attempts: int
    ambiguous: bool
    created_at: datetime
    history: list[StatusEntry]


class MediaRef(BaseModel):
    """An inbound message's media as Aerostic keeps it: ``url`` serves the file (``GET /v1/media/{id}``)."""

    id: str
    url: str
    status: str  # pending (not downloaded yet) | stored | failed
    mime_type: str | None = None
    size_bytes: int | None = None
    error: str | None = None


MESSAGE_EXAMPLE: dict[str, Any] = {
    "id": None, "wamid": "wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA",
    "direction": "inbound", "type": "text", "text": "Where is my order?",
    "payload": {"type": "text", "text": {"body": "Where is my order?"}}, "status": None, "error": None,
    "sent_at": None, "created_at": "2026-12-01T09:14:03Z", "media": None, "ambiguous": False,
}
MESSAGE_PAGE_EXAMPLE: dict[str, Any] = {
    "messages": [MESSAGE_EXAMPLE], "next": "WyIyMDI2LTEyLTAxVDA5OjE0OjAzKzAwOjAwIiwgIjBiOWY2YzFlIl0=",
}


class MessageItem(BaseModel):
    """One message of a conversation listing (inbound messages have no Aerostic id)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [
            MESSAGE_EXAMPLE,
        ]})

    id: str | None
    wamid: str | None
    direction: str
    type: str | None
    text: str | None
    payload: dict[str, Any] | None
    status: str | None
    error: MessageError | None
    sent_at: datetime | None
    created_at: datetime
    media: MediaRef | None = None
    ambiguous: bool = False  # the send timed out after Meta may have taken it: Meta's statuses decide


class MessagePage(BaseModel):
    """A page of a conversation, newest first; pass ``next`` back as ``before`` for older ones."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [MESSAGE_PAGE_EXAMPLE]})

    messages: list[MessageItem]
    next: str | None
