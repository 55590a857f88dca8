"""Prometheus metrics of the webhook deliverer: delivery attempts to tenants' endpoints by result, and their time.

Results are fixed: ``delivered`` (2xx), ``retry`` (failed, tried again later), ``dead`` (failed past the retry
horizon), ``gone`` (410: the endpoint is disabled). Never an endpoint or a tenant as a label.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from broker.metrics import SECONDS

DELIVERIES = Counter("aerostic_deliverer_deliveries", "Delivery attempts to tenants' webhook endpoints, by result",
                     ["result"])
ATTEMPT_SECONDS = Histogram("aerostic_deliverer_attempt_seconds", "One delivery attempt, connect to last byte",
                            buckets=SECONDS)

RESULTS = {result: DELIVERIES.labels(result) for result in ("delivered", "retry", "dead", "gone")}
