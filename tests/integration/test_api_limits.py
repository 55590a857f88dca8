"""The tenant API's limits through the real ingress: bodies bounded before they are read, every list in
pages of one contract, and each tenant's request rate (one tenant's flood leaves the others' latency alone)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil
import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from db.tables import conversations
from stack.launcher import LocalStack
from tests.integration.helpers import PLATFORM_KEY, BusinessFactory, fresh_id
from tests.integration.people import person

ASYNC = pytest.mark.asyncio(loop_scope="session")
MIB = 1024 * 1024
HUGE = 500 * MIB
PLATFORM = {"Authorization": f"Bearer {PLATFORM_KEY}"}


def ingress_rss(stack: LocalStack) -> int:
    return int(psutil.Process(stack.children["ingress"].pid).memory_info().rss)


class Upload:
    """A 500 MB body made in 1 MiB chunks, counting what was handed to the connection."""

    def __init__(self) -> None:
        self.yielded = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        chunk = b"x" * MIB
        while self.yielded < HUGE:
            self.yielded += len(chunk)
            yield chunk


async def stream(stack: LocalStack, path: str, headers: dict[str, str], upload: Upload) -> tuple[int, dict[str, str]]:
    """POST ``upload`` chunked, reading the answer while sending (as curl and browsers do); stops sending once
    answered or cut off. The status and headers of the answer."""
    url = urlsplit(stack.ingress_url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write(f"POST {path} HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n{head}\r\n".encode())
        answered = asyncio.ensure_future(reader.readuntil(b"\r\n\r\n"))
        with contextlib.suppress(ConnectionError):
            async for chunk in upload.chunks():
                if answered.done():
                    break
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
                await asyncio.sleep(0)  # drain() does not yield while the buffer is low: let the reader see the answer
        status_line, *lines = (await asyncio.wait_for(answered, 30)).decode().split("\r\n")
        return int(status_line.split()[1]), {k.lower(): v for k, v in (line.split(": ", 1) for line in lines if line)}
    finally:
        writer.close()


@ASYNC
async def test_a_streamed_500_mb_body_is_refused_after_little_of_it_was_read(
        stack: LocalStack, business_factory: BusinessFactory) -> None:
    tenant = await business_factory("body limits")
    before = ingress_rss(stack)
    for path, headers in (("/v1/auth/login", {}), ("/v1/knowledge", tenant.auth), ("/v1/messages", {})):
        upload = Upload()
        status, answer = await stream(stack, path, {**headers, "Content-Type": "application/json"}, upload)
        assert status == 413 and answer["connection"] == "close", (path, status)
        # Sent: at most the limit (1 MiB), the lingering close (4 MiB) and what the sockets buffer; never 500 MB.
        assert upload.yielded <= 64 * MIB, (path, upload.yielded)
    assert ingress_rss(stack) - before < 100 * MIB


@ASYNC
async def test_a_client_that_reads_only_after_sending_sees_the_413_of_a_body_a_little_too_large(
        api: httpx.AsyncClient, business_factory: BusinessFactory) -> None:
    tenant = await business_factory("body a little too large")

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(12):
            yield b"x" * (256 * 1024)

    for body in (chunks(), b"x" * (3 * MIB)):  # 3 MiB, chunked then with a Content-Length
        answer = await api.post("/v1/knowledge", headers={**tenant.auth, "Content-Type": "application/json"},
                                content=body)
        assert answer.status_code == 413, answer.text
        assert answer.json() == {"detail": f"request body too large: at most {MIB} bytes here"}


async def raw_request(stack: LocalStack, head: str) -> tuple[int, dict[str, str], float]:
    """Send only a request's head on a fresh connection; the status, headers and seconds until the answer."""
    url = urlsplit(stack.ingress_url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        started = time.monotonic()
        writer.write(head.encode())
        await writer.drain()
        status_line, *lines = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode().split("\r\n")
        headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines if ": " in line)}
        return int(status_line.split()[1]), headers, time.monotonic() - started
    finally:
        writer.close()


@ASYNC
async def test_a_declared_500_mb_body_is_refused_before_any_of_it_is_sent(stack: LocalStack) -> None:
    before = ingress_rss(stack)
    for path in ("/v1/auth/login", "/v1/knowledge", "/console/login", "/admin/tenants"):
        status, headers, _ = await raw_request(stack, (
            f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            f"Content-Length: {HUGE}\r\nExpect: 100-continue\r\n\r\n"))
        assert status == 413, path  # answered without a byte of the body, and no "100 Continue" first
        assert headers["connection"] == "close"
    # Past the sign-in forms' own limit (16 KiB) but within the default (1 MiB).
    status, _, _ = await raw_request(stack, "POST /v1/auth/login HTTP/1.1\r\nHost: test\r\n"
                                            "Content-Length: 20000\r\nExpect: 100-continue\r\n\r\n")
    assert status == 413
    assert ingress_rss(stack) - before < 100 * MIB


