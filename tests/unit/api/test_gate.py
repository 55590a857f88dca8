"""api.gate and api.ratelimit.TenantRateLimiter: a throttled tenant is refused at the door, on real Redis."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest
import redis.asyncio as aioredis
from fastapi import HTTPException

from api.gate import HOLD_S, RefuseThrottled
from api.ratelimit import TOO_MANY, Rate, TenantRateLimiter
from config.settings import IngressSettings

KEY = "aer_0a1b2c3d_" + "s" * 43


class FixedRate(TenantRateLimiter):
    """The limiter with one rate for every tenant (no database)."""

    def __init__(self, redis: aioredis.Redis, rate: Rate) -> None:
        super().__init__(engine=None, redis=redis, settings=IngressSettings(environment="test"))  # type: ignore[arg-type]
        self.fixed = rate

    async def rate(self, tenant_id: str) -> Rate:
        return self.fixed


async def test_a_refusal_is_held_until_its_retry_after_and_only_for_known_credentials(
        redis_client: aioredis.Redis, uid: str) -> None:
    limiter = FixedRate(redis_client, Rate(per_s=10, burst=1))
    await limiter.check(uid)
    started = time.monotonic()
    with pytest.raises(HTTPException) as refused:
        await limiter.check(uid)
    assert refused.value.status_code == 429 and refused.value.headers == {"Retry-After": "1"}
    assert limiter.refused_for(KEY) == 0.0  # the credential is not known yet
    limiter.remember(KEY, uid)
    assert limiter.known_tenant(KEY) == uid and 0.5 < limiter.refused_for(KEY) <= 1
    with pytest.raises(HTTPException):
        await limiter.check(uid)  # Redis has a slot by now (0.1 s), but the tenant was told to wait 1 s
    limiter.forget_credential(KEY)
    assert limiter.known_tenant(KEY) is None and limiter.refused_for(KEY) == 0.0
    limiter.remember(KEY, uid)
    deadline = started + 3
    while limiter.refused_for(KEY) > 0:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    assert time.monotonic() - started >= 0.95
    await limiter.check(uid)  # served again once the Retry-After has passed


async def test_new_limits_lift_the_refusal_at_once(redis_client: aioredis.Redis, uid: str) -> None:
    limiter = FixedRate(redis_client, Rate(per_s=1, burst=1))
    await limiter.check(uid)
    with pytest.raises(HTTPException):
        await limiter.check(uid)
    limiter.remember(KEY, uid)
    limiter.fixed = Rate(per_s=100, burst=200)
    limiter.forget(uid)  # the tenant's limits changed
    assert limiter.refused_for(KEY) == 0.0
    await limiter.check(uid)


class App:
    def __init__(self, limiter: Any) -> None:
        self.state = SimpleNamespace(rate_limiter=limiter)
        self.called = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.called += 1


class Refusing:
    """A limiter that refuses ``token`` for 2.5 s more."""

    def __init__(self, token: str) -> None:
        self.token = token

    def refused_for(self, credential: str) -> float:
        return 2.5 if credential == self.token else 0.0


async def call(app: App, path: str, headers: list[tuple[bytes, bytes]]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "path": path, "headers": headers, "app": app}
    await RefuseThrottled(app)(scope, receive, send)
    return sent


@pytest.mark.parametrize("headers", [
    [(b"authorization", f"Bearer {KEY}".encode())],
    [(b"authorization", f"bearer {KEY}".encode())],
    [(b"cookie", f"theme=dark; aerostic_session={KEY}".encode())],
    [(b"authorization", b"Basic dXNlcjpwYXNz"), (b"cookie", f"aerostic_session={KEY}".encode())],
])
async def test_a_throttled_credential_is_refused_before_the_app(headers: list[tuple[bytes, bytes]]) -> None:
    app = App(Refusing(KEY))
    started = time.monotonic()
    sent = await call(app, "/v1/messages", headers)
    assert time.monotonic() - started >= HOLD_S  # held, so that a client asking again at once is slowed
    assert app.called == 0
    assert sent[0]["status"] == 429 and dict(sent[0]["headers"])[b"retry-after"] == b"3"  # 2.5 - 0.25 s
    assert TOO_MANY in sent[1]["body"].decode()


@pytest.mark.parametrize(("path", "headers", "limiter"), [
    ("/v1/messages", [(b"authorization", b"Bearer someone-else")], Refusing(KEY)),
    ("/v1/messages", [], Refusing(KEY)),
    ("/v1/auth/login", [(b"authorization", f"Bearer {KEY}".encode())], Refusing(KEY)),
    ("/console", [(b"cookie", f"aerostic_session={KEY}".encode())], Refusing(KEY)),
    ("/v1/messages", [(b"authorization", f"Bearer {KEY}".encode())], None),  # no lifespan, no limiter
])
async def test_everything_else_goes_on_to_the_app(path: str, headers: list[tuple[bytes, bytes]],
                                                  limiter: Any) -> None:
    app = App(limiter)
    assert await call(app, path, headers) == [] and app.called == 1
