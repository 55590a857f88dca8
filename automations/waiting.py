"""What a customer hears while waiting for a person: the tenant's acknowledgement texts and choices.

Stored in ``tenant_settings.waiting`` (NULL: these defaults), edited through ``/v1/settings/waiting``.
The acknowledgement goes out once per waiting episode (``streams.conversations``); which of the two
texts depends on the tenant's business hours (``automations.business_hours``): open, or no hours set,
is the in-hours text; closed is the out-of-hours text with ``{next_open}`` replaced by the next
opening in the tenant's zone ("tomorrow at 09:00 CET"). ``ai_answers_while_waiting`` lets the AI
answer a queued conversation's new questions when it is confident.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from automations.business_hours import describe_opening, next_opening, open_at
from automations.rules import BusinessHours

log = logging.getLogger(__name__)

MAX_TEXT = 1024
NEXT_OPEN = "{next_open}"
UNKNOWN_OPENING = "our next opening"  # a schedule whose next opening is more than a week away
AUTHOR = "automation:builtin:waiting_ack"  # ``requested_by`` of an acknowledgement
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT)]


class WaitingReplies(BaseModel):
    """The tenant's acknowledgement texts and its two choices (the schedule is its business hours)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    acknowledge: bool = True
    ai_answers_while_waiting: bool = True
    in_hours_text: Text = "Thanks! A teammate will reply shortly."
    out_of_hours_text: Text = f"We're closed now; we reply from {NEXT_OPEN}."


def load_waiting(stored: dict[str, Any] | None, *, tenant_id: str) -> WaitingReplies:
    """The stored replies, or the defaults (none stored, or no longer valid: logged)."""
    try:
        return WaitingReplies.model_validate(stored) if stored else WaitingReplies()
    except ValidationError as exc:
        log.warning("waiting replies of tenant %s are ignored: they no longer validate (%s)", tenant_id,
                    "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))
        return WaitingReplies()


def acknowledgement(replies: WaitingReplies, hours: BusinessHours | None, at: datetime) -> str:
    """The text to send at ``at``: in hours, or out of hours with the next opening filled in."""
    if open_at(hours, at):
        return replies.in_hours_text
    opening = next_opening(hours, at)
    when = describe_opening(opening, at) if opening is not None else UNKNOWN_OPENING
    return replies.out_of_hours_text.replace(NEXT_OPEN, when)
