"""What the simulator accepts on ``POST /{version}/{phone_number_id}/messages``.

Pydantic models written from Meta's Cloud API messages reference: text, media, template, interactive,
reaction, location and contacts messages, plus the mark-as-read / typing-indicator body that shares the
endpoint. ``validate_send`` is the entry point; it returns a model or raises ``InvalidSend``, whose
``details`` read like the details of Meta's error 100. Unknown extra keys are ignored (Meta ignores many);
wrong types, missing required fields, unknown ``type`` values and exceeded limits are refused.
https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, Self, TypeVar, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

T = TypeVar("T")


class InvalidSend(ValueError):
    """A body Meta would refuse with error 100; ``message`` says why (Meta-like wording)."""

    def __init__(self, details: str) -> None:
        super().__init__(details)
        self.details = details

    @property
    def message(self) -> str:
        return self.details


# --- building blocks -------------------------------------------------------------------------------

def _refuse(text: str, *at: str | int) -> PydanticCustomError:
    """An error whose path is the failing model's location plus ``at``; ``text`` completes "Param <path> …"."""
    return PydanticCustomError("meta_param", "{text}", {"text": text, "at": at})


def _required(*at: str | int) -> PydanticCustomError:
    return PydanticCustomError("missing", "Field required", {"at": at})


def _require(value: T | None, *at: str | int) -> T:
    if value is None:
        raise _required(*at)
    return value


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _scalar_text(value: object) -> object:
    """Graph coerces scalars: Meta's own issue-resolution example sends booleans as text parameters."""
    return json.dumps(value) if isinstance(value, bool | int | float) else value


def _check_url(value: str) -> str:
    if not re.fullmatch(r"https?://[^\s/]+\S*", value, flags=re.IGNORECASE):
        raise _refuse("is not a valid http(s) URL")
    return value


def _chars(max_length: int, min_length: int = 1) -> Any:
    return StringConstraints(min_length=min_length, max_length=max_length)


NonEmpty = Annotated[str, StringConstraints(min_length=1)]
Url = Annotated[str, AfterValidator(_check_url)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Context(_Model):
    message_id: NonEmpty


# --- text, media, reaction, location, contacts -----------------------------------------------------

class TextObject(_Model):
    body: Annotated[str, _chars(4096)]
    preview_url: bool = False


class MediaObject(_Model):
    """Uploaded media by ``id`` or hosted media by ``link``, never both."""

    id: NonEmpty | None = None
    link: Url | None = None
    caption: Annotated[str, _chars(1024, 0)] | None = None
    filename: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.id is None) == (self.link is None):
            raise _refuse("must contain exactly one of id or link")
        return self


class ReactionObject(_Model):
    message_id: NonEmpty
    emoji: Annotated[str, _chars(16, 0)]  # "" removes the reaction


class LocationObject(_Model):
    latitude: Annotated[float, Field(ge=-90, le=90)]
    longitude: Annotated[float, Field(ge=-180, le=180)]
    name: str | None = None
    address: str | None = None


class ContactName(_Model):
    formatted_name: NonEmpty
    first_name: str | None = None
    last_name: str | None = None
    middle_name: str | None = None
    prefix: str | None = None
    suffix: str | None = None


class ContactPhone(_Model):
    phone: str | None = None
    type: str | None = None
    wa_id: str | None = None


class ContactCard(_Model):
    name: ContactName
    phones: list[ContactPhone] = []
    emails: list[dict[str, str]] = []
    urls: list[dict[str, str]] = []
    addresses: list[dict[str, str]] = []
    org: dict[str, str] | None = None
    birthday: Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$")] | None = None


# --- interactive -------------------------------------------------------------------------------------

InteractiveType = Literal[
    "button", "list", "cta_url", "flow", "product", "product_list", "catalog_message",
    "location_request_message", "order_details", "order_status", "call_permission_request", "voice_call",
    "carousel", "request_contact_info",
]


class InteractiveHeader(_Model):
    type: Literal["text", "image", "video", "document"]
    text: Annotated[str, _chars(60)] | None = None
    image: MediaObject | None = None
    video: MediaObject | None = None
    document: MediaObject | None = None

    @model_validator(mode="after")
    def _has_content(self) -> Self:
        _require(getattr(self, self.type), self.type)
        return self


