"""ingress.metrics through the webhook handler: an accepted webhook, each refusal's reason, and the append's
latency are counted."""

from __future__ import annotations

from collections.abc import Awaitable, MutableMapping
from typing import Any

from prometheus_client import REGISTRY
from pydantic import SecretStr

from broker.producer import DeliveryError
from config.settings import IngressSettings
from ingress.metrics import METRICS
from ingress.webhook import WebhookHandler
from metasim import payloads

SECRET = "ingress-metrics-app-secret"


class Producer:
    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail

    def append(self, topic: str, value: bytes, key: str | None = None) -> Awaitable[None]:
        return self._outcome()

    async def _outcome(self) -> None:
        if self.fail:
            raise DeliveryError("broker away")


async def _post(handler: WebhookHandler, raw: bytes, headers: dict[str, str]) -> int:
    sent: list[MutableMapping[str, Any]] = []
    chunks = [{"type": "http.request", "body": raw, "more_body": False}]

    async def receive() -> MutableMapping[str, Any]:
        return chunks.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/webhooks/meta",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    await handler(scope, receive, send)
    return int(sent[0]["status"])


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_accepted_and_refused_webhooks_are_counted_by_reason() -> None:
    settings = IngressSettings(environment="test", app_secrets=[SecretStr(SECRET)])
    names = [("aerostic_ingress_webhooks_total", {"result": "accepted", "reason": "ok"}),
             ("aerostic_ingress_webhooks_total", {"result": "refused", "reason": "bad_signature"}),
             ("aerostic_ingress_webhooks_total", {"result": "refused", "reason": "not_json"}),
             ("aerostic_ingress_webhooks_total", {"result": "refused", "reason": "broker_unavailable"}),
             ("aerostic_ingress_append_seconds_count", {})]
    before = [_value(name, **labels) for name, labels in names]
    raw, headers = payloads.signed(payloads.customer_text("123", "456", "15550001111", "hi"), SECRET)
    assert await _post(WebhookHandler(settings, Producer()), raw, headers) == 200  # type: ignore[arg-type]
    assert await _post(WebhookHandler(settings, Producer()), raw, {"X-Hub-Signature-256": "sha256=00"}) == 401  # type: ignore[arg-type]
    bad, bad_headers = b"not json", {"X-Hub-Signature-256": payloads.signature(b"not json", SECRET)}
    assert await _post(WebhookHandler(settings, Producer()), bad, bad_headers) == 400  # type: ignore[arg-type]
    assert await _post(WebhookHandler(settings, Producer(fail=True)), raw, headers) == 503  # type: ignore[arg-type]
    moved = [_value(name, **labels) - was for (name, labels), was in zip(names, before, strict=True)]
    assert moved == [1, 1, 1, 1, 1]


def test_an_append_is_counted_in_its_bucket_and_the_sum() -> None:
    """Prometheus' ``le`` buckets are cumulative and inclusive: 2.5 ms lands in ``le=0.0025`` and every one above."""
    labels = [{"le": le} for le in ("0.001", "0.0025", "0.005", "+Inf")]
    bucket = "aerostic_ingress_append_seconds_bucket"
    before = [_value(bucket, **le) for le in labels] + [_value("aerostic_ingress_append_seconds_sum")]
    METRICS.accepted(0.0025)
    METRICS.accepted(0.004)
    after = [_value(bucket, **le) for le in labels] + [_value("aerostic_ingress_append_seconds_sum")]
    moved = [round(b - a, 6) for a, b in zip(before, after, strict=True)]
    assert moved == [0, 1, 2, 2, 0.0065]
