"""Stepped-rate benchmarks: what one step measured, whether it passed, and the highest sustained rate."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# Each rate at most 1.5 times the one before from 50/s on, and 4/3 from 150/s on: a machine carrying 290/s is told
# 250, not 200 (and the relay's ratio moves less with where its step and the pipeline's fell). The relay and the
# pipeline step through the same rates.
DEFAULT_RATES = (10, 25, 50, 75, 100, 150, 200, 250, 300, 400, 500, 600, 750, 1000)
TARGET_P99_MS = 250.0
MIN_ACHIEVED = 0.9  # a step whose sends fell below this fraction of the asked rate is overloaded


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..1) of an ascending list; NaN when empty."""
    if not sorted_values:
        return float("nan")
    return sorted_values[max(1, math.ceil(q * len(sorted_values))) - 1]


@dataclass(frozen=True)
class Step:
    """One rate held for a bounded time: what was asked, what was sent and answered."""

    rate: int
    asked: int  # questions the step meant to send
    sent: int  # questions the simulator accepted (answered 200)
    errors: int  # sends refused, failed or timed out (each also a question lost)
    lost: int  # questions without an answer when the step ended (errors included)
    duplicated: int
    achieved_rate: float  # accepted sends per second over the send phase
    p50_ms: float
    p99_ms: float
    held_back: int = 0  # sends the load generator delayed because its in-flight bound was reached

    @property
    def overloaded(self) -> bool:
        """The sends could not keep the rate (the system under test pushed back, or requests failed)."""
        return self.asked > 0 and (self.achieved_rate < MIN_ACHIEVED * self.rate or self.errors > 0)

    @property
    def passed(self) -> bool:
        """Held the rate with nothing lost and p99 within the target."""
        return (not self.overloaded and self.lost == 0 and self.sent > 0
                and not math.isnan(self.p99_ms) and self.p99_ms <= TARGET_P99_MS)

    def verdict(self) -> str:
        if self.passed:
            return "ok"
        reasons = []
        if self.overloaded:
            reasons.append("overloaded")
        if self.lost:
            reasons.append("lost")
        if math.isnan(self.p99_ms) or self.p99_ms > TARGET_P99_MS:
            reasons.append("p99")
        return "+".join(reasons) or "failed"

    def line(self, label: str) -> str:
        return (f"{label} step {self.rate}/s: achieved {self.achieved_rate:.0f}/s sent={self.sent} "
                f"p50_ms={self.p50_ms:.1f} p99_ms={self.p99_ms:.1f} lost={self.lost} errors={self.errors} "
                f"duplicated={self.duplicated} held_back={self.held_back} -> {self.verdict()}")


def sustained(steps: Sequence[Step]) -> int:
    """The highest rate of the passing steps taken in order, up to the first failure (0 when none passed)."""
    best = 0
    for step in steps:
        if not step.passed:
            break
        best = max(best, step.rate)
    return best


def should_continue(steps: Sequence[Step]) -> bool:
    """Step on while every step so far passed."""
    return all(step.passed for step in steps)


def in_flight_cap(rate: int, timeout_s: float = 10.0, floor: int = 16, ceiling: int = 4000) -> int:
    """Requests in flight the load generator allows at ``rate``: as many as ``rate`` sends over one request
    timeout, so it holds a send back only when requests are timing out anyway (bounded by ``ceiling``)."""
    return max(floor, min(ceiling, math.ceil(rate * timeout_s)))


def pool_size(rate: int, floor: int = 8, ceiling: int = 64) -> int:
    """The load generator's connections at ``rate`` (httpx slows down with many: a few dozen carry 1,000/s)."""
    return max(floor, min(ceiling, math.ceil(rate / 16)))
