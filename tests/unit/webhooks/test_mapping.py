"""Which records become which tenant events, with ids that a replay of the same record gives again."""

from __future__ import annotations

from datetime import UTC, datetime

from schemas.conversation import ContactChanged, ConversationChanged
from schemas.events import AccountEvent, InboundMessage, StatusUpdate
from schemas.outbound import MessageQueued, OutboundResult
from webhooks.catalogue import EVENT_TYPES, check_filter, subscribed
from webhooks.mapping import MAPPERS

AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
T = "7d3c9a52-0000-4000-8000-000000000001"
KEY = "1065:16505551234"


def _types(topic: str, raw: bytes) -> list[str]:
    return [e.type for e in MAPPERS[topic](raw)]


def test_an_inbound_message_is_received_and_may_create_its_contact_and_conversation() -> None:
    raw = InboundMessage(event_id="x", tenant_id=T, phone_number_id="1065", waba_id="w", received_at=AT,
                         wamid="wamid.A", wa_id="16505551234", type="text", timestamp=AT, text="hi",
                         payload={"text": {"body": "hi"}}).encode()
    events = MAPPERS["wa.inbound"](raw)
    assert [e.type for e in events] == ["contact.created", "conversation.created", "message.received"]
    assert [e.guard[0] if e.guard else None for e in events] == ["first", "first", None]
    assert {e.ordering_key for e in events[1:]} == {KEY}
    assert [e.id for e in MAPPERS["wa.inbound"](raw)] == [e.id for e in events]  # a replay: the same ids
    assert events[2].data["text"] == "hi" and events[2].id.startswith("evt_")


def test_an_unrouted_message_is_nobodys_event() -> None:
    raw = InboundMessage(event_id="x", phone_number_id="1065", waba_id="w", received_at=AT, wamid="wamid.A",
                         wa_id="1", type="text", timestamp=AT, payload={}).encode()
    assert MAPPERS["wa.inbound"](raw) == []


def test_statuses_delivered_read_and_failed_with_its_code_but_not_sent() -> None:
    def status(name: str, **extra: object) -> bytes:
        return StatusUpdate(event_id="s", tenant_id=T, phone_number_id="1065", waba_id="w", received_at=AT,
                            wamid="wamid.B", recipient_id="16505551234", status=name, timestamp=AT, payload={},
                            **extra).encode()  # type: ignore[arg-type]
    assert _types("wa.statuses", status("sent")) == []
    assert _types("wa.statuses", status("delivered")) == ["message.status"]
    [failed] = MAPPERS["wa.statuses"](status("failed", error_code=131026, error_title="undeliverable"))
    assert failed.data["error"]["code"] == 131026 and failed.ordering_key == KEY


def test_a_result_is_message_sent_or_a_failure_and_a_campaign_recipient_status() -> None:
    def result(outcome: str, **extra: object) -> bytes:
        return OutboundResult(event_id="r", tenant_id=T, message_id="m1", idempotency_key="k", phone_number_id="1065",
                              to="16505551234", outcome=outcome, completed_at=AT, **extra).encode()  # type: ignore[arg-type]
    assert _types("outbound.results", result("accepted", wamid="wamid.C")) == ["message.sent"]
    assert _types("outbound.results", result("failed", error_code=132001)) == ["message.status"]
    assert _types("outbound.results", result("failed", error_code=-1, local=True)) == []  # its status says it
    assert _types("outbound.results", result("accepted", campaign_id="c1")) == [
        "message.sent", "campaign.recipient.status"]


def test_conversation_changes_become_assigned_handed_off_and_resolved() -> None:
    def changed(state: str, cause: str, assignee: str | None = None) -> bytes:
        return ConversationChanged(event_id=f"{KEY}:v{state}", tenant_id=T, conversation_key=KEY,
                                   phone_number_id="1065", wa_id="16505551234", state=state,  # type: ignore[arg-type]
                                   assignee_id=assignee, cause=cause, version=2, at=AT).model_dump_json().encode()
    def types(raw: bytes) -> list[str]:  # each comes after its conversation's creation, guarded "first"
        created, *events = MAPPERS["conversations.events"](raw)
        source = ConversationChanged.model_validate_json(raw).event_id
        assert (created.type, created.guard) == ("conversation.created", ("first", f"conversation:{KEY}", source))
        return [e.type for e in events]
    assert types(changed("queued", "ai_handoff")) == ["conversation.handed_off"]
    assert types(changed("agent", "ai_handoff", "u1")) == ["conversation.handed_off", "conversation.assigned"]
    assert types(changed("agent", "assign", "u1")) == ["conversation.assigned"]
    assert types(changed("closed", "resolve")) == ["conversation.resolved"]
    assert _types("conversations.events", changed("bot", "inbound")) == []


