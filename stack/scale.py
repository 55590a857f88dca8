"""``--scale role=N``: how many processes of a role the local stack runs (they are consumer groups: more
processes of a role share its partitions)."""

from __future__ import annotations

import argparse

# The roles that can run as several processes: each is a Kafka consumer group (the ingress and the simulator
# listen on one port and are not scaled).
# ``replies`` is the dispatcher for the interactive lane alone: with it, the ``dispatcher`` processes send the rest
# (``DispatcherSettings.lanes``); without it (the default), they send both lanes.
SCALABLE = ("streams", "campaigns", "projector", "ai", "dispatcher", "replies", "deliverer")
MAX_PROCESSES = 8


def parse_scale(values: list[str] | None) -> dict[str, int]:
    """``["dispatcher=2", "streams=3"]`` → ``{"dispatcher": 2, "streams": 3}``; a clear error otherwise."""
    scale: dict[str, int] = {}
    for value in values or []:
        role, sep, count = value.partition("=")
        role = role.strip()
        if not sep or role not in SCALABLE:
            raise argparse.ArgumentTypeError(f"--scale {value!r}: expected ROLE=N with ROLE one of "
                                             f"{', '.join(SCALABLE)}")
        try:
            number = int(count)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--scale {value!r}: N must be a whole number") from None
        if not 1 <= number <= MAX_PROCESSES:
            raise argparse.ArgumentTypeError(f"--scale {value!r}: N must be 1 to {MAX_PROCESSES}")
        scale[role] = number
    return scale


def process_names(name: str, count: int) -> list[str]:
    """The child names of ``count`` processes of a role: ``name``, ``name-2``, ``name-3`` …"""
    return [name if i == 0 else f"{name}-{i + 1}" for i in range(count)]
