"""Media: Meta's kinds, types and size limits, and the contracts of the dispatcher's media lane.

Limits (one source of truth for the API's uploads and the dispatcher's downloads), from Meta's media reference
(developers.facebook.com/documentation/business-messaging/whatsapp/business-phone-numbers/media; sizes as
maintained clients document them): image ``image/jpeg``/``image/png`` 5 MB; video ``video/mp4``/``video/3gpp``
16 MB; audio ``audio/aac``/``amr``/``mpeg``/``mp4``/``ogg`` 16 MB; document (text, PDF, Office) 100 MB; sticker
``image/webp`` 500 KB (animated; 100 KB static). A customer may send any file as a document, so inbound
documents are checked for size only.

``MediaRequest`` (``media.requests``, keyed by conversation): an inbound media message for the dispatcher to
resolve (``GET /{media-id}``), download and store; the router asks it (``media_request``) as it routes the
message. ``MediaResult`` (``media.results``): what came of it; the projector writes it to ``media``, which the
API serves (``GET /v1/media/{id}``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field

from schemas.events import Event, InboundMessage

MB = 1024 * 1024
KB = 1024
MediaKind = Literal["image", "video", "audio", "document", "sticker"]
MEDIA_KINDS: tuple[MediaKind, ...] = ("image", "video", "audio", "document", "sticker")
DOCUMENT_TYPES = frozenset({
    "text/plain", "application/pdf", "application/msword", "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
})


@dataclass(frozen=True, slots=True)
class KindLimit:
    kind: MediaKind
    types: frozenset[str]
    max_bytes: int


LIMITS: dict[MediaKind, KindLimit] = {
    "image": KindLimit("image", frozenset({"image/jpeg", "image/png"}), 5 * MB),
    "video": KindLimit("video", frozenset({"video/mp4", "video/3gpp"}), 16 * MB),
    "audio": KindLimit("audio", frozenset({"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"}),
                       16 * MB),
    "document": KindLimit("document", DOCUMENT_TYPES, 100 * MB),
    "sticker": KindLimit("sticker", frozenset({"image/webp"}), 500 * KB),
}
MAX_MEDIA_BYTES = max(limit.max_bytes for limit in LIMITS.values())


class MediaRefused(ValueError):
    """A file Meta would not take (or that Aerostic will not keep): ``reason`` says which limit."""

    def __init__(self, reason: str, *, too_large: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.too_large = reason, too_large


def base_type(mime_type: str) -> str:
    """``audio/ogg; codecs=opus`` → ``audio/ogg`` (lower case, parameters dropped)."""
    return mime_type.split(";", 1)[0].strip().lower()


def kind_of(mime_type: str) -> MediaKind | None:
    """The kind an upload of ``mime_type`` is sent as (``image/webp`` is a sticker); None when Meta takes none."""
    mime = base_type(mime_type)
    return next((limit.kind for limit in LIMITS.values() if mime in limit.types), None)


def check(kind: MediaKind, mime_type: str, size: int | None, *, inbound: bool = False) -> None:
    """Raise ``MediaRefused`` unless ``kind`` takes ``mime_type`` and ``size`` bytes (None: not known yet)."""
    limit = LIMITS[kind]
    mime = base_type(mime_type)
    if not (inbound and kind == "document") and mime not in limit.types:
        raise MediaRefused(f"{kind} files must be one of {', '.join(sorted(limit.types))}, not {mime or 'unknown'}")
    if size is not None and size > limit.max_bytes:
        raise MediaRefused(f"{kind} files may be at most {_human(limit.max_bytes)} ({limit.max_bytes} bytes); "
                           f"this one has {size} bytes", too_large=True)


def _human(size: int) -> str:
    return f"{size // MB} MB" if size >= MB else f"{size // KB} KB"


def inbound_media_id(tenant_id: str, wamid: str) -> str:
    """Aerostic's id of an inbound message's media: the same for every redelivery of the message."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"aerostic:media:{tenant_id}:{wamid}"))


