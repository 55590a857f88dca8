"""Campaign and recipient states, their transitions and the rank that keeps recipient states monotonic."""

from __future__ import annotations

from enum import StrEnum


class CampaignState(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


# What each command may move a campaign from (to the command's target state).
TRANSITIONS: dict[str, tuple[frozenset[CampaignState], CampaignState]] = {
    "schedule": (frozenset({CampaignState.DRAFT}), CampaignState.SCHEDULED),
    "launch": (frozenset({CampaignState.DRAFT, CampaignState.SCHEDULED}), CampaignState.RUNNING),
    "pause": (frozenset({CampaignState.RUNNING, CampaignState.SCHEDULED}), CampaignState.PAUSED),
    "resume": (frozenset({CampaignState.PAUSED}), CampaignState.RUNNING),
    "cancel": (frozenset({CampaignState.DRAFT, CampaignState.SCHEDULED, CampaignState.RUNNING,
                          CampaignState.PAUSED}), CampaignState.CANCELLED),
    "complete": (frozenset({CampaignState.RUNNING}), CampaignState.COMPLETED),
}
FINAL = frozenset({CampaignState.COMPLETED, CampaignState.CANCELLED})


class TransitionError(ValueError):
    """A command that the campaign's state does not allow (the API answers 409)."""


def transition(current: str, command: str) -> CampaignState:
    """The state ``command`` moves a campaign in ``current`` to, or TransitionError."""
    allowed, target = TRANSITIONS[command]
    if CampaignState(current) not in allowed:
        raise TransitionError(f"cannot {command} a campaign that is {current}")
    return target


class RecipientState(StrEnum):
    QUEUED = "queued"
    SKIPPED = "skipped"
    SUBMITTED = "submitted"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    REPLIED = "replied"
    FAILED = "failed"


# A recipient only moves up this ladder; ``failed`` overrides queued/submitted/sent only (as Meta's status merge).
RANK: dict[RecipientState, int] = {
    RecipientState.QUEUED: 0, RecipientState.SUBMITTED: 1, RecipientState.SENT: 2, RecipientState.DELIVERED: 3,
    RecipientState.READ: 4, RecipientState.REPLIED: 5, RecipientState.FAILED: 6, RecipientState.SKIPPED: 7,
}
FAILED_OVERRIDES_BELOW = RANK[RecipientState.DELIVERED]


def advances(current: RecipientState, new: RecipientState) -> bool:
    """Whether a recipient in ``current`` takes ``new`` (the rule the funnel processor's SQL applies)."""
    if current in (RecipientState.SKIPPED, RecipientState.FAILED):
        return False
    if new is RecipientState.FAILED:
        return RANK[current] < FAILED_OVERRIDES_BELOW
    return RANK[new] > RANK[current]


class SkipReason(StrEnum):
    OPTED_OUT = "opted_out"
    DUPLICATE = "duplicate"
    INVALID_NUMBER = "invalid_number"
    TEMPLATE_NOT_APPROVED = "template_not_approved"
    MARKETING_COOLDOWN = "marketing_cooldown"  # a 131049 for this contact in the last 24 h
    INVALID_VARIABLES = "invalid_variables"


# Why a queued recipient waits (shown beside ``queued``; the recipient goes on once the cause is gone).
WAITING_TIER = "portfolio_budget"
MARKETING_LIMIT_CODE = 131049
REPLY_WINDOW_S = 72 * 3600  # an inbound message within this long after the send counts as a reply
