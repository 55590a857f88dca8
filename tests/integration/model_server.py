"""An OpenAI-compatible model server for the integration stack, in a thread of the test process.

It serves ``tests.unit.ai.chat_server.ChatServer`` (scripted chat completions) on a fixed loopback
port, so the AI worker can be pointed at it once, and it can be stopped (connection refused: the
model server is down) and started again on the same port.
"""

from __future__ import annotations

import asyncio
import socket
import threading

import uvicorn

from tests.unit.ai.chat_server import ChatServer


class _Server(uvicorn.Server):
    """Tells the starting thread when it listens."""

    def __init__(self, config: uvicorn.Config, started: threading.Event) -> None:
        super().__init__(config)
        self.ready = started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


class ModelServer:
    """Start, stop and script a chat-completions server on ``port``."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.state = ChatServer(url=f"http://127.0.0.1:{port}/v1")
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self.state.url

    def start(self) -> None:
        started = threading.Event()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        server = _Server(uvicorn.Config(self.state.app(), log_level="critical", lifespan="off",
                                        timeout_graceful_shutdown=1), started)
        self._server = server

        async def serve() -> None:
            try:
                await server.serve(sockets=[sock])
            finally:
                started.set()
                sock.close()

        self._thread = threading.Thread(target=asyncio.run, args=(serve(),), name="model-server", daemon=True)
        self._thread.start()
        if not started.wait(10) or not server.started:
            raise RuntimeError("the model server did not start")

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)
            self._server = self._thread = None
