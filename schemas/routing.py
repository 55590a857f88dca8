"""Where a routed event goes: topic and key (pure; shared by the router and the replay tool)."""

from __future__ import annotations

from schemas.catalogue import ACCOUNT_EVENTS, INBOUND, STATUSES, UNROUTABLE, TopicSpec
from schemas.events import AccountEvent, InboundMessage, RoutedEvent, StatusUpdate, UnroutableEvent


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
