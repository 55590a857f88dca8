"""Meta's message objects, as ``POST /v1/messages``, inbox replies and automation replies take them.

``MessageContent`` is a message without its addressing: ``type`` and the object it names, exactly as
Meta's Graph API takes it (https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages),
checked against the limits Meta documents, so a malformed message is refused where it is written (a
clear 422) instead of failing later at Meta. Sub-objects that Meta keeps extending (template
components, contact cards, flow and commerce actions) are checked for their required fields and
otherwise passed through. The routing fields (``ROUTING_FIELDS``) are never part of a message: the
dispatcher sets them from the send request.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

# Graph's fields that say where a message goes (and which request it answers): set by the dispatcher only.
ROUTING_FIELDS = frozenset({"messaging_product", "recipient_type", "to", "recipient", "biz_opaque_callback_data"})

MessageType = Literal["text", "template", "interactive", "image", "video", "audio", "document", "sticker",
                      "location", "contacts", "reaction"]

Link = Annotated[str, StringConstraints(pattern=r"^https?://\S+$", max_length=2048)]


class _Strict(BaseModel):
    """Unknown fields and type coercions are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


class _Open(BaseModel):
    """Required fields are checked; Meta's other fields pass through untouched."""

    model_config = ConfigDict(extra="allow", strict=True)


class TextObject(_Strict):
    body: str = Field(min_length=1, max_length=4096)
    preview_url: bool | None = None

    @field_validator("body")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text.body must not be blank")
        return value


class TemplateLanguage(_Strict):
    code: str = Field(min_length=1, max_length=20)
    policy: Literal["deterministic"] | None = None


class TemplateComponent(_Open):
    type: str = Field(min_length=1, max_length=40)
    sub_type: str | None = None
    index: int | str | None = None
    parameters: list[dict[str, Any]] | None = None


class TemplateObject(_Strict):
    name: str = Field(min_length=1, max_length=512)
    language: TemplateLanguage
    components: list[TemplateComponent] | None = None


class InteractiveText(_Strict):
    text: str = Field(min_length=1, max_length=1024)


class InteractiveFooter(_Strict):
    text: str = Field(min_length=1, max_length=60)


class InteractiveHeader(_Open):
    type: Literal["text", "image", "video", "document"]
    text: str | None = Field(None, min_length=1, max_length=60)


class ReplyButtonBody(_Strict):
    id: str = Field(min_length=1, max_length=256)
    title: str = Field(min_length=1, max_length=20)


class ReplyButton(_Strict):
    type: Literal["reply"]
    reply: ReplyButtonBody


class ButtonAction(_Strict):
    buttons: Annotated[list[ReplyButton], Field(min_length=1, max_length=3)]

    @model_validator(mode="after")
    def _unique(self) -> ButtonAction:
        ids = [b.reply.id for b in self.buttons]
        titles = [b.reply.title for b in self.buttons]
        if len(set(ids)) != len(ids) or len(set(titles)) != len(titles):
            raise ValueError("reply button ids and titles must be unique")
        return self


class ListRow(_Strict):
    id: str = Field(min_length=1, max_length=200)
    title: str = Field(min_length=1, max_length=24)
    description: Annotated[str, StringConstraints(max_length=72)] | None = None


class ListSection(_Strict):
    title: str | None = Field(None, min_length=1, max_length=24)
    rows: Annotated[list[ListRow], Field(min_length=1, max_length=10)]


class ListAction(_Strict):
    button: str = Field(min_length=1, max_length=20)
    sections: Annotated[list[ListSection], Field(min_length=1, max_length=10)]

    @model_validator(mode="after")
    def _limits(self) -> ListAction:
        rows = [row.id for section in self.sections for row in section.rows]
        if len(rows) > 10:
            raise ValueError(f"a list message holds at most 10 rows in all, not {len(rows)}")
        if len(set(rows)) != len(rows):
            raise ValueError("list row ids must be unique")
        if len(self.sections) > 1 and any(s.title is None for s in self.sections):
            raise ValueError("every section needs a title when there is more than one")
        return self


class CtaUrlParameters(_Strict):
    display_text: str = Field(min_length=1, max_length=20)
    url: Link


class CtaUrlAction(_Strict):
    name: Literal["cta_url"]
    parameters: CtaUrlParameters


