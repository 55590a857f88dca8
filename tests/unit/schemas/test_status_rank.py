"""schemas.status_rank.status_wins: the per-wamid status merge rule."""

from __future__ import annotations

import itertools
from functools import reduce

import pytest

from schemas.status_rank import status_wins

# Written out here on purpose (not imported): the order the rule must implement.
FORWARD = ["accepted", "sent", "delivered", "read", "played"]
ALL = [*FORWARD, "failed"]


def fold(sequence: list[str] | tuple[str, ...], start: str | None = None) -> str | None:
    """The current status after applying ``sequence`` one by one with the merge rule."""
    return reduce(lambda current, new: new if status_wins(current, new) else current, sequence, start)


def expected_final(sequence: tuple[str, ...]) -> str:
    """Independent statement of the rule for a whole sequence of distinct statuses.

    ``failed`` wins when nothing at or beyond ``delivered`` arrived before it, and then nothing
    moves it; otherwise the furthest forward status seen is the result.
    """
    if "failed" in sequence:
        before = sequence[: sequence.index("failed")]
        if set(before) <= {"accepted", "sent"}:
            return "failed"
    return max((s for s in sequence if s != "failed"), key=FORWARD.index)


@pytest.mark.parametrize(
    ("current", "new", "wins"),
    [
        # first status of a message
        *[(None, s, True) for s in ALL],
        # forward moves
        ("accepted", "sent", True),
        ("sent", "delivered", True),
        ("delivered", "read", True),
        ("read", "played", True),
        ("accepted", "played", True),
        ("sent", "read", True),
        # backward moves and repeats
        ("sent", "accepted", False),
        ("delivered", "sent", False),
        ("read", "delivered", False),
        ("read", "sent", False),
        ("played", "read", False),
        ("played", "accepted", False),
        *[(s, s, False) for s in FORWARD],
        # failed overrides accepted and sent only
        ("accepted", "failed", True),
        ("sent", "failed", True),
        ("delivered", "failed", False),
        ("read", "failed", False),
        ("played", "failed", False),
        # nothing overrides failed
        *[("failed", s, False) for s in ALL],
    ],
)
def test_status_wins_table(current: str | None, new: str, wins: bool) -> None:
    assert status_wins(current, new) is wins


def test_read_then_sent_then_delivered_leaves_read() -> None:
    assert fold(["read", "sent", "delivered"]) == "read"


def test_in_order_sequence_ends_played() -> None:
    assert fold(FORWARD) == "played"
    assert fold(list(reversed(FORWARD))) == "played"


@pytest.mark.parametrize(
    ("sequence", "final"),
    [
        (["sent", "failed", "delivered"], "failed"),
        (["delivered", "failed"], "delivered"),
        (["read", "failed", "played"], "played"),
        (["accepted", "failed", "read"], "failed"),
        (["failed", "sent"], "failed"),
    ],
)
def test_failed_sequences(sequence: list[str], final: str) -> None:
    assert fold(sequence) == final


SEQUENCES = [p for k in range(1, len(ALL) + 1) for p in itertools.permutations(ALL, k)]


def test_every_ordering_of_every_subset_is_covered() -> None:
    # 6 + 30 + 120 + 360 + 720 + 720 orderings
    assert len(SEQUENCES) == 1956


@pytest.mark.parametrize("length", range(1, len(ALL) + 1))
def test_fold_matches_the_independent_rule(length: int) -> None:
    mismatches = [
        (seq, fold(seq), expected_final(seq))
        for seq in itertools.permutations(ALL, length)
        if fold(seq) != expected_final(seq)
    ]
    assert mismatches == []


def test_final_status_never_depends_on_forward_order() -> None:
    for seq in itertools.permutations(FORWARD):
        assert fold(seq) == "played"
        for prefix in range(1, len(seq) + 1):
            assert fold(seq[:prefix]) == max(seq[:prefix], key=FORWARD.index)
