"""Meta's ``X-Hub-Signature-256``: HMAC-SHA256 of the raw body, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

PREFIX = "sha256="


def sign(body: bytes, secret: bytes) -> str:
    """The header value Meta sends for ``body`` signed with ``secret``."""
    return PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(body: bytes, header: str | None, secrets: Sequence[bytes]) -> bool:
    """True when ``header`` is the signature of ``body`` under any active secret.

    Every secret is tried (no early exit on the first mismatch) so timing does not reveal which.
    """
    if not header or not header.startswith(PREFIX):
        return False
    given = header[len(PREFIX):].strip().lower().encode()
    ok = False
    for secret in secrets:
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
        ok |= hmac.compare_digest(expected, given)
    return ok
