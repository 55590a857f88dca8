"""Pydantic models of Meta's WhatsApp webhook payloads (reference: meta-cloud-api.md §1.4-1.6).

Every model keeps unknown fields (``extra="allow"``) and every enum falls back to ``UNKNOWN``,
so a field or value Meta adds tomorrow is carried through, never a crash. Ids and timestamps
are strings on the wire and stay strings here.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.meta_enums import ChangeField, InteractiveType, MessageType, StatusValue


class MetaModel(BaseModel):
    """Base: tolerant of unknown fields, populated by Meta's names."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class ErrorData(MetaModel):
    details: str | None = None


class MetaError(MetaModel):
    """An error object as in ``statuses[].errors[]``, ``messages[].errors[]`` and ``value.errors[]``."""

    code: int
    title: str | None = None
    message: str | None = None
    error_data: ErrorData | None = None
    href: str | None = None


class Profile(MetaModel):
    name: str | None = None
    username: str | None = None


class Contact(MetaModel):
    wa_id: str | None = None
    profile: Profile | None = None
    user_id: str | None = None
    parent_user_id: str | None = None

    @field_validator("wa_id", mode="before")
    @classmethod
    def _stringify(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value


class Metadata(MetaModel):
    display_phone_number: str | None = None
    phone_number_id: str


class Text(MetaModel):
    body: str


class Media(MetaModel):
    """image, video, audio, document and sticker objects."""

    id: str | None = None
    mime_type: str | None = None
    sha256: str | None = None
    caption: str | None = None
    filename: str | None = None
    url: str | None = None
    voice: bool | None = None
    animated: bool | None = None


class Location(MetaModel):
    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None
    url: str | None = None


class Reaction(MetaModel):
    message_id: str
    emoji: str | None = None


class ButtonReply(MetaModel):
    id: str
    title: str | None = None


class ListReply(MetaModel):
    id: str
    title: str | None = None
    description: str | None = None


class NfmReply(MetaModel):
    name: str | None = None
    body: str | None = None
    response_json: str | None = None


class Interactive(MetaModel):
    type: InteractiveType
    button_reply: ButtonReply | None = None
    list_reply: ListReply | None = None
    nfm_reply: NfmReply | None = None


class Button(MetaModel):
    """A tap on a template's quick-reply button."""

    payload: str | None = None
    text: str | None = None


class Context(MetaModel):
    from_: str | None = Field(None, alias="from")
    id: str | None = None
    forwarded: bool | None = None
    frequently_forwarded: bool | None = None
    referred_product: dict[str, Any] | None = None


class Referral(MetaModel):
    source_url: str | None = None
    source_id: str | None = None
    source_type: str | None = None
    headline: str | None = None
    body: str | None = None
    media_type: str | None = None
    ctwa_clid: str | None = None


class System(MetaModel):
    body: str | None = None
    type: str | None = None
    wa_id: str | None = None
    customer: str | None = None


class Message(MetaModel):
    """One inbound message (``value.messages[]``)."""

    id: str
    from_: str | None = Field(None, alias="from")
    from_user_id: str | None = None
    timestamp: str
    type: MessageType
    text: Text | None = None
    image: Media | None = None
    video: Media | None = None
    audio: Media | None = None
    document: Media | None = None
    sticker: Media | None = None
    location: Location | None = None
    contacts: list[dict[str, Any]] | None = None
    reaction: Reaction | None = None
    interactive: Interactive | None = None
    button: Button | None = None
    order: dict[str, Any] | None = None
    system: System | None = None
    context: Context | None = None
    referral: Referral | None = None
    errors: list[MetaError] | None = None

    def text_content(self) -> str | None:
        """The human-readable text of the message, whatever its type."""
        if self.text is not None:
            return self.text.body
        if self.button is not None:
            return self.button.text or self.button.payload
        if self.interactive is not None:
            reply = self.interactive.button_reply or self.interactive.list_reply
            if reply is not None:
                return reply.title or reply.id
        media = self.image or self.video or self.document
        if media is not None:
            return media.caption
        if self.reaction is not None:
            return self.reaction.emoji
        if self.system is not None:
            return self.system.body
        return None


class Pricing(MetaModel):
    billable: bool | None = None
    pricing_model: str | None = None
    type: str | None = None
    category: str | None = None


class Conversation(MetaModel):
    id: str | None = None
    expiration_timestamp: str | None = None
    origin: dict[str, Any] | None = None


class Status(MetaModel):
    """One status of a message we sent (``value.statuses[]``)."""

    id: str
    status: StatusValue
    timestamp: str
    recipient_id: str | None = None
    recipient_user_id: str | None = None  # a username-only recipient (no number) is named by its BSUID
    recipient_type: str | None = None
    recipient_participant_id: str | None = None
    biz_opaque_callback_data: str | None = None
    conversation: Conversation | None = None
    pricing: Pricing | None = None
    errors: list[MetaError] | None = None


class MessagesValue(MetaModel):
    """The value of a ``messages`` change."""

    messaging_product: str | None = None
    metadata: Metadata
    contacts: list[Contact] = Field(default_factory=list)
    messages: list[Message] = Field(default_factory=list)
    statuses: list[Status] = Field(default_factory=list)
    errors: list[MetaError] = Field(default_factory=list)


class Change(MetaModel):
    field: ChangeField
    value: dict[str, Any]

    def phone_number_id(self) -> str | None:
        metadata = self.value.get("metadata")
        if isinstance(metadata, dict) and metadata.get("phone_number_id"):
            return str(metadata["phone_number_id"])
        return None


class Entry(MetaModel):
    id: str
    time: int | None = None
    changes: list[Change] = Field(default_factory=list)


class WebhookEnvelope(MetaModel):
    """A whole webhook POST body."""

    object: str
    entry: list[Entry] = Field(default_factory=list)


class TemplateStatusValue(MetaModel):
    event: str
    message_template_id: int | str | None = None
    message_template_name: str | None = None
    message_template_language: str | None = None
    reason: str | None = None
    message_template_category: str | None = None


class AccountUpdateValue(MetaModel):
    event: str
    waba_info: dict[str, Any] | None = None
    ban_info: dict[str, Any] | None = None
    restriction_info: list[dict[str, Any]] | None = None
    violation_info: dict[str, Any] | None = None


class PhoneNumberQualityValue(MetaModel):
    display_phone_number: str | None = None
    event: str
    old_limit: str | None = None
    current_limit: str | None = None
    max_daily_conversations_per_business: str | None = None


def routing_key(body: dict[str, Any]) -> str:
    """The key on ``wa.webhooks.raw``: the first phone_number_id in the body, else the first WABA id.

    Works on the decoded JSON without validating it, so the ingress hot path stays cheap.
    """
    entries = body.get("entry") or []
    for entry in entries:
        for change in (entry.get("changes") or []) if isinstance(entry, dict) else []:
            value = change.get("value") if isinstance(change, dict) else None
            metadata = value.get("metadata") if isinstance(value, dict) else None
            if isinstance(metadata, dict) and metadata.get("phone_number_id"):
                return str(metadata["phone_number_id"])
    if entries and isinstance(entries[0], dict) and entries[0].get("id"):
        return str(entries[0]["id"])
    return "unknown"


OTHER_VALUE_MODELS: dict[ChangeField, type[MetaModel]] = {
    ChangeField.MESSAGE_TEMPLATE_STATUS_UPDATE: TemplateStatusValue,
    ChangeField.ACCOUNT_UPDATE: AccountUpdateValue,
    ChangeField.PHONE_NUMBER_QUALITY_UPDATE: PhoneNumberQualityValue,
}
