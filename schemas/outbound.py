"""Contracts of the send path: commands, send requests and their results.

``SendCommand`` (``conversations.commands``) → conversation processor → ``OutboundRequest``
(``outbound.interactive`` / ``outbound.bulk``; ``outbound.retry`` for retries) → dispatcher →
``OutboundResult`` (``outbound.results``). ``MessageQueued`` (``conversations.events``) records
the message before it is sent. A failure decided by Aerostic itself (no Meta call) is also
published as a failed ``StatusUpdate`` built by ``local_failure_status``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field

from schemas.events import Event, StatusUpdate
from schemas.identity import is_bsuid
from schemas.messages import ROUTING_FIELDS

Lane = Literal["interactive", "bulk"]

# Local (Aerostic-decided) failure reasons; they use negative codes so they never clash with Meta's.
OUTSIDE_SERVICE_WINDOW = "outside_service_window"
LOCAL_CODES: dict[str, int] = {OUTSIDE_SERVICE_WINDOW: -1, "retries_exhausted": -2, "not_connected": -3,
                               "messaging_limit_reached": -4,
                               # a template message Meta would refuse (templates.sending): 1320xx predicted
                               "template_not_approved": -5, "template_parameter_mismatch": -6,
                               "template_parameter_type": -7, "template_not_found": -8,
                               # a message naming one of Aerostic's media files (dispatcher.media)
                               "media_unavailable": -11, "media_upload_failed": -12}

# Meta's customer service window: free-form messages only within this long after the customer's last one.
SERVICE_WINDOW_S = 24 * 3600

# Message types that are not "free-form": allowed outside the 24-hour customer service window.
WINDOW_EXEMPT_TYPES = frozenset({"template"})


class _Addressed(Event):
    """Fields shared by everything about one outbound message."""

    tenant_id: str
    message_id: str
    idempotency_key: str
    phone_number_id: str
    to: str

    @property
    def conversation_key(self) -> str:
        return f"{self.phone_number_id}:{self.to}"


class SendCommand(_Addressed):
    """Send one message (``conversations.commands``); ``message`` is Graph's body without routing fields."""

    kind: Literal["send"] = "send"
    message: dict[str, Any]
    lane: Lane = "interactive"
    requested_by: str
    created_at: datetime
    # Who sends: an agent's reply takes the conversation over from the bot (the AI stays silent).
    author: Literal["api", "agent"] = "api"


class MessageQueued(_Addressed):
    """The conversation processor accepted a message for sending (``conversations.events``)."""

    kind: Literal["message_queued"] = "message_queued"
    message: dict[str, Any]
    requested_by: str
    created_at: datetime

    @property
    def message_type(self) -> str:
        return str(self.message.get("type", ""))


class OutboundRequest(_Addressed):
    """One message for the dispatcher to send (outbound lanes and ``outbound.retry``).

    ``message`` holds Graph's fields except ``messaging_product``, ``to`` and
    ``biz_opaque_callback_data`` (the dispatcher adds them; the latter carries the idempotency
    key). ``window_until`` is the end of the customer service window as the conversation
    processor knew it (epoch seconds, 0 = closed).
    """

    kind: Literal["outbound_request"] = "outbound_request"
    message: dict[str, Any]
    lane: Lane = "interactive"
    window_until: float = 0.0
    attempt: int = 0
    not_before: float = 0.0
    ambiguous: int = 0
    created_at: datetime
    campaign_id: str | None = None

    @property
    def message_type(self) -> str:
        return str(self.message.get("type", ""))

    @property
    def is_free_form(self) -> bool:
        return self.message_type not in WINDOW_EXEMPT_TYPES

    def graph_body(self) -> dict[str, Any]:
        """The exact JSON body for ``POST /{phone_number_id}/messages``.

        The routing fields come from the request itself and are written last, so nothing in ``message``
        (a rule's reply, say) can redirect it to another recipient.
        """
        content = {k: v for k, v in self.message.items() if k not in ROUTING_FIELDS}
        return {**content, "messaging_product": "whatsapp", "recipient_type": "individual", **addressee(self.to),
                "biz_opaque_callback_data": self.idempotency_key}


def addressee(to: str) -> dict[str, str]:
    """How Graph is told who receives a message: ``to`` a phone number, or ``recipient`` a BSUID (a customer
    known only by username and BSUID has no number)."""
    return {"recipient": to} if is_bsuid(to) else {"to": to}


class OutboundResult(_Addressed):
    """What became of one send (``outbound.results``)."""

    kind: Literal["outbound_result"] = "outbound_result"
    outcome: Literal["accepted", "failed"]
    wamid: str | None = None
    wa_id: str | None = None  # Meta's contacts[].wa_id of an accepted send: the recipient's canonical WhatsApp id
    error_code: int | None = None
    error_title: str | None = None
    error_details: str | None = None
    attempts: int = 1
    ambiguous: bool = False
    local: bool = False
    replayed: bool = False
    completed_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    campaign_id: str | None = None


def local_wamid(message_id: str) -> str:
    """The stand-in wamid of a message that never reached Meta."""
    return f"local.{message_id}"


def local_failure(request: OutboundRequest | MessageQueued, reason: str, details: str,
                  *, attempts: int = 0) -> OutboundResult:
    """The result of a send refused by Aerostic's own policy."""
    return OutboundResult(
        event_id=f"{request.message_id}:result", tenant_id=request.tenant_id, message_id=request.message_id,
        idempotency_key=request.idempotency_key, phone_number_id=request.phone_number_id, to=request.to,
        outcome="failed", wamid=local_wamid(request.message_id), error_code=LOCAL_CODES.get(reason, -99),
        error_title=reason, error_details=details, attempts=attempts, local=True,
        campaign_id=getattr(request, "campaign_id", None),
    )


def local_failure_status(result: OutboundResult, *, waba_id: str = "") -> StatusUpdate:
    """The failed status that puts a local failure into the message history like Meta's."""
    now = result.completed_at
    return StatusUpdate(
        event_id=f"{result.message_id}:local-failed", tenant_id=result.tenant_id,
        phone_number_id=result.phone_number_id, waba_id=waba_id, received_at=now,
        wamid=result.wamid or local_wamid(result.message_id), recipient_id=result.to, status="failed",
        timestamp=now, error_code=result.error_code, error_title=result.error_title,
        error_details=result.error_details, biz_opaque_callback_data=result.idempotency_key,
        payload={"local": True, "reason": result.error_title},
    )
