"""A tenant's webhook endpoint for the tests: a bare asyncio HTTP/1.1 server on 127.0.0.1 (no framework).

Every request is recorded (path, headers, body, arrival time). Each path answers 200 unless scripted: a list of
answers used one per request (a status code, or ``HANG``: never answer), then ``then`` for the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

HANG = -1
MAX_BODY = 4 * 1024 * 1024


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)


@dataclass
class Script:
    answers: list[int]
    then: int = 200


class Receiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.scripts: dict[str, Script] = {}
        self._server: asyncio.Server | None = None
        self._hanging = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> Receiver:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, answers: list[int], then: int = 200) -> None:
        self.scripts[path] = Script(list(answers), then)

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def close(self) -> None:
        self._hanging.set()
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                _, path, _ = line.decode().split(" ", 2)
                headers: dict[str, str] = {}
                while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = header.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(min(int(headers.get("content-length", "0")), MAX_BODY))
                self.received.append(Received(path, headers, body))
                script = self.scripts.get(path)
                answer = (script.answers.pop(0) if script.answers else script.then) if script else 200
                if answer == HANG:
                    await self._hanging.wait()
                    return
                writer.write(f"HTTP/1.1 {answer} X\r\ncontent-length: 2\r\nlocation: http://127.0.0.1:1/elsewhere"
                             f"\r\n\r\nok".encode())
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            self._tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()
