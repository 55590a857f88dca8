"""Prometheus metrics of the dispatcher: sends by lane, result and code, retries, the time held by the rate
limits, Graph's latency, how long the bulk lane was paused and why, and the checks of held accounts.

``code`` is Meta's error code of a failed send (a negative one is Aerostic's own refusal, ``schemas.outbound``'s
``LOCAL_CODES``), ``none`` for an accepted send: a bounded set, as lanes (interactive, bulk) and limit kinds
(``number``: the number's rate slot, ``pair``: the recipient pair's, ``spacing``: the number's spacing right
before the call) are. Children are bound once per label set (``sends``).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Histogram

from broker.metrics import SECONDS

SENDS = Counter("aerostic_dispatcher_sends", "Send results published, by lane, result (accepted, failed) and code",
                ["lane", "result", "code"])
RETRIES = Counter("aerostic_dispatcher_retries", "Sends put on outbound.retry for a later attempt", ["lane"])
LIMIT_WAIT = Histogram("aerostic_dispatcher_limit_wait_seconds", "Time a send was held by a rate limit, by kind",
                       ["kind"], buckets=(0.0005, *SECONDS, 60.0))
GRAPH_SECONDS = Histogram("aerostic_dispatcher_graph_seconds", "Graph's answer time to one message send",
                          buckets=SECONDS)
BULK_PAUSED = Counter("aerostic_dispatcher_bulk_paused_seconds",
                      "Time the bulk lane's partitions were paused, by reason: replies (an interactive request waited "
                      "for a worker) or buffer (the bulk requests in memory that could go now reached bulk_buffer)",
                      ["reason"])
HELD_CHECKS = Counter("aerostic_dispatcher_held_checks",
                      "Checks of a held account (disconnected, or waiting for re-authorisation) by one of its numbers' "
                      "sends: one per number every hold_recheck_s while it has sends waiting, not one per send")

NUMBER_WAIT = LIMIT_WAIT.labels("number")
PAIR_WAIT = LIMIT_WAIT.labels("pair")
SPACING_WAIT = LIMIT_WAIT.labels("spacing")
MAX_CODE = 10_000_000  # above any Meta code: anything else is "other", so a strange answer cannot add series

_sends: dict[tuple[str, str, str], Any] = {}
_retries: dict[str, Any] = {}


def _code(code: int | None) -> str:
    if code is None:
        return "none"
    return str(code) if -MAX_CODE < code < MAX_CODE else "other"


def sent(lane: str, result: str, code: int | None) -> None:
    """Count one published send result."""
    labels = (lane, result, _code(code))
    child = _sends.get(labels)
    if child is None:
        child = _sends[labels] = SENDS.labels(*labels)
    child.inc()


def retried(lane: str) -> None:
    child = _retries.get(lane)
    if child is None:
        child = _retries[lane] = RETRIES.labels(lane)
    child.inc()
