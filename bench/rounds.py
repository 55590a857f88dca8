"""Two measurements compared in rounds, which goes first alternating: on a shared machine whose speed drifts from
one minute to the next, each round's pair is taken in the same minute, and neither side always runs in the wake of
the other."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

A = TypeVar("A")
B = TypeVar("B")


def in_turn(first: Callable[[], A], second: Callable[[], B], rounds: int) -> list[tuple[A, B]]:
    """``rounds`` pairs ``(first(), second())``: ``first`` runs first in the first round, ``second`` in the next …"""
    pairs: list[tuple[A, B]] = []
    for at in range(rounds):
        if at % 2 == 0:
            a = first()
            pairs.append((a, second()))
        else:
            b = second()
            pairs.append((first(), b))
    return pairs