class TextBlock(_Model):
    text: Annotated[str, _chars(4096)]


class FooterBlock(_Model):
    text: Annotated[str, _chars(60)]


class ReplyButtonBody(_Model):
    id: Annotated[str, _chars(256)]
    title: Annotated[str, _chars(20)]


class ReplyButton(_Model):
    type: Literal["reply"]
    reply: ReplyButtonBody


class ListRow(_Model):
    id: Annotated[str, _chars(200)]
    title: Annotated[str, _chars(24)]
    description: Annotated[str, _chars(72, 0)] | None = None


class ProductItem(_Model):
    product_retailer_id: NonEmpty


class Section(_Model):
    """A list section (``rows``) or a multi-product section (``product_items``)."""

    title: Annotated[str, _chars(24)] | None = None
    rows: list[ListRow] | None = None
    product_items: list[ProductItem] | None = None


class InteractiveCard(_Model):
    """One card of an interactive carousel: its index, a media header and its own action."""

    card_index: Annotated[int, Field(ge=0, le=9)]
    type: Literal["cta_url", "button"] = "cta_url"
    header: InteractiveHeader
    body: TextBlock | None = None
    action: dict[str, Any]

    @model_validator(mode="after")
    def _media_header(self) -> Self:
        if self.header.type not in ("image", "video"):
            raise _refuse("must be 'image' or 'video' for carousel cards", "header", "type")
        return self


class InteractiveAction(_Model):
    cards: Annotated[list[InteractiveCard], Field(min_length=2, max_length=10)] | None = None
    buttons: Annotated[list[ReplyButton], Field(min_length=1, max_length=3)] | None = None
    button: Annotated[str, _chars(20)] | None = None
    sections: Annotated[list[Section], Field(min_length=1, max_length=10)] | None = None
    catalog_id: NonEmpty | None = None
    product_retailer_id: NonEmpty | None = None
    name: NonEmpty | None = None
    parameters: dict[str, Any] | None = None


class Interactive(_Model):
    type: InteractiveType
    header: InteractiveHeader | None = None
    body: TextBlock | None = None
    footer: FooterBlock | None = None
    action: InteractiveAction

    @model_validator(mode="after")
    def _fits_type(self) -> Self:
        limit = 4096 if self.type == "list" else 1024
        if self.body is not None and len(self.body.text) > limit:
            raise _refuse(f"must be at most {limit} characters long", "body", "text")
        _INTERACTIVE_RULES[self.type](self)
        return self


def _needs_body(m: Interactive) -> None:
    _require(m.body, "body")


def _named(action_name: str, *params: str) -> Callable[[Interactive], None]:
    """A rule for the action types identified by ``action.name`` with required ``parameters`` keys."""

    def rule(m: Interactive) -> None:
        name = _require(m.action.name, "action", "name")
        if name != action_name:
            raise _refuse(f"must be {action_name!r} for {m.type} messages - got {name!r}", "action", "name")
        if params:
            given = _require(m.action.parameters, "action", "parameters")
            for key in params:
                _require(given.get(key), "action", "parameters", key)

    return rule


def _button_rules(m: Interactive) -> None:
    _needs_body(m)
    buttons = _require(m.action.buttons, "action", "buttons")
    if len({b.reply.id for b in buttons}) != len(buttons):
        raise _refuse("must have unique reply ids", "action", "buttons")


def _list_rules(m: Interactive) -> None:
    _needs_body(m)
    if m.header is not None and m.header.type != "text":
        raise _refuse("must be 'text' for list messages", "header", "type")
    _require(m.action.button, "action", "button")
    sections = _require(m.action.sections, "action", "sections")
    rows = [row for i, s in enumerate(sections) for row in _require(s.rows, "action", "sections", i, "rows")]
    if not 1 <= len(rows) <= 10:
        raise _refuse(f"must contain between 1 and 10 rows in total - got {len(rows)} rows", "action", "sections")
    if len({row.id for row in rows}) != len(rows):
        raise _refuse("must have unique row ids", "action", "sections")
    _titled_if_many(sections)


