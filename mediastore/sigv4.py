"""AWS Signature Version 4 for S3-compatible stores (header-based, path-style requests).

https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html: the canonical request (method,
URI-encoded path, sorted query, the signed headers, the payload's SHA-256), the string to sign over its hash,
and the HMAC chain of date, region, service and ``aws4_request``.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from urllib.parse import quote

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED = "UNSIGNED-PAYLOAD"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def uri_encode(text: str, *, slash: bool = False) -> str:
    return quote(text, safe="-_.~" + ("/" if slash else ""))


def authorization(method: str, path: str, query: dict[str, str], headers: dict[str, str], payload_sha256: str, *,
                  now: datetime, region: str, access_key: str, secret_key: str, service: str = "s3") -> str:
    """The ``Authorization`` header for a request whose ``headers`` (lower-case names, ``host`` and
    ``x-amz-date`` among them) are all signed; ``path`` is the decoded path (it is URI-encoded here)."""
    day = now.strftime("%Y%m%d")
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    names = sorted(headers)
    canonical = "\n".join([
        method, uri_encode(path, slash=True),
        "&".join(f"{uri_encode(k)}={uri_encode(v)}" for k, v in sorted(query.items())),
        "".join(f"{n}:{' '.join(headers[n].split())}\n" for n in names), ";".join(names), payload_sha256])
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret_key}".encode(), day), region), service), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={';'.join(names)}, Signature={signature}"
