"""Which routed inbound messages become media requests, and the records the router writes for them, over Meta's
real media webhooks."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from schemas.catalogue import INBOUND, MEDIA_REQUESTS
from schemas.events import InboundMessage
from schemas.media import MediaRequest, inbound_media_id, media_request
from schemas.routing import routed_records
from streams.split import split_webhook
from tests.unit._vectors import webhook

TENANT = "00000000-0000-0000-0000-00000000000a"
MEDIA_VECTORS = {"openapi-image-message.json": "image", "pywa-message-image.json": "image",
                 "pywa-message-video.json": "video", "pywa-message-audio.json": "audio",
                 "pywa-message-voice.json": "audio", "pywa-message-document.json": "document",
                 "pywa-message-static-sticker.json": "sticker", "pywa-message-animated-sticker.json": "sticker"}


def _inbound(name: str) -> InboundMessage:
    events = split_webhook(orjson.dumps(webhook(name)), received_at=datetime.now(UTC))
    found = [e for e in events if isinstance(e, InboundMessage)]
    assert len(found) == 1
    return found[0].model_copy(update={"tenant_id": TENANT})


@pytest.mark.parametrize(("name", "kind"), sorted(MEDIA_VECTORS.items()))
def test_every_media_message_asks_for_its_media(name: str, kind: str) -> None:
    message = _inbound(name)
    request = media_request(message)
    assert request is not None
    assert request.media_kind == kind
    assert request.meta_media_id == message.payload[kind]["id"]
    assert request.media_id == inbound_media_id(TENANT, message.wamid)  # the same for every redelivery
    assert request.conversation_key == message.conversation_key
    assert MediaRequest.decode(request.encode()) == request


@pytest.mark.parametrize("name", ["pywa-message-text.json", "pywa-message-reaction.json",
                                  "pywa-message-current-location.json"])
def test_other_messages_ask_nothing(name: str) -> None:
    assert media_request(_inbound(name)) is None


def test_a_message_without_a_tenant_or_media_id_asks_nothing() -> None:
    message = _inbound("pywa-message-image.json")
    assert media_request(message.model_copy(update={"tenant_id": None})) is None
    bare = message.model_copy(update={"payload": {**message.payload, "image": {"mime_type": "image/jpeg"}}})
    assert media_request(bare) is None


def test_a_media_message_is_routed_with_its_request_in_the_same_batch() -> None:
    message = _inbound("pywa-message-document.json")
    (spec, key, value), (media_spec, media_key, media_value) = routed_records(message)
    assert (spec, key) == (INBOUND, message.conversation_key)
    assert InboundMessage.decode(value) == message
    assert (media_spec, media_key) == (MEDIA_REQUESTS, message.conversation_key)  # the conversation's partition
    request = MediaRequest.decode(media_value)
    assert request.media_id == inbound_media_id(TENANT, message.wamid)
    assert request.filename == message.payload["document"].get("filename")


def test_a_text_is_routed_alone() -> None:
    message = _inbound("pywa-message-text.json")
    assert [(spec, key) for spec, key, _ in routed_records(message)] == [(INBOUND, message.conversation_key)]
