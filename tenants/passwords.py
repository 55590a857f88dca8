"""Password hashing for console users: scrypt (``hashlib``, OpenSSL).

A hash reads ``scrypt$<n>$<r>$<p>$<salt_b64>$<hash_b64>``: the parameters travel with it, so the cost can
be raised without breaking stored hashes, and ``needs_rehash`` tells a login to store a fresh hash when
the stored parameters are below the current ones. New hashes use OWASP's parameters for scrypt (N=2^17,
r=8, p=1: 128 MiB and about 0.4 s each); N is a setting (``password_scrypt_n``) that tests may lower and
production may not. Verification compares in constant time and refuses parameters that would make one
login a denial of service; ``spend_equal_work`` lets a login for an unknown account cost as much as one
for a known account, so response time does not tell which emails exist.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import secrets

from config.settings import SCRYPT_N_MAX, SCRYPT_N_OWASP

SCHEME = "scrypt"
N, R, P = SCRYPT_N_OWASP, 8, 1
SALT_BYTES = 16
HASH_BYTES = 32
MAX_N = SCRYPT_N_MAX  # refuse stored parameters that would make one verification a denial of service
MAX_R, MAX_P = 32, 16
MAX_MEMORY = 1024**3  # scrypt needs 128 * n * r bytes: at most 1 GiB per verification


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    # OpenSSL refuses work above ``maxmem`` (32 MiB by default): allow twice what these parameters need.
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=HASH_BYTES, maxmem=128 * n * r * p * 2)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, n: int = N) -> str:
    """A fresh salted hash of ``password`` in the encoded format, at cost ``n`` (with r=8, p=1)."""
    salt = secrets.token_bytes(SALT_BYTES)
    return f"{SCHEME}${n}${R}${P}${_b64(salt)}${_b64(_derive(password, salt, n, R, P))}"


def _parse(encoded: str) -> tuple[int, int, int, bytes, bytes] | None:
    """``(n, r, p, salt, hash)`` of a well-formed hash with safe parameters, else None."""
    try:
        scheme, n_s, r_s, p_s, salt_s, hash_s = encoded.split("$")
        n, r, p = int(n_s), int(r_s), int(p_s)
        salt, expected = base64.b64decode(salt_s, validate=True), base64.b64decode(hash_s, validate=True)
    except (ValueError, binascii.Error):
        return None
    if scheme != SCHEME or not (1 < n <= MAX_N and n & (n - 1) == 0) or not (0 < r <= MAX_R and 0 < p <= MAX_P):
        return None
    if 128 * n * r > MAX_MEMORY or len(salt) < SALT_BYTES or len(expected) != HASH_BYTES:
        return None
    return n, r, p, salt, expected


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches ``encoded``; False for any malformed or tampered hash."""
    parsed = _parse(encoded)
    if parsed is None:
        return False
    n, r, p, salt, expected = parsed
    return hmac.compare_digest(_derive(password, salt, n, r, p), expected)


def needs_rehash(encoded: str, n: int = N) -> bool:
    """Whether a hash that just verified should be replaced: any of its parameters is below the current ones."""
    parsed = _parse(encoded)
    return parsed is None or parsed[0] < n or parsed[1] < R or parsed[2] < P


@functools.cache
def _dummy_hash(n: int) -> str:
    return hash_password(secrets.token_urlsafe(16), n)


def spend_equal_work(password: str, n: int = N) -> None:
    """Do the work of one verification at cost ``n`` and discard it (for an unknown or disabled account)."""
    verify_password(password, _dummy_hash(n))
