"""How one message's recorded facts decide its current status: pure, and independent of arrival order.

The facts are Meta's statuses of the message's wamid and the dispatcher's verdict (its send
result). They are folded with ``schemas.status_rank.status_wins`` in one canonical order, by
their own time (Meta's timestamp, the result's completion time) and, at equal times, by rank with
``failed`` last (a ``failed`` that only ties with a delivered or read contradicts it), Meta's
status before the verdict. The same facts therefore always give the same status, error and
``applied`` flags, whatever order they were projected in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.status_rank import FAILED, RANK, status_wins


@dataclass(frozen=True)
class Fact:
    """One status the message had at ``at``: Meta's (``from_result`` False) or the send result's."""

    status: str
    at: datetime
    error_code: int | None = None
    error_title: str | None = None
    error_details: str | None = None
    from_result: bool = False


@dataclass(frozen=True)
class Merged:
    """The message's current status (None: nothing known yet), its time and error, and which of Meta's
    statuses moved it forward (the history's ``applied``)."""

    status: str | None
    at: datetime | None
    error_code: int | None
    error_title: str | None
    error_details: str | None
    applied: frozenset[str]


def _position(fact: Fact) -> tuple[datetime, int, int, str]:
    rank = RANK.get(fact.status, len(RANK) + (0 if fact.status == FAILED else 1))
    return fact.at, rank, int(fact.from_result), fact.status


def merge(facts: Iterable[Fact]) -> Merged:
    """Fold ``facts`` in their canonical order (see the module docstring)."""
    current: Fact | None = None
    applied: set[str] = set()
    for fact in sorted(facts, key=_position):
        if status_wins(current.status if current else None, fact.status):
            current = fact
            if not fact.from_result:
                applied.add(fact.status)
    if current is None:
        return Merged(None, None, None, None, None, frozenset())
    failed = current.status == FAILED
    return Merged(current.status, current.at, current.error_code if failed else None,
                  current.error_title if failed else None, current.error_details if failed else None,
                  frozenset(applied))


def verdict_fact(verdict: Mapping[str, Any], *, meta_reported: bool) -> Fact:
    """The send result as a status: ``accepted``, or ``failed`` with its error.

    An ambiguous verdict (Meta may have the message after all) yields to Meta's own statuses when
    there are some (``meta_reported``): then the message was accepted.
    """
    at = datetime.fromisoformat(str(verdict["completed_at"]))
    if verdict["outcome"] == "accepted" or (verdict.get("ambiguous") and meta_reported):
        return Fact("accepted", at, from_result=True)
    return Fact(FAILED, at, verdict.get("error_code"), verdict.get("error_title"), verdict.get("error_details"),
                from_result=True)


def message_wamid(verdict_wamid: str | None, reported: Iterable[str]) -> str | None:
    """The wamid of our message: the result's; without one (an ambiguous send), the least of the wamids
    whose statuses carry our idempotency key (each is a copy Meta accepted; one is ours, the rest
    stay rows of their own)."""
    if verdict_wamid:
        return verdict_wamid
    return min(reported, default=None)