class _InteractiveBase(_Strict):
    header: InteractiveHeader | None = None
    footer: InteractiveFooter | None = None


class ButtonInteractive(_InteractiveBase):
    type: Literal["button"]
    body: InteractiveText
    action: ButtonAction


class ListInteractive(_InteractiveBase):
    type: Literal["list"]
    body: InteractiveText
    action: ListAction


class CtaUrlInteractive(_InteractiveBase):
    type: Literal["cta_url"]
    body: InteractiveText
    action: CtaUrlAction


class OtherInteractive(_InteractiveBase):
    """Flows, commerce, location and call requests: the action passes through as Meta defines it."""

    type: Literal["flow", "product", "product_list", "catalog_message", "location_request_message",
                  "order_details", "order_status", "address_message", "call_permission_request", "voice_call"]
    body: InteractiveText | None = None
    action: dict[str, Any] | None = None


InteractiveObject = Annotated[ButtonInteractive | ListInteractive | CtaUrlInteractive | OtherInteractive,
                              Field(discriminator="type")]


class _Media(_Strict):
    """A media message names an uploaded media ``id`` or a public ``link``, exactly one of them."""

    id: str | None = Field(None, min_length=1, max_length=256)
    link: Link | None = None

    @model_validator(mode="after")
    def _one_source(self) -> _Media:
        if (self.id is None) == (self.link is None):
            raise ValueError("give exactly one of 'id' (uploaded media) or 'link' (public URL)")
        return self


class ImageObject(_Media):
    caption: str | None = Field(None, min_length=1, max_length=1024)


class VideoObject(_Media):
    caption: str | None = Field(None, min_length=1, max_length=1024)


class DocumentObject(_Media):
    caption: str | None = Field(None, min_length=1, max_length=1024)
    filename: str | None = Field(None, min_length=1, max_length=240)


class AudioObject(_Media):
    pass


class StickerObject(_Media):
    pass


class LocationObject(_Strict):
    latitude: Annotated[float, Field(ge=-90, le=90)]
    longitude: Annotated[float, Field(ge=-180, le=180)]
    name: str | None = Field(None, min_length=1, max_length=1000)
    address: str | None = Field(None, min_length=1, max_length=1000)


class ContactName(_Open):
    formatted_name: str = Field(min_length=1, max_length=1000)


class ContactCard(_Open):
    name: ContactName


class ReactionObject(_Strict):
    message_id: str = Field(min_length=1, max_length=256)
    emoji: Annotated[str, StringConstraints(max_length=16)]  # "" removes the reaction


class MessageContext(_Strict):
    message_id: str = Field(min_length=1, max_length=256)


class MessageContent(_Strict):
    """A message without its addressing: ``type``, the object it names and an optional ``context``.

    What an inbox reply and an automation's reply take (the conversation names the recipient);
    ``api.message_models.MessageCreate`` adds the routing.
    """

    type: MessageType
    text: TextObject | None = None
    template: TemplateObject | None = None
    interactive: InteractiveObject | None = None
    image: ImageObject | None = None
    video: VideoObject | None = None
    audio: AudioObject | None = None
    document: DocumentObject | None = None
    sticker: StickerObject | None = None
    location: LocationObject | None = None
    contacts: Annotated[list[ContactCard], Field(min_length=1)] | None = None
    reaction: ReactionObject | None = None
    context: MessageContext | None = None

    @model_validator(mode="after")
    def _object_matches_type(self) -> MessageContent:
        if getattr(self, self.type) is None:
            raise ValueError(f"type is '{self.type}' but no '{self.type}' object was given")
        others = [name for name in MESSAGE_TYPES if name != self.type and getattr(self, name) is not None]
        if others:
            raise ValueError(f"type is '{self.type}'; remove the {', '.join(repr(o) for o in others)} object(s)")
        return self

    def graph_message(self) -> dict[str, Any]:
        """The message as ``SendCommand.message``: ``type``, its object and ``context``."""
        body = getattr(self, self.type)
        dumped = ([card.model_dump(mode="json", exclude_none=True) for card in body] if isinstance(body, list)
                  else body.model_dump(mode="json", exclude_none=True))
        message: dict[str, Any] = {"type": self.type, self.type: dumped}
        if self.context is not None:
            message["context"] = self.context.model_dump(mode="json")
        return message


MESSAGE_TYPES: tuple[str, ...] = get_args(MessageType)
