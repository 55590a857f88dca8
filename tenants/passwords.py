"""Password hashing for console users: scrypt from ``cryptography``.

A hash reads ``scrypt$<n>$<r>$<p>$<salt_b64>$<hash_b64>`` so the cost can be raised later
without breaking stored hashes. Verification compares in constant time, and ``spend_equal_work``
lets a login for an unknown account cost as much as one for a known account, so response time
does not tell which emails exist.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import secrets

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

SCHEME = "scrypt"
N, R, P = 2**14, 8, 1  # 16 MiB and ~50 ms per hash
SALT_BYTES = 16
HASH_BYTES = 32
MAX_N = 2**20  # refuse stored parameters that would make one verification a denial of service


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=HASH_BYTES, n=n, r=r, p=p).derive(password.encode())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    """A fresh salted hash of ``password`` in the encoded format."""
    salt = secrets.token_bytes(SALT_BYTES)
    return f"{SCHEME}${N}${R}${P}${_b64(salt)}${_b64(_derive(password, salt, N, R, P))}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches ``encoded``; False for any malformed or tampered hash."""
    try:
        scheme, n_s, r_s, p_s, salt_s, hash_s = encoded.split("$")
        n, r, p = int(n_s), int(r_s), int(p_s)
        salt, expected = base64.b64decode(salt_s, validate=True), base64.b64decode(hash_s, validate=True)
    except (ValueError, binascii.Error):
        return False
    if scheme != SCHEME or not (1 < n <= MAX_N and n & (n - 1) == 0) or not (0 < r <= 32 and 0 < p <= 16):
        return False
    if len(salt) < SALT_BYTES or len(expected) != HASH_BYTES:
        return False
    return hmac.compare_digest(_derive(password, salt, n, r, p), expected)


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def spend_equal_work(password: str) -> None:
    """Do the work of one verification and discard it (for an unknown or disabled account)."""
    verify_password(password, _dummy_hash())