@ASYNC
async def test_bodies_within_the_limit_still_work(api: httpx.AsyncClient,
                                                  business_factory: BusinessFactory) -> None:
    tenant = await business_factory("body within limits")
    entry = {"question": "Where are you?", "answer": "Main street " + "x" * 3000}
    created = await api.post("/v1/knowledge", headers=tenant.auth, json=entry)
    assert created.status_code == 201, created.text
    login = await api.post("/v1/auth/login", json={"email": "nobody@example.com", "password": "p" * 1024})
    assert login.status_code == 401


async def walk(api: httpx.AsyncClient, path: str, headers: dict[str, str], limit: int = 1) -> list[dict[str, Any]]:
    """Every item of a list, ``limit`` at a time, following ``next_cursor``; checks the contract on the way."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        answer = await api.get(path, headers=headers, params={"limit": limit, **({"cursor": cursor} if cursor else {})})
        assert answer.status_code == 200, (path, answer.text)
        page = answer.json()
        assert set(page) == {"items", "next_cursor"} and len(page["items"]) <= limit
        items += page["items"]
        if (cursor := page["next_cursor"]) is None:
            return items
    raise AssertionError(f"{path} never ended")


@ASYNC
async def test_every_list_is_paginated_with_one_contract(api: httpx.AsyncClient, db: AsyncEngine,
                                                         business_factory: BusinessFactory) -> None:
    tenant, other = await business_factory("pages"), await business_factory("pages other")
    people = [await person(api, db, tenant.tenant_id) for _ in range(3)]
    await person(api, db, other.tenant_id)
    keys = [(await api.post("/v1/api-keys", headers=tenant.auth, json={"name": f"k{i}"})).json() for i in range(3)]
    entries = [(await api.post("/v1/knowledge", headers=tenant.auth,
                               json={"question": f"q{i}?", "answer": f"a{i}"})).json() for i in range(3)]
    key = tenant.conversation(fresh_id())
    async with db.begin() as conn:
        await conn.execute(insert(conversations).values(key=key, tenant_id=tenant.tenant_id, wa_id=key.split(":")[1],
                                                        phone_number_id=tenant.phone_number_id))
    notes = [(await api.post(f"/v1/conversations/{key}/notes", headers=tenant.auth, json={"text": f"n{i}"})).json()
             for i in range(3)]

    users = await walk(api, "/v1/users", tenant.auth)
    assert [u["id"] for u in users] == [p.user_id for p in people]  # oldest first (the API key is no user)
    listed_keys = await walk(api, "/v1/api-keys", tenant.auth)
    assert [k["id"] for k in listed_keys][:3] == [k["id"] for k in reversed(keys)]  # newest first
    assert len(listed_keys) == 4  # and the business's own key
    assert [a["user_id"] for a in await walk(api, "/v1/agents", tenant.auth, limit=2)] == [p.user_id for p in people]
    assert [e["id"] for e in await walk(api, "/v1/knowledge", tenant.auth)] == [e["id"] for e in entries]
    assert [n["id"] for n in await walk(api, f"/v1/conversations/{key}/notes", tenant.auth)] == [
        n["id"] for n in notes]
    assert [c["key"] for c in await walk(api, "/v1/conversations", tenant.auth)] == [key]

    first = (await api.get("/admin/tenants", headers=PLATFORM, params={"limit": 2})).json()
    second = (await api.get("/admin/tenants", headers=PLATFORM,
                            params={"limit": 2, "cursor": first["next_cursor"]})).json()
    assert len(first["items"]) == len(second["items"]) == 2
    assert not {t["id"] for t in first["items"]} & {t["id"] for t in second["items"]}
    assert first["items"][1]["created_at"] <= second["items"][0]["created_at"]

    for path in ("/v1/users", "/v1/api-keys", "/v1/agents", "/v1/knowledge", f"/v1/conversations/{key}/notes"):
        for params in ({"limit": 0}, {"limit": 201}, {"cursor": "not-a-cursor"}, {"cursor": "x" * 601}):
            assert (await api.get(path, headers=tenant.auth, params=params)).status_code == 422, (path, params)
    assert (await api.get("/admin/tenants", headers=PLATFORM, params={"cursor": "bad"})).status_code == 422


# A flood of GET /v1/me on keep-alive connections, from its own process (so that its work does not slow down
# the measuring client). argv: url, token, connections. Prints "flooding" after its first 429, then floods
# until stdin closes, then prints the counts of statuses and the Retry-After values seen.
FLOOD = r"""
import asyncio, collections, json, sys
from urllib.parse import urlsplit

async def worker(url, request, stop, statuses, retry_after, first_429):
    while not stop.is_set():
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        try:
            while not stop.is_set():
                writer.write(request)
                status_line, *lines = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
                headers = {k.lower(): v for k, v in (l.split(": ", 1) for l in lines if ": " in l)}
                await reader.readexactly(int(headers.get("content-length", "0")))
                status = int(status_line.split()[1])
                statuses[status] += 1
                if status == 429:
                    retry_after.add(headers.get("retry-after"))
                    first_429.set()
                if headers.get("connection") == "close":
                    break
        finally:
            writer.close()

