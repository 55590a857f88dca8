"""Fixtures of the AI agent's tests: the shop's knowledge base, request builders, a chat-completions server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from ai.knowledge import KnowledgeBase
from ai.openai_provider import OpenAIConfig, OpenAIProvider
from ai.scorer import OfflineScorer
from schemas.ai import AiRequest, Turn
from tests.unit.ai.chat_server import ChatServer, serve_chat
from tests.unit.ai.kb import shop_kb

API_KEY = "sk-test-0123456789-SECRET"
MODEL = "shop-assistant-7b"


@pytest.fixture
def kb() -> KnowledgeBase:
    return shop_kb()


@pytest.fixture
def scorer() -> OfflineScorer:
    return OfflineScorer()


@pytest.fixture
def make_request() -> Callable[..., AiRequest]:
    """Builds an ``AiRequest`` for the shop; keyword arguments override the defaults."""

    def build(text: str, **overrides: Any) -> AiRequest:
        values: dict[str, Any] = {
            "event_id": "req-1", "tenant_id": "shop", "conversation_key": "106540352242922:4915112345678",
            "message_wamid": "wamid.HBgLNDkxNTExMjM0NTY3OBUCABIYFjNFQjA", "text": text, "history": [],
            "version": 7, "requested_at": datetime(2025, 6, 1, 12, 0, tzinfo=UTC),
        }
        values.update(overrides)
        return AiRequest(**values)

    return build


HISTORY = [
    Turn(role="customer", text="Hi, I ordered a rain jacket last week"),
    Turn(role="business", text="Thanks for your order! How can we help?"),
]


@pytest.fixture(scope="module")
async def chat_module() -> AsyncIterator[ChatServer]:
    async with serve_chat() as server:
        yield server


@pytest.fixture
def chat(chat_module: ChatServer) -> ChatServer:
    """The module's chat-completions server, its script and records cleared."""
    chat_module.reset()
    return chat_module


@pytest.fixture
async def make_provider(chat: ChatServer) -> AsyncIterator[Callable[..., OpenAIProvider]]:
    """Builds ``OpenAIProvider`` s against the test server (closed after the test); kwargs override the config."""
    made: list[OpenAIProvider] = []

    def build(**overrides: Any) -> OpenAIProvider:
        values: dict[str, Any] = {"base_url": chat.url, "model": MODEL, "api_key": API_KEY, "timeout_s": 5.0}
        values.update(overrides)
        provider = OpenAIProvider(OpenAIConfig(**values))
        made.append(provider)
        return provider

    yield build
    for provider in made:
        await provider.aclose()
