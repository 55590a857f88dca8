"""The OAuth ``state`` of Embedded Signup: signed, expiring, bound to a tenant and a browser, single-use.

``state = b64url(payload) "." b64url(HMAC-SHA256(secret, b64url(payload)))`` where the payload is
``{"t": tenant_id, "n": nonce, "e": expires_at, "u": actor, "b": binding}``. ``issue`` signs one and
records its nonce in Redis with the same lifetime; ``verify`` checks the signature in constant time and
the expiry; ``check_browser`` compares, in constant time, the SHA-256 of the browser's secret (a cookie
set when the flow started) with the state's ``binding``, so a dialog URL sent to someone else is
useless in their browser; ``consume`` deletes the nonce atomically, so a state works once. The nonce is
also the id of the signup attempt it starts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from redis.asyncio import Redis

from config import redis_keys

MAX_STATE_LENGTH = 1024
BROWSER_SECRET_BYTES = 32
MAX_BROWSER_SECRET_LENGTH = 128


class StateError(Exception):
    """A ``state`` that must not start an exchange; ``reason`` is safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class State:
    """What a valid state says."""

    tenant_id: str
    nonce: str
    expires_at: int
    actor: str | None
    binding: str  # hex SHA-256 of the secret of the browser that started the flow


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, body: str) -> str:
    return _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())


def sign(secret: bytes, state: State) -> str:
    """The wire form of ``state``."""
    payload = {"t": state.tenant_id, "n": state.nonce, "e": state.expires_at, "u": state.actor, "b": state.binding}
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    return f"{body}.{_mac(secret, body)}"


def verify(secret: bytes, raw: str, *, now: float | None = None) -> State:
    """The state ``raw`` carries; ``StateError`` when it is malformed, forged or expired."""
    if not raw or len(raw) > MAX_STATE_LENGTH or raw.count(".") != 1:
        raise StateError("the sign-in link is malformed")
    body, mac = raw.split(".")
    if not hmac.compare_digest(mac.encode(), _mac(secret, body).encode()):
        raise StateError("the sign-in link was not issued by Aerostic")
    try:
        payload = json.loads(_unb64(body))
        state = State(tenant_id=str(payload["t"]), nonce=str(payload["n"]), expires_at=int(payload["e"]),
                      actor=payload.get("u"), binding=str(payload["b"]))
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise StateError("the sign-in link is malformed") from exc
    if (time.time() if now is None else now) >= state.expires_at:
        raise StateError("the sign-in link has expired; start the connection again")
    return state


def new_browser_secret() -> str:
    """A fresh secret for the browser that starts a flow (it goes in a cookie; the state holds its hash)."""
    return secrets.token_urlsafe(BROWSER_SECRET_BYTES)


def binding_of(browser_secret: str) -> str:
    """What a state holds of the browser's secret: its SHA-256, hex."""
    return hashlib.sha256(browser_secret.encode()).hexdigest()


def check_browser(state: State, browser_secret: str | None) -> None:
    """``StateError`` unless ``browser_secret`` is the secret of the browser that started the flow."""
    presented = binding_of(browser_secret or "")
    if not browser_secret or len(browser_secret) > MAX_BROWSER_SECRET_LENGTH or \
            not hmac.compare_digest(presented.encode(), state.binding.encode()):
        raise StateError("this connection was started in another browser; start it again from the console")


async def issue(redis: Redis, secret: bytes, *, tenant_id: str, actor: str | None, ttl_s: int,
                browser_secret: str) -> str:
    """Sign a new state for ``tenant_id`` and the browser holding ``browser_secret``; remember its nonce for
    ``ttl_s`` seconds."""
    nonce = secrets.token_urlsafe(24)
    state = State(tenant_id=tenant_id, nonce=nonce, expires_at=int(time.time()) + ttl_s, actor=actor,
                  binding=binding_of(browser_secret))
    await redis.set(redis_keys.oauth_nonce(nonce), tenant_id, ex=ttl_s)
    return sign(secret, state)


async def consume(redis: Redis, state: State) -> None:
    """Use the state's nonce up; ``StateError`` when it was already used (or never issued)."""
    owner = await redis.getdel(redis_keys.oauth_nonce(state.nonce))
    if owner is None:
        raise StateError("this sign-in link was already used; start the connection again")
    if (owner.decode() if isinstance(owner, bytes) else str(owner)) != state.tenant_id:
        raise StateError("the sign-in link belongs to another account")


async def restore(redis: Redis, state: State) -> None:
    """Give the nonce back (the request could not be handed on, so the user may retry)."""
    ttl = max(1, state.expires_at - int(time.time()))
    await redis.set(redis_keys.oauth_nonce(state.nonce), state.tenant_id, ex=ttl)