def _titled_if_many(sections: Sequence[Section]) -> None:
    if len(sections) > 1:
        for i, section in enumerate(sections):
            _require(section.title, "action", "sections", i, "title")


def _product_rules(m: Interactive) -> None:
    _require(m.action.catalog_id, "action", "catalog_id")
    _require(m.action.product_retailer_id, "action", "product_retailer_id")


def _product_list_rules(m: Interactive) -> None:
    _require(m.header, "header")
    _needs_body(m)
    _require(m.action.catalog_id, "action", "catalog_id")
    sections = _require(m.action.sections, "action", "sections")
    items = [item for i, s in enumerate(sections)
             for item in _require(s.product_items, "action", "sections", i, "product_items")]
    if not 1 <= len(items) <= 30:
        raise _refuse(f"must contain between 1 and 30 products in total - got {len(items)}", "action", "sections")
    _titled_if_many(sections)


def _flow_rules(m: Interactive) -> None:
    _needs_body(m)
    _named("flow", "flow_message_version", "flow_cta")(m)
    params = m.action.parameters or {}
    if "flow_id" not in params and "flow_name" not in params:
        raise _refuse("must contain flow_id or flow_name", "action", "parameters")


def _cta_url_rules(m: Interactive) -> None:
    _needs_body(m)
    _named("cta_url", "display_text", "url")(m)
    params = m.action.parameters or {}
    text, url = params["display_text"], params["url"]
    if not isinstance(text, str) or len(text) > 20:
        raise _refuse("must be a string of at most 20 characters", "action", "parameters", "display_text")
    if not isinstance(url, str) or not re.fullmatch(r"https?://\S+", url):
        raise _refuse("is not a valid http(s) URL", "action", "parameters", "url")


def _carousel_rules(m: Interactive) -> None:
    _needs_body(m)
    cards = _require(m.action.cards, "action", "cards")
    if sorted(card.card_index for card in cards) != list(range(len(cards))):
        raise _refuse("must be numbered 0 to n-1 by card_index", "action", "cards")


def _with_body(rule: Callable[[Interactive], None]) -> Callable[[Interactive], None]:
    def checked(m: Interactive) -> None:
        _needs_body(m)
        rule(m)

    return checked


_INTERACTIVE_RULES: dict[str, Callable[[Interactive], None]] = {
    "button": _button_rules,
    "list": _list_rules,
    "product": _product_rules,
    "product_list": _product_list_rules,
    "flow": _flow_rules,
    "cta_url": _cta_url_rules,
    "catalog_message": _with_body(_named("catalog_message")),
    "location_request_message": _with_body(_named("send_location")),
    "order_details": _with_body(_named("review_and_pay", "reference_id")),
    "order_status": _with_body(_named("review_order", "reference_id", "order")),
    "call_permission_request": _with_body(_named("call_permission_request")),
    "voice_call": _with_body(_named("voice_call")),
    "carousel": _carousel_rules,
    # Asks a customer known by username only to share their number.
    "request_contact_info": _with_body(_named("request_contact_info")),
}
assert set(_INTERACTIVE_RULES) == set(get_args(InteractiveType))


# --- template ----------------------------------------------------------------------------------------

ParameterType = Literal[
    "text", "currency", "date_time", "image", "video", "document", "location", "payload", "action",
    "coupon_code", "product", "limited_time_offer", "order_status",
]
ComponentType = Literal["header", "body", "footer", "button", "carousel", "limited_time_offer", "order_status"]
ButtonSubType = Literal[
    "quick_reply", "url", "catalog", "flow", "copy_code", "mpm", "voice_call", "order_details", "spm",
]


class Currency(_Model):
    fallback_value: NonEmpty
    code: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{3}$")]
    amount_1000: int


class DateTime(_Model):
    fallback_value: NonEmpty


class TemplateParameter(_Model):
    """One variable value; the key named by ``type`` carries it (``{"type": "text", "text": "Mark"}``)."""

    type: ParameterType
    parameter_name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]+$")] | None = None
    text: Annotated[str, BeforeValidator(_scalar_text), _chars(32768)] | None = None
    payload: NonEmpty | None = None
    coupon_code: Annotated[str, _chars(20)] | None = None
    currency: Currency | None = None
    date_time: DateTime | None = None
    image: MediaObject | None = None
    video: MediaObject | None = None
    document: MediaObject | None = None
    location: LocationObject | None = None
    action: dict[str, Any] | None = None
    product: dict[str, Any] | None = None
    limited_time_offer: dict[str, Any] | None = None
    order_status: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _has_value(self) -> Self:
        _require(getattr(self, self.type), self.type)
        return self


