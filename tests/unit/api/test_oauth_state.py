"""The signed OAuth state: round trip, forgery, tampering, expiry, malformed input."""

from __future__ import annotations

import base64
import json

import pytest

from api.oauth_state import State, StateError, sign, verify

SECRET = b"state-secret-for-tests"
STATE = State(tenant_id="t-1", nonce="n-1", expires_at=2_000, actor="user:u-1")


def test_round_trip() -> None:
    assert verify(SECRET, sign(SECRET, STATE), now=1_000) == STATE


def test_another_secret_is_refused() -> None:
    with pytest.raises(StateError, match="not issued by Aerostic"):
        verify(b"another-secret", sign(SECRET, STATE), now=1_000)


def test_changed_tenant_is_refused() -> None:
    body, mac = sign(SECRET, STATE).split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["t"] = "t-2"
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    with pytest.raises(StateError, match="not issued by Aerostic"):
        verify(SECRET, f"{forged}.{mac}", now=1_000)


def test_expired_state_is_refused() -> None:
    raw = sign(SECRET, STATE)
    assert verify(SECRET, raw, now=1_999).nonce == "n-1"
    with pytest.raises(StateError, match="expired"):
        verify(SECRET, raw, now=2_000)


@pytest.mark.parametrize("raw", ["", "no-dot", "a.b.c", "x" * 2000, "!!!.???"])
def test_malformed_state_is_refused(raw: str) -> None:
    with pytest.raises(StateError):
        verify(SECRET, raw, now=1_000)


def test_signed_garbage_payload_is_malformed() -> None:
    import hashlib
    import hmac
    body = base64.urlsafe_b64encode(b'{"t": "x"}').rstrip(b"=").decode()
    mac = base64.urlsafe_b64encode(hmac.new(SECRET, body.encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
    with pytest.raises(StateError, match="malformed"):
        verify(SECRET, f"{body}.{mac}", now=1_000)
