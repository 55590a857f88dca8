"""A keep-alive HTTP/1.1 load generator in its own process (uvloop + raw asyncio streams).

``run_load`` spawns one process that opens N connections, each sending prebuilt requests
back-to-back with one request outstanding. After a warm-up, completions are counted and
timed for ``duration`` seconds. The child tells the parent when the measured window opens
and closes (so the parent can sample the server's CPU over the same window), then sends a
``LoadResult``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

HOST = "127.0.0.1"
WINDOW_START = "window-start"
WINDOW_END = "window-end"
_CONTENT_LENGTH = b"\r\ncontent-length:"
_HEAD_END = b"\r\n\r\n"


class ProtocolError(Exception):
    """The server answered something this client cannot frame (no Content-Length)."""


@dataclass(frozen=True)
class LoadResult:
    """What one load run measured inside its window."""

    ok: int
    errors: int
    duration: float
    p50_ms: float
    p99_ms: float
    cpu_seconds: float

    @property
    def rps(self) -> float:
        """Successful (200) responses per second."""
        return self.ok / self.duration

    @property
    def error_ratio(self) -> float:
        """Errors over all requests completed (or failed) in the window."""
        total = self.ok + self.errors
        return self.errors / total if total else 1.0


@dataclass
class _Window:
    """The measured window in ``time.perf_counter`` seconds, plus what was seen inside it."""

    start: float
    end: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0

    def record(self, sent: float, done: float, ok: bool) -> None:
        """Count a response that completed inside the window."""
        if self.start <= done < self.end:
            if ok:
                self.latencies.append(done - sent)
            else:
                self.errors += 1


def build_request(body: bytes, signature: str, path: str = "/webhooks/meta") -> bytes:
    """The full bytes of one signed JSON POST."""
    head = (f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
            f"X-Hub-Signature-256: {signature}\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode("ascii") + body


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..1) of an ascending list; 0.0 when empty."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one whole response (head and Content-Length body); return its status code."""
    head = await reader.readuntil(_HEAD_END)
    status = int(head[9:12])
    lowered = head.lower()
    at = lowered.find(_CONTENT_LENGTH)
    if at < 0:
        raise ProtocolError(f"response without content-length: {head[:80]!r}")
    start = at + len(_CONTENT_LENGTH)
    length = int(head[start:lowered.index(b"\r\n", start)])
    if length:
        await reader.readexactly(length)
    return status


async def _connection(port: int, requests: list[bytes], offset: int, window: _Window) -> None:
    """One keep-alive connection: send, read, repeat until the window closes; reconnect on failure."""
    count = len(requests)
    index = offset
    while time.perf_counter() < window.end:
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            window.record(time.perf_counter(), time.perf_counter(), ok=False)
            await asyncio.sleep(0.01)
            continue
        try:
            while (sent := time.perf_counter()) < window.end:
                writer.write(requests[index % count])
                index += 1
                status = await read_response(reader)
                window.record(sent, time.perf_counter(), ok=status == 200)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ProtocolError, ValueError):
            window.record(time.perf_counter(), time.perf_counter(), ok=False)
        finally:
            writer.close()


async def _mark(at: float, conn: Connection, message: str) -> float:
    """Sleep until ``at`` (perf_counter), tell the parent ``message``; return this process's CPU time."""
    await asyncio.sleep(max(0.0, at - time.perf_counter()))
    conn.send(message)
    return time.process_time()


async def _drive(port: int, requests: list[bytes], connections: int, warmup: float, duration: float,
                 conn: Connection) -> LoadResult:
    """Run every connection and the two window marks; summarise the window."""
    now = time.perf_counter()
    window = _Window(start=now + warmup, end=now + warmup + duration)
    workers = [asyncio.create_task(_connection(port, requests, i * 7, window)) for i in range(connections)]
    cpu_start = await _mark(window.start, conn, WINDOW_START)
    cpu_end = await _mark(window.end, conn, WINDOW_END)
    await asyncio.gather(*workers)
    latencies = sorted(window.latencies)
    return LoadResult(ok=len(latencies), errors=window.errors, duration=duration,
                      p50_ms=percentile(latencies, 0.50) * 1000, p99_ms=percentile(latencies, 0.99) * 1000,
                      cpu_seconds=cpu_end - cpu_start)


def _child(port: int, requests: list[bytes], connections: int, warmup: float, duration: float,
           conn: Connection) -> None:
    """Process entry point: run the load on uvloop and send the result to the parent."""
    import uvloop

    try:
        result = uvloop.run(_drive(port, requests, connections, warmup, duration, conn))
        conn.send(result)
    finally:
        conn.close()


class LoadRun:
    """A load generator process; iterate ``events()`` for window marks, then ``result()``."""

    def __init__(self, port: int, requests: list[bytes], *, connections: int, duration: float,
                 warmup: float = 1.0) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._recv, send = ctx.Pipe(duplex=False)
        self._timeout = warmup + duration + 30.0
        self._proc = ctx.Process(target=_child, name="aerostic-loadgen", daemon=True,
                                 args=(port, requests, connections, warmup, duration, send))
        self._proc.start()
        send.close()

    def next_message(self) -> object:
        """The next message from the child (a window mark or the ``LoadResult``)."""
        if not self._recv.poll(self._timeout):
            raise TimeoutError("load generator did not report in time")
        try:
            return self._recv.recv()
        except EOFError as exc:
            raise RuntimeError(f"load generator exited (code {self._proc.exitcode})") from exc

    def expect(self, message: str) -> None:
        """Block until the child sends the mark ``message``."""
        got = self.next_message()
        if got != message:
            raise RuntimeError(f"load generator sent {got!r}, expected {message!r}")

    def result(self) -> LoadResult:
        """Block until the child sends its ``LoadResult``."""
        got = self.next_message()
        if not isinstance(got, LoadResult):
            raise RuntimeError(f"load generator sent {got!r}, expected a result")
        return got

    def close(self) -> None:
        """Reap the child; terminate it if it is still running."""
        self._proc.join(timeout=5)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(timeout=5)
        with contextlib.suppress(OSError):
            self._recv.close()