class TemplateComponent(_Model):
    type: Annotated[ComponentType, BeforeValidator(_lower)]
    sub_type: Annotated[ButtonSubType, BeforeValidator(_lower)] | None = None
    index: Annotated[int, Field(ge=0, le=9)] | None = None
    parameters: list[TemplateParameter] = []
    cards: list[CarouselCard] | None = None

    @model_validator(mode="after")
    def _button_is_placed(self) -> Self:
        if self.type == "button":
            _require(self.sub_type, "sub_type")
            _require(self.index, "index")
        return self

    @property
    def key(self) -> str:
        """``header``, ``body``, ``button:<index>`` …: how parameter counts are keyed."""
        return f"button:{self.index}" if self.type == "button" else self.type


class CarouselCard(_Model):
    card_index: Annotated[int, Field(ge=0, le=9)]
    components: list[TemplateComponent]


class TemplateLanguage(_Model):
    code: Annotated[str, _chars(16)]
    policy: Literal["deterministic"] = "deterministic"


class TemplateObject(_Model):
    name: Annotated[str, _chars(512)]
    language: TemplateLanguage
    components: list[TemplateComponent] = []

    @model_validator(mode="after")
    def _unique_components(self) -> Self:
        keys = [c.key for c in self.components]
        if len(set(keys)) != len(keys):
            raise _refuse("must not repeat a component (header, body or button index)", "components")
        return self

    @property
    def language_code(self) -> str:
        return self.language.code

    def parameter_counts(self) -> dict[str, int]:
        """Parameters per component key; carousel cards appear as ``card:<i>:<key>``."""
        counts: dict[str, int] = {}
        for component in self.components:
            counts[component.key] = len(component.parameters)
            for card in component.cards or []:
                for inner in card.components:
                    counts[f"card:{card.card_index}:{inner.key}"] = len(inner.parameters)
        return counts


TemplateComponent.model_rebuild()


# --- the two bodies ----------------------------------------------------------------------------------

MessageType = Literal[
    "text", "image", "audio", "video", "document", "sticker", "reaction", "location", "contacts", "interactive",
    "template",
]
_PAYLOAD_KEYS: tuple[str, ...] = get_args(MessageType)
_PHONE = re.compile(r"\+?[0-9][0-9 ()\-]*")
_BSUID = re.compile(r"[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,64}")


class SendRequest(_Model):
    """A message to send; exactly the payload object named by ``type`` is used."""

    messaging_product: Literal["whatsapp"]
    recipient_type: Literal["individual", "group"] = "individual"
    to: NonEmpty | None = None
    recipient: NonEmpty | None = None  # a customer's BSUID ("US.1349…"), instead of ``to``
    type: MessageType = "text"
    context: Context | None = None
    biz_opaque_callback_data: Annotated[str, _chars(512, 0)] | None = None
    text: TextObject | None = None
    image: MediaObject | None = None
    audio: MediaObject | None = None
    video: MediaObject | None = None
    document: MediaObject | None = None
    sticker: MediaObject | None = None
    reaction: ReactionObject | None = None
    location: LocationObject | None = None
    contacts: Annotated[list[ContactCard], Field(min_length=1)] | None = None
    interactive: Interactive | None = None
    template: TemplateObject | None = None

    @model_validator(mode="before")
    @classmethod
    def _infer_type(cls, data: Any) -> Any:
        """Meta defaults ``type`` (its own examples omit it); take the lone payload key present, else text."""
        if isinstance(data, dict) and "type" not in data:
            present = [key for key in _PAYLOAD_KEYS if key in data]
            if len(present) == 1:
                return {**data, "type": present[0]}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _require(getattr(self, self.type), self.type)
        if self.to is None and self.recipient is None:
            raise _required("to")
        if self.to is not None and self.recipient is not None:
            raise _refuse("must not be given with 'to': a message has one recipient", "recipient")
        if self.recipient is not None and not _BSUID.fullmatch(self.recipient):
            raise _refuse("must be a business-scoped user id such as 'US.13491208655302741918'", "recipient")
        if self.recipient_type == "individual" and self.to is not None:
            digits = sum(ch.isdigit() for ch in self.to)
            if not _PHONE.fullmatch(self.to) or not 1 <= digits <= 15:
                raise _refuse("must be a phone number of up to 15 digits, optionally with a leading '+'", "to")
        return self

    @property
    def reply_to(self) -> str | None:
        return self.context.message_id if self.context else None

    @property
    def wa_id(self) -> str:
        """The recipient as Meta normalises it: digits only for phone numbers, the group id or BSUID as given."""
        if self.recipient is not None:
            return self.recipient
        assert self.to is not None
        return re.sub(r"\D", "", self.to) if self.recipient_type == "individual" else self.to

    @property
    def is_template(self) -> bool:
        return self.type == "template"

    @property
    def is_free_form(self) -> bool:
        """Every type but template: allowed only inside the 24 h customer service window."""
        return self.type != "template"

    def template_parameter_counts(self) -> dict[str, int]:
        """Parameters per template component key (``header``, ``body``, ``button:0`` …); empty for non-templates."""
        return self.template.parameter_counts() if self.template else {}


