"""Where a routed event goes: topics, keys and records (pure; shared by the router and the replay tool)."""

from __future__ import annotations

from schemas.catalogue import ACCOUNT_EVENTS, INBOUND, MEDIA_REQUESTS, STATUSES, UNROUTABLE, TopicSpec
from schemas.events import AccountEvent, InboundMessage, RoutedEvent, StatusUpdate, UnroutableEvent
from schemas.media import media_request


def route_key(event: RoutedEvent) -> str:
    """The id that names the owner: phone_number_id, or the WABA id for account-level changes."""
    return event.phone_number_id or event.waba_id


def destination(event: RoutedEvent) -> tuple[TopicSpec, str]:
    """The topic and key of an event whose tenant is known."""
    if isinstance(event, InboundMessage):
        return INBOUND, event.conversation_key
    if isinstance(event, StatusUpdate):
        return STATUSES, event.conversation_key
    return ACCOUNT_EVENTS, event.waba_id


def routed_records(event: RoutedEvent) -> list[tuple[TopicSpec, str, bytes]]:
    """The records an event whose tenant is known becomes: the event on its topic and, for a customer's image,
    video, audio, document or sticker, the dispatcher's request to fetch and store it (``media.requests``, in
    the same batch as the message: no consumer reads ``wa.inbound`` again for it)."""
    spec, key = destination(event)
    records = [(spec, key, event.encode())]
    if isinstance(event, InboundMessage) and (request := media_request(event)) is not None:
        records.append((MEDIA_REQUESTS, request.conversation_key, request.encode()))
    return records


def dedupe_key(event: RoutedEvent) -> str | None:
    """Key of the router's seen-table: wamid for messages, (wamid, status) for statuses."""
    if isinstance(event, InboundMessage):
        return f"m:{event.phone_number_id}:{event.wamid}"
    if isinstance(event, StatusUpdate):
        return f"s:{event.phone_number_id}:{event.wamid}:{event.status}"
    return None


def unroutable(event: InboundMessage | StatusUpdate | AccountEvent) -> tuple[TopicSpec, str, UnroutableEvent]:
    key = route_key(event)
    return UNROUTABLE, key, UnroutableEvent(event_id=event.event_id, phone_number_id=key, inner=event)