def storage_key(tenant_id: str, media_id: str) -> str:
    """Where a media file lives in the store: under its tenant's prefix (deleted with the tenant)."""
    return f"{tenant_id}/{media_id}"


def is_media_id(value: str) -> bool:
    """Whether ``value`` is one of Aerostic's media ids (a UUID), as opposed to Meta's (digits)."""
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


MAX_TEMPLATE_MEDIA = 100  # template components, and parameters of each, looked at (Meta's templates have far fewer)


def media_objects(message: dict[str, Any]) -> list[tuple[tuple[str | int, ...], MediaKind, dict[str, Any]]]:
    """Every media object of a message, with where it is: the message's own (``image``, ``document``…) and a
    template's media parameters (a header's image, video or document)."""
    found: list[tuple[tuple[str | int, ...], MediaKind, dict[str, Any]]] = []
    kind = message.get("type")
    if isinstance(kind, str) and kind in MEDIA_KINDS and isinstance(message.get(kind), dict):
        found.append(((kind,), kind, message[kind]))
    template = message.get("template") if kind == "template" else None
    components = template.get("components") if isinstance(template, dict) else None
    for i, component in enumerate(components[:MAX_TEMPLATE_MEDIA] if isinstance(components, list) else []):
        parameters = component.get("parameters") if isinstance(component, dict) else None
        for j, parameter in enumerate(parameters[:MAX_TEMPLATE_MEDIA] if isinstance(parameters, list) else []):
            ptype = parameter.get("type") if isinstance(parameter, dict) else None
            if isinstance(ptype, str) and ptype in MEDIA_KINDS and isinstance(parameter.get(ptype), dict):
                found.append((("template", "components", i, "parameters", j, ptype), ptype,
                              parameter[ptype]))
    return found


class MediaRequest(Event):
    """An inbound message's media for the dispatcher to download and store."""

    kind: Literal["media_request"] = "media_request"
    media_id: str
    tenant_id: str
    phone_number_id: str
    waba_id: str
    conversation_key: str
    wamid: str
    meta_media_id: str = Field(min_length=1, max_length=128)
    media_kind: MediaKind
    mime_type: str | None = None
    filename: str | None = Field(None, max_length=255)
    requested_at: datetime


class MediaResult(Event):
    """What became of a ``MediaRequest``: stored (with its size, type and digest) or failed with the reason."""

    kind: Literal["media_result"] = "media_result"
    media_id: str
    tenant_id: str
    phone_number_id: str
    conversation_key: str
    wamid: str
    media_kind: MediaKind
    outcome: Literal["stored", "failed"]
    mime_type: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    storage_key: str | None = None
    filename: str | None = None
    error_code: int | None = None
    error: str | None = Field(None, max_length=1000)
    completed_at: datetime


def media_request(message: InboundMessage) -> MediaRequest | None:
    """The request for ``message``'s media, or None when it carries none (or has no tenant)."""
    if message.type not in MEDIA_KINDS or message.tenant_id is None:
        return None
    media = message.payload.get(message.type)
    if not isinstance(media, dict) or not isinstance(media.get("id"), str) or not media["id"]:
        return None
    kind: MediaKind = message.type  # narrowed by the MEDIA_KINDS check above
    filename = media.get("filename")
    return MediaRequest(
        event_id=f"media:{message.event_id}", media_id=inbound_media_id(message.tenant_id, message.wamid),
        tenant_id=message.tenant_id, phone_number_id=message.phone_number_id, waba_id=message.waba_id,
        conversation_key=message.conversation_key, wamid=message.wamid, meta_media_id=media["id"][:128],
        media_kind=kind, mime_type=str(media.get("mime_type") or "") or None,
        filename=filename[:255] if isinstance(filename, str) else None, requested_at=datetime.now(UTC))
