"""The events a tenant's endpoint may subscribe to, and the body every delivery carries.

A body is Standard Webhooks' shape: ``{"id", "type", "timestamp", "data"}``. ``id`` is stable (derived from the
source record, so a retry or a replay of the same record carries the same id), ``timestamp`` is when the fact was
recorded in Aerostic (its record's time in Kafka, so a replay gives the same body byte for byte).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

EVENT_TYPES: tuple[str, ...] = (
    "message.received", "message.sent", "message.status",
    "conversation.created", "conversation.assigned", "conversation.handed_off", "conversation.resolved",
    "contact.created", "contact.updated", "contact.opted_out",
    "template.status", "campaign.status", "campaign.recipient.status",
)
ALL_EVENTS = "*"
MAX_FILTER = len(EVENT_TYPES) + 1


def check_filter(events: list[str]) -> list[str]:
    """The filter as stored (sorted, unique); ``[]`` or ``["*"]``: every event. ValueError names a bad one."""
    unknown = [e for e in events if e not in EVENT_TYPES and e != ALL_EVENTS]
    if unknown:
        raise ValueError(f"unknown event type {unknown[0][:60]!r}; known: {', '.join(EVENT_TYPES)}")
    chosen = sorted(set(events))
    return [] if ALL_EVENTS in chosen else chosen


def subscribed(events: list[str], event_type: str) -> bool:
    return not events or event_type in events


def event_id(event_type: str, tenant_id: str, source: str) -> str:
    """``evt_`` and 32 hex characters derived from what the event is about (same source, same id)."""
    digest = hashlib.sha256("\x1f".join((event_type, tenant_id, source)).encode()).hexdigest()[:32]
    return f"evt_{digest}"


@dataclass(frozen=True)
class TenantEvent:
    """One event for a tenant's endpoints; ``ordering_key`` keeps the order of everything about one conversation.

    ``guard`` is ``(kind, subject, record)``: the event is delivered only when ``record`` is the one that made
    ``subject`` first known (kind ``first``: ``conversation.created``, ``contact.created``) or opted it out (kind
    ``opted_out``); kind ``opted_in`` only notes that the subject is no longer opted out and is never delivered.
    The deliverer keeps which record that was, so a replay of it gives the event again.
    """

    type: str
    tenant_id: str
    source: str  # the source record's own id: the event id is derived from it
    ordering_key: str
    data: dict[str, Any]
    guard: tuple[str, str, str] | None = field(default=None)

    @property
    def id(self) -> str:
        return event_id(self.type, self.tenant_id, self.source)

    def body(self, recorded_at: datetime) -> bytes:
        """The exact bytes delivered (and signed): deterministic for a given record."""
        stamp = recorded_at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return json.dumps({"id": self.id, "type": self.type, "timestamp": stamp, "data": self.data},
                          sort_keys=True, separators=(",", ":"), default=str).encode()
