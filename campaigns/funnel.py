"""A campaign's funnel from its recipients' state counts (one source: the recipients' states, tallied by
triggers as they change: ``campaigns.store.state_counts``).

``counts`` are rows of (state, reason or error code as text, number). Every stage is cumulative: a
recipient who read was also sent and delivered. ``failed`` is split by code, ``skipped`` by reason.
"""

from __future__ import annotations

from collections.abc import Iterable

from campaigns.states import RANK, RecipientState


def funnel(counts: Iterable[tuple[str, str | None, int]]) -> dict[str, object]:
    by_state: dict[str, int] = {s.value: 0 for s in RecipientState}
    skipped: dict[str, int] = {}
    failed: dict[str, int] = {}
    waiting: dict[str, int] = {}
    for state, detail, number in counts:
        by_state[state] = by_state.get(state, 0) + number
        if state == RecipientState.SKIPPED and detail:
            skipped[detail] = skipped.get(detail, 0) + number
        elif state == RecipientState.FAILED:
            failed[detail or "unknown"] = failed.get(detail or "unknown", 0) + number
        elif state == RecipientState.QUEUED and detail:
            waiting[detail] = waiting.get(detail, 0) + number

    def reached(stage: RecipientState) -> int:
        ended = (RecipientState.SKIPPED, RecipientState.FAILED)
        return sum(n for s, n in by_state.items() if s not in ended and RANK[RecipientState(s)] >= RANK[stage])

    targeted = sum(by_state.values())
    return {
        "targeted": targeted, "skipped": by_state[RecipientState.SKIPPED], "skipped_by_reason": skipped,
        "queued": by_state[RecipientState.QUEUED], "waiting_by_reason": waiting,
        "submitted": reached(RecipientState.SUBMITTED) + by_state[RecipientState.FAILED],
        "sent": reached(RecipientState.SENT), "delivered": reached(RecipientState.DELIVERED),
        "read": reached(RecipientState.READ), "replied": by_state[RecipientState.REPLIED],
        "failed": by_state[RecipientState.FAILED], "failed_by_code": failed, "states": by_state,
    }
