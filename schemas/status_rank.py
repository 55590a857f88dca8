"""The status merge rule: the one source of truth for "does this status win?".

Per wamid a status only moves forward: accepted < sent < delivered < read < played.
``failed`` overrides accepted and sent, is terminal and keeps its error; a ``failed`` that
contradicts delivered or read (or anything later) is kept in the history only.
"""

from __future__ import annotations

RANK: dict[str, int] = {"accepted": 0, "sent": 1, "delivered": 2, "read": 3, "played": 4}
FAILED = "failed"


def status_wins(current: str | None, new: str) -> bool:
    """True when ``new`` should become the message's current status over ``current``."""
    if current is None:
        return new == FAILED or new in RANK
    if current == FAILED:
        return False
    if new == FAILED:
        return RANK.get(current, 0) <= RANK["sent"]
    if new not in RANK:
        return False
    return RANK[new] > RANK.get(current, -1)
