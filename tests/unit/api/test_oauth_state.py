"""The signed OAuth state: round trip, forgery, tampering, expiry, malformed input, the browser binding."""

from __future__ import annotations

import base64
import json

import pytest

from api.oauth_state import (
    MAX_BROWSER_SECRET_LENGTH,
    State,
    StateError,
    binding_of,
    check_browser,
    new_browser_secret,
    sign,
    verify,
)

SECRET = b"state-secret-for-tests"
BROWSER = "browser-secret-of-the-admin-who-started-it"
STATE = State(tenant_id="t-1", nonce="n-1", expires_at=2_000, actor="user:u-1", binding=binding_of(BROWSER))


def test_round_trip() -> None:
    assert verify(SECRET, sign(SECRET, STATE), now=1_000) == STATE


def test_another_secret_is_refused() -> None:
    with pytest.raises(StateError, match="not issued by Aerostic"):
        verify(b"another-secret", sign(SECRET, STATE), now=1_000)


@pytest.mark.parametrize(("field", "value"), [("t", "t-2"), ("b", binding_of("the attacker's browser"))],
                         ids=["tenant", "binding"])
def test_changed_payload_is_refused(field: str, value: str) -> None:
    body, mac = sign(SECRET, STATE).split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload[field] = value
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
    body = base64.urlsafe_b64encode(b'{"t": "x", "n": "n", "e": 9999}').rstrip(b"=").decode()  # no binding
    mac = base64.urlsafe_b64encode(hmac.new(SECRET, body.encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
    with pytest.raises(StateError, match="malformed"):
        verify(SECRET, f"{body}.{mac}", now=1_000)


def test_the_binding_is_the_sha256_of_the_browser_secret() -> None:
    import hashlib
    assert STATE.binding == hashlib.sha256(BROWSER.encode()).hexdigest()
    assert BROWSER not in sign(SECRET, STATE)  # the state carries the hash, never the secret
    assert verify(SECRET, sign(SECRET, STATE), now=1_000).binding == STATE.binding


def test_the_browser_that_started_it_passes() -> None:
    check_browser(STATE, BROWSER)


@pytest.mark.parametrize("presented", [None, "", "another-browser-secret", BROWSER + "x", BROWSER[:-1],
                                       STATE.binding, "x" * (MAX_BROWSER_SECRET_LENGTH + 1)],
                         ids=["no-cookie", "empty", "other", "longer", "shorter", "the-hash-itself", "too-long"])
def test_another_browser_is_refused(presented: str | None) -> None:
    with pytest.raises(StateError, match="started in another browser"):
        check_browser(STATE, presented)


def test_browser_secrets_are_fresh_and_long() -> None:
    secrets = {new_browser_secret() for _ in range(100)}
    assert len(secrets) == 100 and all(40 <= len(s) <= MAX_BROWSER_SECRET_LENGTH for s in secrets)
