"""A Server-Sent Events reader of ``GET /v1/live`` for the tests: collects every event and the last id."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from stack.launcher import LocalStack
from stack.processes import Child, free_port
from tests.integration.helpers import wait_for


@dataclass
class LiveReader:
    """One open stream: its events in arrival order, the last id it saw (events and id-only frames)."""

    api: httpx.AsyncClient
    headers: dict[str, str]
    events: list[dict[str, Any]] = field(default_factory=list)
    last_id: str | None = None
    status: int | None = None
    ended: bool = False
    _task: asyncio.Task[None] | None = None
    _opened: asyncio.Event = field(default_factory=asyncio.Event)

    async def open(self) -> LiveReader:
        self._task = asyncio.create_task(self._read())
        await asyncio.wait_for(self._opened.wait(), 60)
        assert self.status == 200, self.status
        await wait_for(lambda: _true(self.last_id is not None), timeout=30, what="the stream's first id")
        return self

    async def _read(self) -> None:
        try:
            async with self.api.stream("GET", "/v1/live", headers=self.headers,
                                       timeout=httpx.Timeout(30, read=None)) as response:
                self.status = response.status_code
                self._opened.set()
                if response.status_code != 200:
                    return
                ident, data = None, []
                async for line in response.aiter_lines():
                    if line.startswith("id: "):
                        ident = line[4:]
                    elif line.startswith("data: "):
                        data.append(line[6:])
                    elif line == "":
                        if ident is not None:
                            self.last_id = ident
                        if data:
                            self.events.append(json.loads("\n".join(data)))
                        ident, data = None, []
        finally:
            self.ended = True
            self._opened.set()

    def of(self, type_: str, **data: Any) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == type_ and all(e["data"].get(k) == v for k, v in data.items())]

    async def wait(self, type_: str, *, timeout: float = 60.0,  # noqa: ASYNC109
                   **data: Any) -> dict[str, Any]:
        found = await wait_for(lambda: _first(self.of(type_, **data)), timeout=timeout,
                               what=f"a {type_} event {data}")
        return dict(found)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await self._task


async def _true(value: bool) -> bool | None:
    return True if value else None


async def _first(items: list[dict[str, Any]]) -> dict[str, Any] | None:
    return items[0] if items else None


async def live(api: httpx.AsyncClient, token: str, last_event_id: str | None = None) -> LiveReader:
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    return await LiveReader(api, headers).open()


async def web_process(stack: LocalStack, name: str, port: int | None = None,
                      **settings: str) -> tuple[Child, httpx.AsyncClient]:
    """Another web server of the same stack (a second replica behind a load balancer), ``settings`` its own."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    child = stack.spawn(name, "ingress", "--host", "127.0.0.1", "--port", str(port), env={
        "AEROSTIC_PUBLIC_URL": url, **{f"AEROSTIC_{k.upper()}": v for k, v in settings.items()}})
    client = httpx.AsyncClient(base_url=url, timeout=30)

    async def healthy() -> bool | None:
        assert child.alive(), f"{name} exited"
        try:
            return (await client.get("/healthz")).status_code == 200 or None
        except httpx.TransportError:
            return None

    await wait_for(healthy, timeout=120, what=f"{name} to serve")
    return child, client
