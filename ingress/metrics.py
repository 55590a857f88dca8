"""Prometheus metrics of the webhook ingress: webhooks accepted and refused (by reason), and how long the append
to Kafka took (the broker's acknowledgement, which Meta's 200 waits for).

Reasons are fixed: ``too_large`` (413), ``bad_signature`` (401), ``not_json`` (400), ``broker_unavailable``
(503), ``verification`` (a refused GET handshake).

The figures are plain integers read when Prometheus scrapes (a collector), not ``prometheus_client`` metrics: its
histogram costs about 2 µs an observation and its counter 0.5 µs (each takes a lock), paid on every webhook Meta
sends. Only the event loop's thread writes them; a scrape reads a copy.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from broker.metrics import SECONDS

REASONS = ("too_large", "bad_signature", "not_json", "broker_unavailable", "verification")
BOUNDS = (0.0005, *SECONDS)  # the append's histogram buckets (seconds, each an upper bound)


class IngressMetrics(Collector):
    """``aerostic_ingress_webhooks_total{result, reason}`` and ``aerostic_ingress_append_seconds``."""

    def __init__(self) -> None:
        self.refused = dict.fromkeys(REASONS, 0)
        self._buckets = [0] * (len(BOUNDS) + 1)  # per bound, then above the last one; the accepted count is the sum
        self._sum = 0.0

    def accepted(self, append_seconds: float) -> None:
        """One webhook appended and acknowledged in ``append_seconds``."""
        self._buckets[bisect_left(BOUNDS, append_seconds)] += 1
        self._sum += append_seconds

    def refuse(self, reason: str) -> None:
        self.refused[reason] += 1

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        buckets, total = list(self._buckets), self._sum
        webhooks = CounterMetricFamily("aerostic_ingress_webhooks",
                                       "Webhook requests by result (accepted, refused) and reason",
                                       labels=["result", "reason"])
        webhooks.add_metric(["accepted", "ok"], sum(buckets))
        for reason, count in self.refused.items():
            webhooks.add_metric(["refused", reason], count)
        cumulative, running = [], 0
        for bound, count in zip((*map(floatToGoString, BOUNDS), "+Inf"), buckets, strict=True):
            running += count
            cumulative.append((bound, running))
        append = HistogramMetricFamily("aerostic_ingress_append_seconds",
                                       "Appending one webhook to Kafka, until the broker acknowledged it (acks=all)")
        append.add_metric([], cumulative, sum_value=total)
        yield webhooks
        yield append


METRICS = IngressMetrics()
REGISTRY.register(METRICS)
