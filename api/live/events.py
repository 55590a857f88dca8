"""What the live feed sends: each Kafka record of the feed's topics turned into one browser event (or none).

The event contract (one source of truth, mirrored by ``api/console/static/live.js``)::

    {"id": "<cursor>", "type": "<type>", "at": "<ISO time>", "conversation_key": "<key>" | null, "data": {...}}

==================  =================================================================================
type                data
==================  =================================================================================
``message.in``      wamid, wa_id, profile_name, type, text, timestamp, media_id (``wa.inbound``)
``message.out``     message_id, to, type, text, message, requested_by, author (agent/api/ai/rule/campaign),
                    campaign_id (``MessageQueued`` on ``conversations.events``)
``message.status``  message_id, wamid, key, status, timestamp, error_code, error_title, error_details
                    (``wa.statuses``; ``outbound.results`` as accepted / failed, with ``ambiguous``: the
                    send timed out after Meta may have taken it, so Meta's own statuses win over it).
                    ``key`` is the send's idempotency key, which Meta's statuses carry back: it ties
                    an ambiguous send, which has no wamid, to the statuses Meta reports for it
``conversation``    state, assignee_id, team, cause, reason, version, phone_number_id, wa_id
``contact``         wa_id, tags, attributes, opted_out
``ai``              outcome, confidence, reason, applied
``presence``        user_id, presence (``agents.presence``)
``campaign``        the campaign's progress record: campaign_id, state, state_reason, funnel (admins only)
``reset``           reason: the feed cannot resume this cursor; reload the page's state (sent by the
                    stream itself, never from a record)
==================  =================================================================================

Decoding must stay cheap, since the feed's consumer shares the web process with the webhook hot path: one
``orjson`` parse and a few dictionary reads per record, no model validation. A record without a tenant,
of an unknown kind or not JSON is skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from schemas.catalogue import (
    AGENTS_PRESENCE,
    CAMPAIGNS_PROGRESS,
    CONVERSATIONS_EVENTS,
    INBOUND,
    OUTBOUND_RESULTS,
    STATUSES,
)

ADMIN_ONLY = frozenset({"campaign"})
MEDIA_TYPES = frozenset({"image", "audio", "video", "document", "sticker"})
LOCAL_WAMID = "local."  # schemas.outbound.local_wamid: a failure decided before Meta was called


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """One event for the browsers of ``tenant_id`` (``id`` and ``at`` are added by the feed)."""

    tenant_id: str
    type: str
    conversation_key: str | None
    data: dict[str, Any]


Decoder = Callable[[dict[str, Any], str | None], LiveEvent | None]


def _inbound(v: dict[str, Any], key: str | None) -> LiveEvent:
    kind = v.get("type")
    body = (v.get("payload") or {}).get(kind) if kind in MEDIA_TYPES else None
    return LiveEvent(v["tenant_id"], "message.in", key, {
        "wamid": v.get("wamid"), "wa_id": v.get("wa_id"), "profile_name": v.get("profile_name"), "type": kind,
        "text": v.get("text"), "timestamp": v.get("timestamp"),
        "media_id": body.get("id") if isinstance(body, dict) else None})


def _status(v: dict[str, Any], key: str | None) -> LiveEvent:
    wamid = str(v.get("wamid") or "")
    return LiveEvent(v["tenant_id"], "message.status", key, {
        "message_id": wamid.removeprefix(LOCAL_WAMID) if wamid.startswith(LOCAL_WAMID) else None,
        "wamid": wamid or None, "key": v.get("biz_opaque_callback_data"), "status": v.get("status"),
        "timestamp": v.get("timestamp"),
        "error_code": v.get("error_code"), "error_title": v.get("error_title"),
        "error_details": v.get("error_details")})


def _result(v: dict[str, Any], key: str | None) -> LiveEvent:
    return LiveEvent(v["tenant_id"], "message.status", key, {
        "message_id": v.get("message_id"), "wamid": v.get("wamid"), "key": v.get("idempotency_key"),
        "status": v.get("outcome"), "ambiguous": bool(v.get("ambiguous")), "timestamp": v.get("completed_at"),
        "error_code": v.get("error_code"), "error_title": v.get("error_title"),
        "error_details": v.get("error_details")})


def author_of(requested_by: str) -> tuple[str, str, str | None]:
    """(author, requested_by as the feed shows it, campaign id) of a queued message's ``requested_by``.

    ``user:<id>`` is an agent (shown as the user id), ``automation:<rule id>`` a rule (the rule id),
    ``ai:<provider>`` the AI, ``campaign:<id>`` a campaign, anything else (``api_key:<id>``) the API.
    """
    prefix, _, rest = requested_by.partition(":")
    if prefix == "user":
        return "agent", rest, None
    if prefix == "automation":
        return "rule", rest, None
    if prefix == "ai":
        return "ai", requested_by, None
    if prefix == "campaign":
        return "campaign", requested_by, rest
    return "api", requested_by, None


def _conversation_event(v: dict[str, Any], key: str | None) -> LiveEvent | None:
    kind = v.get("kind")
    tenant = v["tenant_id"]
    if kind == "message_queued":
        message = v.get("message") or {}
        author, requested_by, campaign_id = author_of(str(v.get("requested_by") or ""))
        text = (message.get("text") or {}).get("body") if isinstance(message.get("text"), dict) else None
        return LiveEvent(tenant, "message.out", key, {
            "message_id": v.get("message_id"), "to": v.get("to"), "type": message.get("type"), "text": text,
            "message": message, "requested_by": requested_by, "author": author, "campaign_id": campaign_id})
    if kind == "conversation_changed":
        return LiveEvent(tenant, "conversation", v.get("conversation_key") or key, {
            name: v.get(name) for name in ("state", "assignee_id", "team", "cause", "reason", "version",
                                           "phone_number_id", "wa_id")})
    if kind == "contact_changed":
        return LiveEvent(tenant, "contact", key, {
            "wa_id": v.get("wa_id"), "tags": v.get("tags") or [], "attributes": v.get("attributes") or {},
            "opted_out": bool(v.get("opted_out"))})
    if kind == "ai_outcome":
        return LiveEvent(tenant, "ai", v.get("conversation_key") or key, {
            name: v.get(name) for name in ("outcome", "confidence", "reason", "applied")})
    return None


def _campaign(v: dict[str, Any], _key: str | None) -> LiveEvent:
    return LiveEvent(v["tenant_id"], "campaign", None, {
        name: v.get(name) for name in ("campaign_id", "state", "state_reason", "funnel", "at")})


def _presence(v: dict[str, Any], _key: str | None) -> LiveEvent:
    return LiveEvent(v["tenant_id"], "presence", None, {"user_id": v.get("user_id"), "presence": v.get("presence")})


DECODERS: dict[str, Decoder] = {
    INBOUND.name: _inbound, STATUSES.name: _status, OUTBOUND_RESULTS.name: _result,
    CONVERSATIONS_EVENTS.name: _conversation_event, CAMPAIGNS_PROGRESS.name: _campaign, AGENTS_PRESENCE.name: _presence,
}
TOPICS: tuple[str, ...] = tuple(DECODERS)  # the catalogue names the feed reads


def decode(topic: str, key: bytes | None, value: bytes | None) -> LiveEvent | None:
    """The event of one record of ``topic`` (a catalogue name), or None when it is not one for the feed."""
    if not value:
        return None
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("tenant_id"), str):
        return None
    return DECODERS[topic](parsed, key.decode(errors="replace") if key else None)


def visible(event_type: str, role: str) -> bool:
    """May a user of ``role`` see events of this type? Agents see everything of their tenant but campaigns."""
    return role == "admin" or event_type not in ADMIN_ONLY
