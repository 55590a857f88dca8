"""One delivery over HTTP: resolve and check the endpoint's address, connect to that address, post the signed body.

Each endpoint has its own ``httpx`` client (``Clients``), with at most the endpoint's concurrency in connections,
no proxies from the environment, and no redirects followed: an endpoint that hangs holds only its own connections.
The whole attempt, resolution included, is bounded by the timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass

import httpx

from webhooks.signing import headers
from webhooks.urls import Policy, UrlRefused, resolve

USER_AGENT = "Aerostic-Webhooks/1"
MAX_CLIENTS = 1000  # idle clients beyond this are closed, least recently used first


@dataclass(frozen=True)
class Attempt:
    """What one attempt got: a status code, or an error; and how long it took."""

    status: int | None
    error: str | None
    latency_ms: int

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Clients:
    """One ``httpx.AsyncClient`` per endpoint (and URL), created when first needed."""

    def __init__(self, *, concurrency: int, timeout_s: float) -> None:
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self._clients: OrderedDict[tuple[str, str], httpx.AsyncClient] = OrderedDict()

    def get(self, endpoint_id: str, url: str) -> httpx.AsyncClient:
        key = (endpoint_id, url)
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = httpx.AsyncClient(
                follow_redirects=False, trust_env=False, timeout=httpx.Timeout(self.timeout_s),
                limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency),
                headers={"user-agent": USER_AGENT})
            while len(self._clients) > MAX_CLIENTS:
                _, old = self._clients.popitem(last=False)
                asyncio.get_running_loop().create_task(old.aclose())
        self._clients.move_to_end(key)
        return client

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


async def deliver(client: httpx.AsyncClient, url: str, policy: Policy, *, event_id: str, body: bytes,
                  secrets: list[str], timeout_s: float) -> Attempt:
    """Post ``body`` to ``url``, signed with ``secrets``; never raises for the endpoint's own failures."""
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        async with asyncio.timeout(timeout_s):
            target = await resolve(url, policy)
            signed = headers(secrets, event_id, int(time.time()), body)
            extensions = {"sni_hostname": target.host} if url.lower().startswith("https:") else {}
            request = client.build_request("POST", target.url, content=body, extensions=extensions, headers={
                **signed, "content-type": "application/json", "host": target.host_header})
            response = await client.send(request, stream=True)
            await response.aclose()  # the status is all we keep: the body is never read
            return Attempt(response.status_code, None, took())
    except UrlRefused as exc:
        return Attempt(None, f"refused: {exc}", took())
    except TimeoutError:
        return Attempt(None, f"timed out after {timeout_s:g} s", took())
    except httpx.HTTPError as exc:
        return Attempt(None, f"{type(exc).__name__}: {str(exc)[:200]}", took())
    except OSError as exc:
        return Attempt(None, f"{type(exc).__name__}: {str(exc)[:200]}", took())
