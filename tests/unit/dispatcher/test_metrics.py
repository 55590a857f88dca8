"""dispatcher.metrics: send results by lane, result and code (a bounded code label), and retries by lane."""

from __future__ import annotations

from prometheus_client import REGISTRY

from dispatcher import metrics


def _sends(lane: str, result: str, code: str) -> float:
    return REGISTRY.get_sample_value("aerostic_dispatcher_sends_total",
                                     {"lane": lane, "result": result, "code": code}) or 0.0


def test_sends_are_counted_by_lane_result_and_code() -> None:
    keys = [("bulk", "accepted", "none"), ("interactive", "failed", "131026"), ("interactive", "failed", "-3"),
            ("bulk", "failed", "other")]
    before = {key: _sends(*key) for key in keys}
    metrics.sent("bulk", "accepted", None)
    metrics.sent("bulk", "accepted", None)
    metrics.sent("interactive", "failed", 131026)
    metrics.sent("interactive", "failed", -3)
    metrics.sent("bulk", "failed", 10**12)  # not a code Meta has: one "other" series, not a new one per value
    assert {key: _sends(*key) - value for key, value in before.items()} == {
        ("bulk", "accepted", "none"): 2, ("interactive", "failed", "131026"): 1, ("interactive", "failed", "-3"): 1,
        ("bulk", "failed", "other"): 1}


def test_retries_are_counted_by_lane() -> None:
    before = REGISTRY.get_sample_value("aerostic_dispatcher_retries_total", {"lane": "interactive"}) or 0.0
    metrics.retried("interactive")
    assert REGISTRY.get_sample_value("aerostic_dispatcher_retries_total", {"lane": "interactive"}) == before + 1
