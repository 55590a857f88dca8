"""Which topics carry which tenant events: one small mapper per topic (add a topic here and nowhere else).

A mapper turns one record's value into the tenant events it stands for (none for facts no endpoint hears of);
it is pure, so a replay of the same record gives the same events with the same ids.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from schemas.campaigns import CampaignProgress, parse_key
from schemas.catalogue import (
    ACCOUNT_EVENTS,
    CAMPAIGNS_PROGRESS,
    CONVERSATIONS_EVENTS,
    INBOUND,
    OUTBOUND_RESULTS,
    STATUSES,
    TEMPLATES_RESULTS,
)
from schemas.conversation import CONVERSATION_EVENT, ContactChanged, ConversationChanged
from schemas.events import AccountEvent, InboundMessage, StatusUpdate
from schemas.outbound import MessageQueued, OutboundResult
from schemas.templates import TemplateResult
from webhooks.catalogue import TenantEvent

Mapper = Callable[[bytes], list[TenantEvent]]

STATUS_EVENTS = frozenset({"delivered", "read", "played", "failed"})  # "sent" is message.sent, from the result
HANDOFF_CAUSES = frozenset({"rule", "ai_handoff", "ai_error", "no_ai", "unreadable"})
TEMPLATE_FIELD = "message_template_status_update"


def _conversation_created(tenant_id: str, key: str, record: str, at: str) -> TenantEvent:
    pnid, _, wa_id = key.partition(":")
    return TenantEvent("conversation.created", tenant_id, f"conversation:{key}", key,
                       {"conversation_key": key, "phone_number_id": pnid, "wa_id": wa_id, "created_at": at},
                       guard=("first", f"conversation:{key}", record))


def _contact_created(tenant_id: str, wa_id: str, profile_name: str | None, record: str, at: str) -> TenantEvent:
    return TenantEvent("contact.created", tenant_id, f"contact:{wa_id}", f"contact:{wa_id}",
                       {"wa_id": wa_id, "profile_name": profile_name, "created_at": at},
                       guard=("first", f"contact:{wa_id}", record))


def inbound(raw: bytes) -> list[TenantEvent]:
    msg = InboundMessage.decode(raw)
    if msg.tenant_id is None:
        return []
    key, at = msg.conversation_key, msg.timestamp.isoformat()
    created = _conversation_created(msg.tenant_id, key, msg.wamid, at)
    contact = _contact_created(msg.tenant_id, msg.wa_id, msg.profile_name, msg.wamid, at)
    received = TenantEvent("message.received", msg.tenant_id, msg.wamid, key, {
        "wamid": msg.wamid, "conversation_key": key, "phone_number_id": msg.phone_number_id, "from": msg.wa_id,
        "profile_name": msg.profile_name, "type": msg.type, "text": msg.text, "timestamp": at,
        "message": msg.payload})
    return [contact, created, received]


def statuses(raw: bytes) -> list[TenantEvent]:
    status = StatusUpdate.decode(raw)
    if status.tenant_id is None or status.status not in STATUS_EVENTS:
        return []
    data: dict[str, Any] = {"wamid": status.wamid, "conversation_key": status.conversation_key,
                            "status": status.status, "recipient_id": status.recipient_id,
                            "timestamp": status.timestamp.isoformat()}
    if status.status == "failed":
        data["error"] = {"code": status.error_code, "title": status.error_title, "details": status.error_details}
    found = [TenantEvent("message.status", status.tenant_id, f"{status.wamid}:{status.status}",
                         status.conversation_key, data)]
    campaign = parse_key(status.biz_opaque_callback_data)
    if campaign is not None:  # a campaign's message: its recipient's progress too
        found.append(TenantEvent("campaign.recipient.status", status.tenant_id, f"{status.wamid}:{status.status}",
                                 status.conversation_key, {
                                     "campaign_id": campaign[0], "contact": campaign[1], "wamid": status.wamid,
                                     "to": status.recipient_id, "status": status.status,
                                     "error_code": status.error_code, "timestamp": status.timestamp.isoformat()}))
    return found


def results(raw: bytes) -> list[TenantEvent]:
    result = OutboundResult.decode(raw)
    key = result.conversation_key
    found: list[TenantEvent] = []
    if result.outcome == "accepted":
        found.append(TenantEvent("message.sent", result.tenant_id, result.message_id, key, {
            "message_id": result.message_id, "wamid": result.wamid, "conversation_key": key, "to": result.to,
            "idempotency_key": result.idempotency_key, "campaign_id": result.campaign_id,
            "sent_at": result.completed_at.isoformat()}))
    elif not result.local:  # Meta refused it at once (a local refusal comes as a failed status on wa.statuses)
        found.append(TenantEvent("message.status", result.tenant_id, f"{result.message_id}:failed", key, {
            "message_id": result.message_id, "wamid": result.wamid, "conversation_key": key, "status": "failed",
            "recipient_id": result.to, "timestamp": result.completed_at.isoformat(),
            "error": {"code": result.error_code, "title": result.error_title, "details": result.error_details}}))
    if result.campaign_id is not None:
        found.append(TenantEvent("campaign.recipient.status", result.tenant_id, f"{result.message_id}:recipient",
                                 key, {"campaign_id": result.campaign_id, "message_id": result.message_id,
                                       "to": result.to, "status": "sent" if result.outcome == "accepted" else "failed",
                                       "error_code": result.error_code}))
    return found


def conversation_events(raw: bytes) -> list[TenantEvent]:
    event = CONVERSATION_EVENT.validate_json(raw)
    if isinstance(event, MessageQueued):  # a conversation the business starts is created by its first message
        at = event.created_at.isoformat()
        return [_contact_created(event.tenant_id, event.to, None, event.message_id, at),
                _conversation_created(event.tenant_id, event.conversation_key, event.message_id, at)]
    if isinstance(event, ConversationChanged):
        return _conversation_changed(event)
    if isinstance(event, ContactChanged):
        key = f"contact:{event.wa_id}"
        data = {"wa_id": event.wa_id, "tags": event.tags, "attributes": event.attributes,
                "opted_out": event.opted_out, "updated_at": event.at.isoformat()}
        updated = TenantEvent("contact.updated", event.tenant_id, event.event_id, key, data)
        if event.change is not None:  # the change is named: an opt-out is one
            if event.change.type != "opt_out":
                return [updated]
            data = {**data, "source": event.change.source}
            return [updated, TenantEvent("contact.opted_out", event.tenant_id, event.event_id, key, data)]
        kind = "opted_out" if event.opted_out else "opted_in"  # an older event: the guard tells a transition
        return [updated, TenantEvent("contact.opted_out", event.tenant_id, event.event_id, key, data,
                                     guard=(kind, f"contact:{event.wa_id}", event.event_id))]
    return []


def _conversation_changed(event: ConversationChanged) -> list[TenantEvent]:
    data = {"conversation_key": event.conversation_key, "phone_number_id": event.phone_number_id,
            "wa_id": event.wa_id, "state": event.state, "assignee_id": event.assignee_id, "team": event.team,
            "cause": event.cause, "reason": event.reason, "version": event.version, "at": event.at.isoformat()}
    key, tenant, source = event.conversation_key, event.tenant_id, event.event_id
    found = []
    if event.state == "closed":
        found.append(TenantEvent("conversation.resolved", tenant, source, key, data))
    if event.cause in HANDOFF_CAUSES and event.state in ("queued", "agent"):
        found.append(TenantEvent("conversation.handed_off", tenant, source, key, data))
    if event.state == "agent" and event.assignee_id:
        found.append(TenantEvent("conversation.assigned", tenant, source, key, data))
    if not found:
        return found
    # whichever of a conversation's records the deliverer reads first creates it, so its creation comes first
    # even when the customer's message (another topic) is fetched after the hand-off it caused
    return [_conversation_created(tenant, key, source, event.at.isoformat()), *found]


def account_events(raw: bytes) -> list[TenantEvent]:
    event = AccountEvent.decode(raw)
    if event.tenant_id is None or event.field != TEMPLATE_FIELD:
        return []
    value = event.payload.get("value", event.payload) if isinstance(event.payload, dict) else {}
    template_id = str(value.get("message_template_id", ""))
    return [TenantEvent("template.status", event.tenant_id, event.event_id, f"template:{template_id}", {
        "template_id": template_id, "name": value.get("message_template_name"),
        "language": value.get("message_template_language"), "status": value.get("event") or event.event,
        "reason": value.get("reason"), "waba_id": event.waba_id, "received_at": event.received_at.isoformat()})]


def template_results(raw: bytes) -> list[TenantEvent]:
    """A template Aerostic created (Meta's first status, usually PENDING) or deleted; later changes come from
    Meta's status webhooks (``account_events``)."""
    result = TemplateResult.decode(raw)
    if result.outcome not in ("created", "deleted"):
        return []
    status = result.status if result.outcome == "created" else "DELETED"
    subject = result.meta_id or f"{result.name}:{result.language}"
    return [TenantEvent("template.status", result.tenant_id, result.event_id, f"template:{subject}", {
        "template_id": result.meta_id, "name": result.name, "language": result.language, "status": status,
        "category": result.category, "reason": None, "waba_id": result.waba_id,
        "received_at": result.fetched_at.isoformat()})]


def campaign_progress(raw: bytes) -> list[TenantEvent]:
    """A campaign's state: one event per state (and reason) it reaches; its progress reports in between are not
    events (the same state gives the same id, which an endpoint gets once)."""
    progress = CampaignProgress.decode(raw)
    source = f"{progress.campaign_id}:{progress.state}:{progress.state_reason or ''}"
    return [TenantEvent("campaign.status", progress.tenant_id, source, f"campaign:{progress.campaign_id}", {
        "campaign_id": progress.campaign_id, "state": progress.state, "reason": progress.state_reason,
        "funnel": progress.funnel, "at": progress.at.isoformat()})]


# topic (without the deployment's prefix) → mapper, in causal order: a customer's message, what the conversation
# made of it (a hand-off, a queued reply), the reply's result, then Meta's statuses (ties of one millisecond)
MAPPERS: dict[str, Mapper] = {
    INBOUND.name: inbound,
    CONVERSATIONS_EVENTS.name: conversation_events,
    OUTBOUND_RESULTS.name: results,
    STATUSES.name: statuses,
    ACCOUNT_EVENTS.name: account_events,
    TEMPLATES_RESULTS.name: template_results,
    CAMPAIGNS_PROGRESS.name: campaign_progress,
}