class StatusRequest(_Model):
    """Mark-as-read, optionally showing a typing indicator to the user."""

    messaging_product: Literal["whatsapp"]
    status: Literal["read"]
    message_id: NonEmpty
    typing_indicator: bool = False

    @field_validator("typing_indicator", mode="before")
    @classmethod
    def _indicator(cls, value: object) -> object:
        if value is None or isinstance(value, bool):
            return bool(value)
        if not isinstance(value, dict):
            raise _refuse("must be a JSON object")
        if value.get("type") != "text":
            raise _refuse(f"must be 'text' - got {value.get('type')!r}", "type")
        return True


# --- entry point -------------------------------------------------------------------------------------

def validate_send(body: object) -> SendRequest | StatusRequest:
    """Validate a decoded JSON body for the messages endpoint; raises ``InvalidSend``."""
    if not isinstance(body, dict):
        raise InvalidSend("The request body must be a JSON object.")
    model: type[SendRequest | StatusRequest] = StatusRequest if "status" in body else SendRequest
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise InvalidSend(describe(exc.errors()[0])) from None


_TYPE_WORDS = {
    "string": "a string", "int": "an integer", "float": "a number", "bool": "a boolean",
    "dict": "a JSON object", "model": "a JSON object", "model_attributes": "a JSON object", "list": "an array",
}


def describe(error: ErrorDetails) -> str:
    """One pydantic error as Meta-like wording, naming the parameter the way Meta does (``text['body']``)."""
    ctx = error.get("ctx") or {}
    path = _format_path(tuple(error["loc"]) + tuple(ctx.get("at", ())))
    kind = error["type"]
    if kind == "missing":
        return f"The parameter {path} is required."
    if kind == "meta_param":
        return f"Param {path} {ctx['text']}." if path else f"{ctx['text']}."
    if kind == "string_too_long":
        return f"Param {path} must be at most {ctx['max_length']} characters long."
    if kind == "string_too_short":
        return f"Param {path} must be at least {ctx['min_length']} characters long."
    if kind == "too_long":
        return f"Param {path} must have at most {ctx['max_length']} elements."
    if kind == "too_short":
        return f"Param {path} must have at least {ctx['min_length']} elements."
    if kind == "literal_error":
        return f"Param {path} must be one of {ctx['expected']} - got {error['input']!r}."
    for prefix, word in _TYPE_WORDS.items():
        if kind in (f"{prefix}_type", f"{prefix}_parsing"):
            return f"Param {path} must be {word}."
    return f"Param {path} is invalid: {error['msg']}."


def _format_path(loc: Sequence[str | int]) -> str:
    if not loc:
        return ""
    head, *rest = loc
    return str(head) + "".join(f"[{part}]" if isinstance(part, int) else f"['{part}']" for part in rest)