def test_contacts_and_the_first_queued_message() -> None:
    opted = ContactChanged(event_id="wamid.D:opt_out", tenant_id=T, wa_id="16505551234", tags=[], attributes={},
                           opted_out=True, at=AT).model_dump_json().encode()
    events = MAPPERS["conversations.events"](opted)
    assert [(e.type, e.guard[0] if e.guard else None) for e in events] == [
        ("contact.updated", None), ("contact.opted_out", "opted_out")]
    from schemas.conversation import ContactChange
    named = ContactChanged(event_id="wamid.F:opt_out", tenant_id=T, wa_id="16505551234", tags=[], attributes={},
                           opted_out=True, at=AT, change=ContactChange(type="opt_out", source="keyword"))
    assert [(e.type, e.guard) for e in MAPPERS["conversations.events"](named.model_dump_json().encode())] == [
        ("contact.updated", None), ("contact.opted_out", None)]
    tagged = named.model_copy(update={"change": ContactChange(type="add_tag", tag="vip")})
    assert _types("conversations.events", tagged.model_dump_json().encode()) == ["contact.updated"]
    queued = MessageQueued(event_id="q", tenant_id=T, message_id="m2", idempotency_key="k", phone_number_id="1065",
                           to="16505551234", message={"type": "text"}, requested_by="api",
                           created_at=AT).model_dump_json().encode()
    assert _types("conversations.events", queued) == ["contact.created", "conversation.created"]


def test_a_template_status_change_is_template_status() -> None:
    raw = AccountEvent(event_id="a1", tenant_id=T, phone_number_id="", waba_id="w", received_at=AT,
                       field="message_template_status_update", event="APPROVED", payload={"value": {
                           "event": "APPROVED", "message_template_id": 42, "message_template_name": "hello",
                           "message_template_language": "en_US", "reason": "NONE"}}).encode()
    [event] = MAPPERS["wa.account.events"](raw)
    assert event.type == "template.status" and event.data["status"] == "APPROVED" and event.data["template_id"] == "42"


def test_filters_name_known_events_only() -> None:
    assert check_filter(["*"]) == [] and check_filter(["message.sent", "message.sent"]) == ["message.sent"]
    assert subscribed([], "campaign.status") and not subscribed(["message.sent"], "message.status")
    assert len(EVENT_TYPES) == 13
    try:
        check_filter(["message.deleted"])
    except ValueError as exc:
        assert "message.deleted" in str(exc)
    else:
        raise AssertionError("an unknown event type was accepted")


def test_a_campaign_reaches_a_state_once_and_its_recipients_statuses_are_events() -> None:
    from schemas.campaigns import CampaignProgress, idempotency_key

    def progress(state: str, sent: int) -> bytes:
        return CampaignProgress(event_id=f"c1:progress:{sent}", campaign_id="c1", tenant_id=T, state=state,
                                funnel={"sent": sent}, at=AT).encode()
    running = [MAPPERS["campaigns.progress"](progress("running", n))[0] for n in (1, 2)]
    assert {e.type for e in running} == {"campaign.status"} and running[0].id == running[1].id
    assert MAPPERS["campaigns.progress"](progress("completed", 3))[0].id != running[0].id
    read = StatusUpdate(event_id="s", tenant_id=T, phone_number_id="1065", waba_id="w", received_at=AT,
                        wamid="wamid.E", recipient_id="16505551234", status="read", timestamp=AT, payload={},
                        biz_opaque_callback_data=idempotency_key("c1", "16505551234")).encode()
    events = MAPPERS["wa.statuses"](read)
    assert [e.type for e in events] == ["message.status", "campaign.recipient.status"]
    assert events[1].data["campaign_id"] == "c1" and events[1].data["status"] == "read"


def test_a_template_aerostic_created_or_deleted_is_template_status() -> None:
    from schemas.templates import TemplateResult

    def result(outcome: str) -> bytes:
        return TemplateResult(event_id=f"t:{outcome}", request_id="r", tenant_id=T, waba_id="w", action="create",
                              outcome=outcome, name="hello", language="en_US", meta_id="42", status="PENDING",
                              fetched_at=AT).encode()  # type: ignore[arg-type]
    assert [e.data["status"] for e in MAPPERS["templates.results"](result("created"))] == ["PENDING"]
    assert [e.data["status"] for e in MAPPERS["templates.results"](result("deleted"))] == ["DELETED"]
    assert MAPPERS["templates.results"](result("page")) == []
