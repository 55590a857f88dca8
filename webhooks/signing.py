"""Standard Webhooks signing (https://www.standardwebhooks.com): ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``.

A secret reads ``whsec_<base64 of 32 random bytes>``; the HMAC key is the decoded bytes. During a rotation's overlap
both the new and the previous secret sign, space-separated in one header, so a receiver holding either verifies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = 32
TOLERANCE_S = 300  # receivers refuse timestamps further than this from their clock


class SignatureError(ValueError):
    """A delivery whose signature or timestamp does not verify."""


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64>`` for one secret."""
    mac = hmac.new(_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def headers(secrets_: list[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers, signed by every secret in ``secrets_`` (newest first)."""
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": " ".join(signature(s, msg_id, timestamp, body) for s in secrets_)}


def verify(secret: str, headers_: dict[str, str], body: bytes, *, now: int, tolerance_s: int = TOLERANCE_S) -> None:
    """What a receiver does (the README's snippet): raise ``SignatureError`` unless one v1 signature matches."""
    try:
        msg_id, stamp = headers_["webhook-id"], int(headers_["webhook-timestamp"])
    except (KeyError, ValueError) as exc:
        raise SignatureError("missing webhook-id or webhook-timestamp") from exc
    if abs(now - stamp) > tolerance_s:
        raise SignatureError("timestamp outside the tolerance")
    expected = signature(secret, msg_id, stamp, body).encode()
    for candidate in headers_.get("webhook-signature", "").split():
        if hmac.compare_digest(candidate.encode(), expected):
            return
    raise SignatureError("no matching signature")
