"""Media intake: every routed inbound image, video, audio, document and sticker becomes a ``MediaRequest``
for the dispatcher (``wa.inbound`` → ``media.requests``), which downloads it from Meta and stores it.

Its own consumer group, so a media backlog never holds the conversation processor. The media id is derived
from (tenant, wamid): a redelivered message asks again under the same id and the dispatcher's result replaces
the same row. A message without a media id (Meta sent none) asks nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from confluent_kafka import Message
from pydantic import ValidationError

from broker.runtime import Output, dead_letter
from schemas.catalogue import INBOUND, MEDIA_INTAKE_GROUP, MEDIA_REQUESTS
from schemas.events import InboundMessage
from schemas.media import MEDIA_KINDS, MediaKind, MediaRequest, inbound_media_id


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


class MediaIntake:
    """The ``Processor`` of ``wa.inbound`` for media."""

    group_id = MEDIA_INTAKE_GROUP

    def __init__(self, *, prefix: str) -> None:
        self.prefix = prefix
        self.topics = [INBOUND.full_name(prefix)]
        self.requests = MEDIA_REQUESTS.full_name(prefix)

    async def process(self, batch: Sequence[Message]) -> list[Output]:
        outputs: list[Output] = []
        for msg in batch:
            try:
                request = media_request(InboundMessage.decode(msg.value() or b""))
            except ValidationError as exc:
                outputs.append(dead_letter(self.group_id, msg, exc, self.prefix))
                continue
            if request is not None:
                outputs.append(Output(self.requests, request.conversation_key.encode(), request.encode()))
        return outputs

    async def saved(self) -> None:
        """Nothing of its own to save: the requests are its only effect."""
