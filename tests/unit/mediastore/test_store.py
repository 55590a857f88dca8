"""The media stores: SigV4 against AWS's published example, the local store, and the S3 store against moto's
S3-compatible server (started on a free port)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mediastore import NotFound, ObjectStore, TooLarge
from mediastore.local import LocalStore
from mediastore.s3 import S3Error, S3Store
from mediastore.sigv4 import EMPTY_SHA256, authorization


def test_sigv4_matches_aws_example() -> None:
    """AWS S3 API reference, "Signature Calculations for the Authorization Header", example GET Object."""
    headers = {"host": "examplebucket.s3.amazonaws.com", "range": "bytes=0-9",
               "x-amz-content-sha256": EMPTY_SHA256, "x-amz-date": "20130524T000000Z"}
    header = authorization("GET", "/test.txt", {}, headers, EMPTY_SHA256,
                           now=datetime(2013, 5, 24, tzinfo=UTC), region="us-east-1",
                           access_key="AKIAIOSFODNN7EXAMPLE", secret_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    assert header == ("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                      "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                      "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")


async def _chunks(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


async def _read(store: ObjectStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in store.get(key)])


async def _exercise(store: ObjectStore) -> None:
    data = os.urandom(300_000)
    stored = await store.put("tenant-a/m1", _chunks(data), max_bytes=len(data))
    assert (stored.size, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert await _read(store, "tenant-a/m1") == data
    with pytest.raises(TooLarge):
        await store.put("tenant-a/m2", _chunks(data), max_bytes=len(data) - 1)
    with pytest.raises(NotFound):
        await _read(store, "tenant-a/m2")  # a refused put leaves nothing
    await store.put("tenant-a/m3", _chunks(b"x"), max_bytes=10)
    await store.put("tenant-b/m1", _chunks(b"other"), max_bytes=10)
    assert await store.delete_prefix("tenant-a") == 2
    with pytest.raises(NotFound):
        await _read(store, "tenant-a/m1")
    assert await _read(store, "tenant-b/m1") == b"other"  # another tenant's media stays
    await store.delete("tenant-b/m1")
    await store.delete("tenant-b/m1")  # gone already: no error
    with pytest.raises(ValueError, match="key"):
        await store.put("../escape", _chunks(b"x"), max_bytes=10)


def test_local_store(tmp_path: Path) -> None:
    asyncio.run(_exercise(LocalStore(tmp_path)))
    assert not [p for p in tmp_path.rglob(".part-*")]


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server_module = pytest.importorskip("moto.server")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def test_s3_store_against_moto(moto_endpoint: str) -> None:
    async def main() -> None:
        store = S3Store(moto_endpoint, "aerostic-media", region="us-east-1", access_key="testing",
                        secret_key="testing-secret")
        try:
            await store.create_bucket()
            await store.create_bucket()  # already there: fine
            await _exercise(store)
        finally:
            await store.aclose()

    asyncio.run(main())


def test_s3_errors_name_their_cause(moto_endpoint: str) -> None:
    """S3's error code reaches the caller (never the credentials): a bucket that does not exist."""
    async def main() -> None:
        store = S3Store(moto_endpoint, "no-such-bucket", region="us-east-1", access_key="testing",
                        secret_key="testing-secret")
        try:
            with pytest.raises(S3Error, match="404 NoSuchBucket") as failed:
                await store.put("t/m", _chunks(b"x"), max_bytes=10)
            assert "testing-secret" not in str(failed.value)
        finally:
            await store.aclose()

    asyncio.run(main())
