"""Prometheus metrics of the webhook ingress: webhooks accepted and refused (by reason), and how long the append
to Kafka took (the broker's acknowledgement, which Meta's 200 waits for).

Reasons are fixed: ``too_large`` (413), ``bad_signature`` (401), ``not_json`` (400), ``broker_unavailable``
(503), ``verification`` (a refused GET handshake). Children are bound at import: one increment per request.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from broker.metrics import SECONDS

WEBHOOKS = Counter("aerostic_ingress_webhooks", "Webhook requests by result (accepted, refused) and reason",
                   ["result", "reason"])
APPEND_SECONDS = Histogram("aerostic_ingress_append_seconds",
                           "Appending one webhook to Kafka, until the broker acknowledged it (acks=all)",
                           buckets=(0.0005, *SECONDS))

ACCEPTED = WEBHOOKS.labels("accepted", "ok")
REFUSED = {reason: WEBHOOKS.labels("refused", reason)
           for reason in ("too_large", "bad_signature", "not_json", "broker_unavailable", "verification")}
