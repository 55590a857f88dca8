"""A small OpenAI-compatible chat-completions server for the AI provider's tests.

``POST /v1/chat/completions`` records each request (body and headers) and answers from a script:
a queue of ``Scripted`` replies (status, content, delay), or ``default`` when the queue is empty.
``reject_json_schema`` makes it behave like a server without structured outputs: a 400 to any
``response_format`` of type ``json_schema``. It runs under uvicorn in the test's event loop on a
free loopback port.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response


@dataclass(frozen=True)
class Scripted:
    """One answer: a chat.completion whose message content is ``content``, or an error ``status``."""

    content: str | None = None
    status: int = 200
    delay_s: float = 0.0
    error: str = "something went wrong"
    refusal: str | None = None
    raw: str | None = None  # sent as the body instead of a chat.completion (a broken proxy, a wrong server)


def decision(reply: str, confidence: float, reason: str) -> Scripted:
    """A well-formed decision as the model would write it."""
    return Scripted(json.dumps({"reply": reply, "confidence": confidence, "reason": reason}))


@dataclass
class Received:
    """A request the server received."""

    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body["messages"])

    @property
    def response_format_type(self) -> str | None:
        fmt = self.body.get("response_format")
        return fmt.get("type") if isinstance(fmt, dict) else None


@dataclass
class ChatServer:
    """The server's state; tests script it and read what it received."""

    url: str = ""
    script: deque[Scripted] = field(default_factory=deque)
    default: Scripted = field(default_factory=lambda: decision("Hello!", 0.9, "default"))
    reject_json_schema: bool = False
    received: list[Received] = field(default_factory=list)

    def reset(self) -> None:
        self.script.clear()
        self.default = decision("Hello!", 0.9, "default")
        self.reject_json_schema = False
        self.received.clear()

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def completions(request: Request) -> Response:
            body = await request.json()
            self.received.append(Received(body, {k.lower(): v for k, v in request.headers.items()}))
            if self.reject_json_schema and (body.get("response_format") or {}).get("type") == "json_schema":
                return _error(400, "response_format of type json_schema is not supported by this server")
            step = self.script.popleft() if self.script else self.default
            if step.delay_s:
                await asyncio.sleep(step.delay_s)
            if step.raw is not None:
                return Response(step.raw, status_code=step.status, media_type="application/json")
            if step.status != 200:
                return _error(step.status, step.error)
            return JSONResponse(_completion(body["model"], step.content, step.refusal))

        return app


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}},
        status_code=status,
    )


def _completion(model: str, content: str | None, refusal: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": refusal},
            "logprobs": None,
            "finish_reason": "stop",
        }],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
    }


@asynccontextmanager
async def serve_chat() -> AsyncIterator[ChatServer]:
    """Run a ``ChatServer`` on a free loopback port until the block ends."""
    state = ChatServer()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(state.app(), log_level="critical", lifespan="off", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(500):  # uvicorn offers a flag, not an event
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    if not server.started:
        server.should_exit = True
        await task
        raise RuntimeError("the chat server did not start")
    state.url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    try:
        yield state
    finally:
        server.should_exit = True
        await task
        sock.close()


def refused_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
