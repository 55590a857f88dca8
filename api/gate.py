"""``RefuseThrottled``: the ASGI middleware that answers a throttled tenant's request at the door.

A ``/v1`` request whose credential belongs to a tenant this process is refusing right now (its rate is
spent: ``api.ratelimit.TenantRateLimiter.refused_for``) is answered 429 with ``Retry-After`` before the
framework parses, routes or authenticates it, so that a tenant's flood costs the server as little as
possible and other tenants keep their latency. The answer is held for ``HOLD_S`` first (nothing runs
meanwhile): a client that ignores ``Retry-After`` and asks again at once, on as many connections as it
likes, is slowed to ``connections / HOLD_S`` requests a second instead of spinning the server; one that
honours it waits longer than that anyway. Everything else goes on to the app, where
``api.auth.require_tenant`` applies the rate to every authenticated request.
"""

from __future__ import annotations

import asyncio

import orjson
from fastapi.security.utils import get_authorization_scheme_param
from starlette.datastructures import Headers
from starlette.requests import cookie_parser

from api.auth import SESSION_COOKIE
from api.limits import ASGIApp, Receive, Scope, Send
from api.ratelimit import TOO_MANY, retry_after

# Where a credential is not a tenant's: sign-in takes none.
OPEN_PATHS = ("/v1/auth/login",)
HOLD_S = 0.25


class RefuseThrottled:
    """Wraps the web app; see the module."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        wait = self._refused_for(scope)
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        await asyncio.sleep(min(wait, HOLD_S))
        body = orjson.dumps({"detail": TOO_MANY})
        await send({"type": "http.response.start", "status": 429, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"retry-after", retry_after(wait - min(wait, HOLD_S)).encode())]})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _refused_for(scope: Scope) -> float:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/") or scope["path"] in OPEN_PATHS:
            return 0.0
        limiter = getattr(scope["app"].state, "rate_limiter", None)  # set by the lifespan
        token = credential(Headers(scope=scope))
        return limiter.refused_for(token) if limiter is not None and token else 0.0


def credential(headers: Headers) -> str | None:
    """The request's bearer token, else its session cookie: what ``api.auth.credential`` gets from FastAPI."""
    scheme, token = get_authorization_scheme_param(headers.get("authorization"))
    if scheme.lower() == "bearer" and token:
        return token
    return cookie_parser(headers.get("cookie", "")).get(SESSION_COOKIE) or None
