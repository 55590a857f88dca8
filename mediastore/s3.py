"""A media store in an S3-compatible object store (AWS S3, MinIO, Ceph…), over ``httpx`` with SigV4.

Path-style URLs (``{endpoint}/{bucket}/{key}``). A put is spooled to a temporary file first (in memory up to
8 MiB) so its length and SHA-256 are known: S3 needs the length, and the signed digest makes S3 refuse a body
that changed on the way. Lists are paged (``ListObjectsV2``, 1,000 a page) and deletions go one key at a time.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime
from typing import IO, Any
from xml.etree import ElementTree

import httpx

from mediastore.sigv4 import EMPTY_SHA256, authorization
from mediastore.store import CHUNK_BYTES, Digest, NotFound, Stored, checked_key

SPOOL_BYTES = 8 * 1024 * 1024
MAX_LIST_PAGES = 10_000
NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


class S3Error(RuntimeError):
    """An S3 answer other than success (the status and S3's error code, never the credentials)."""


class S3Store:
    def __init__(self, endpoint: str, bucket: str, *, region: str, access_key: str, secret_key: str,
                 timeout_s: float = 30.0, transport: httpx.AsyncBaseTransport | None = None) -> None:
        if not bucket:
            raise ValueError("the S3 media store needs a bucket (AEROSTIC_MEDIA_S3_BUCKET)")
        self.endpoint, self.bucket, self.region = endpoint.rstrip("/"), bucket, region
        self._access, self._secret = access_key, secret_key
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(timeout_s, connect=5.0), transport=transport,
                                         follow_redirects=False)

    async def _request(self, method: str, key: str | None, *, query: dict[str, str] | None = None,
                       content: Any = None, payload_sha256: str = EMPTY_SHA256,
                       extra: dict[str, str] | None = None, stream: bool = False) -> httpx.Response:
        path = f"/{self.bucket}" + (f"/{key}" if key is not None else "")
        url = httpx.URL(self.endpoint + path)
        headers = {"host": url.netloc.decode(), "x-amz-content-sha256": payload_sha256,
                   "x-amz-date": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"), **(extra or {})}
        base_path = httpx.URL(self.endpoint).path.rstrip("/")
        headers["authorization"] = authorization(
            method, base_path + path, query or {}, headers, payload_sha256, now=datetime.now(UTC),
            region=self.region, access_key=self._access, secret_key=self._secret)
        request = self._client.build_request(method, url.copy_with(params=query or {}), headers=headers,
                                             content=content)
        return await self._client.send(request, stream=stream)

    async def create_bucket(self) -> None:
        """Create the bucket if it does not exist (``aerostic dev`` and the tests; production provisions it)."""
        response = await self._request("PUT", None)
        if response.status_code not in (200, 409):
            raise _error(response)

    async def put(self, key: str, chunks: AsyncIterable[bytes], *, max_bytes: int) -> Stored:
        checked_key(key)
        digest = Digest(max_bytes)
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
            async for chunk in chunks:
                digest.update(chunk)
                spool.write(chunk)
            stored = digest.stored()
            spool.seek(0)
            response = await self._request("PUT", key, content=_read(spool), payload_sha256=stored.sha256,
                                           extra={"content-length": str(stored.size)})
        if response.status_code != 200:
            raise _error(response)
        return stored

    async def get(self, key: str) -> AsyncIterator[bytes]:
        response = await self._request("GET", checked_key(key), stream=True)
        try:
            if response.status_code == 404:
                raise NotFound(key)
            if response.status_code != 200:
                await response.aread()
                raise _error(response)
            async for chunk in response.aiter_bytes(CHUNK_BYTES):
                yield chunk
        finally:
            await response.aclose()

    async def delete(self, key: str) -> None:
        response = await self._request("DELETE", checked_key(key))
        if response.status_code not in (200, 204, 404):
            raise _error(response)

    async def keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix`` (paged)."""
        found: list[str] = []
        token: str | None = None
        for _ in range(MAX_LIST_PAGES):
            query = {"list-type": "2", "prefix": prefix, **({"continuation-token": token} if token else {})}
            response = await self._request("GET", None, query=query)
            if response.status_code != 200:
                raise _error(response)
            root = ElementTree.fromstring(response.content)  # noqa: S314 - the configured store's own answer
            found += [k.text or "" for k in root.iter(f"{NS}Key")]
            token = root.findtext(f"{NS}NextContinuationToken")
            if root.findtext(f"{NS}IsTruncated") != "true" or not token:
                break
        return found

    async def delete_prefix(self, prefix: str) -> int:
        keys = await self.keys(checked_key(prefix) + "/")
        for key in keys:
            await self.delete(key)
        return len(keys)

    async def aclose(self) -> None:
        await self._client.aclose()


async def _read(spool: IO[bytes]) -> AsyncIterator[bytes]:
    while chunk := spool.read(CHUNK_BYTES):
        yield chunk


def _error(response: httpx.Response) -> S3Error:
    code = ""
    try:
        code = ElementTree.fromstring(response.content).findtext("Code") or ""  # noqa: S314
    except ElementTree.ParseError:
        pass
    return S3Error(f"S3 {response.request.method} answered {response.status_code} {code}".strip())