async def main():
    url, token, connections = urlsplit(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    request = f"GET /v1/me HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    stop, first_429 = asyncio.Event(), asyncio.Event()
    statuses, retry_after = collections.Counter(), set()
    workers = [asyncio.create_task(worker(url, request, stop, statuses, retry_after, first_429))
               for _ in range(connections)]
    await first_429.wait()
    print("flooding", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    stop.set()
    await asyncio.gather(*workers)
    print(json.dumps({"statuses": statuses, "retry_after": sorted(map(str, retry_after))}), flush=True)

asyncio.run(main())
"""


async def latencies(client: httpx.AsyncClient, auth: dict[str, str], count: int, *,
                    min_s: float = 0.0) -> list[float]:
    """Seconds each of at least ``count`` sequential ``GET /v1/me`` took (for at least ``min_s``); every one
    must succeed."""
    took: list[float] = []
    until = time.monotonic() + min_s
    while len(took) < count or time.monotonic() < until:
        started = time.perf_counter()
        answer = await client.get("/v1/me", headers=auth)
        took.append(time.perf_counter() - started)
        assert answer.status_code == 200, answer.text
    return took


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1]


@ASYNC
async def test_one_tenants_flood_is_refused_and_leaves_another_tenants_latency_alone(
        api: httpx.AsyncClient, stack: LocalStack, business_factory: BusinessFactory) -> None:
    flooder, bystander = await business_factory("flooder"), await business_factory("bystander")
    limited = await api.put(f"/admin/tenants/{flooder.tenant_id}/rate-limit", headers=PLATFORM,
                            json={"per_s": 20, "burst": 20})
    assert limited.status_code == 200, limited.text
    assert limited.json()["rate_limit"] == {"per_s": 20, "burst": 20}
    # The bystander asks back to back for seconds: on a fast machine that outruns the platform's default rate.
    unlimited = await api.put(f"/admin/tenants/{bystander.tenant_id}/rate-limit", headers=PLATFORM,
                              json={"per_s": 5000, "burst": 5000})
    assert unlimited.status_code == 200, unlimited.text
    async with httpx.AsyncClient(base_url=stack.ingress_url, timeout=30) as client:
        await latencies(client, bystander.auth, 10)  # warm the connection, the caches and the pool
        before = await latencies(client, bystander.auth, 50)
        flood = await asyncio.create_subprocess_exec(
            sys.executable, "-c", FLOOD, stack.ingress_url, flooder.api_key, "16",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        assert flood.stdin is not None and flood.stdout is not None
        try:
            assert (await asyncio.wait_for(flood.stdout.readline(), 60)).strip() == b"flooding"
            started = time.monotonic()
            loaded = await latencies(client, bystander.auth, 80, min_s=3.0)
            flood.stdin.close()
            result = json.loads(await asyncio.wait_for(flood.stdout.readline(), 60))
            elapsed = time.monotonic() - started
        finally:
            if flood.returncode is None:
                flood.kill()
            await flood.wait()
        after = await latencies(client, bystander.auth, 50)
    # Idle, measured on both sides of the flood: the machine's other load may change in between.
    idle = max(p95(before), p95(after))
    statuses = {int(k): v for k, v in result["statuses"].items()}
    assert set(statuses) == {200, 429}, statuses
    assert all(value.isdigit() and int(value) >= 1 for value in result["retry_after"]), result["retry_after"]
    # The flooder got its rate and no more (the burst, its rate over the whole flood, a margin for the start).
    assert statuses[200] <= 20 + 20 * (elapsed + 5), (statuses, elapsed)
    assert statuses[429] > statuses[200]
    print(f"bystander p95 idle {p95(before) * 1000:.1f} and {p95(after) * 1000:.1f} ms, under the flood "
          f"{p95(loaded) * 1000:.1f} ms; flood {statuses} in {elapsed:.1f} s")
    assert p95(loaded) < 5 * idle + 0.050, (idle, p95(loaded))

    # The limit is per tenant and lifts: back on the platform's default, the flooder is served again.
    reset = await api.put(f"/admin/tenants/{flooder.tenant_id}/rate-limit", headers=PLATFORM,
                          json={"per_s": None, "burst": None})
    assert reset.status_code == 200 and reset.json()["rate_limit"] == {"per_s": None, "burst": None}
    assert (await api.get("/v1/me", headers=flooder.auth)).status_code == 200
    missing = await api.put(f"/admin/tenants/{uuid.uuid4()}/rate-limit", headers=PLATFORM, json={"per_s": 1})
    assert missing.status_code == 404
    for body in ({"per_s": 0}, {"burst": 0}, {"per_s": "fast"}, {"rate": 1}):
        bad = await api.put(f"/admin/tenants/{flooder.tenant_id}/rate-limit", headers=PLATFORM, json=body)
        assert bad.status_code == 422, body
