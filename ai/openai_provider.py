"""The model provider: any server that speaks OpenAI's chat-completions API (OpenAI, vLLM, Ollama, LM Studio).

One ``OpenAIProvider`` per tenant configuration holds one ``openai.AsyncOpenAI`` client (its
connection pool) for its lifetime; ``aclose`` releases it. Structured output is asked for with a
strict JSON schema; a server that rejects ``json_schema`` with a 400 is asked again, once, with
``json_object``, and once that works the provider keeps using it. The client does no retries
(``max_retries=0``): the conversation processor hands over instead of waiting.

Errors come out as ``ModelTimeout`` (the client's timeout) or ``ModelError`` (HTTP errors,
connection failures, unusable answers), with messages that never contain the API key.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from urllib.parse import urlsplit

import openai
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam, completion_create_params
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ai.exceptions import ModelError, ModelTimeout
from ai.knowledge import KnowledgeEntry
from ai.prompt import DECISION_SCHEMA, build_messages, parse_answer, select_grounding
from ai.provider import Answer
from ai.scorer import OfflineScorer
from schemas.ai import Turn

log = logging.getLogger(__name__)

JSON_SCHEMA_FORMAT: completion_create_params.ResponseFormat = {
    "type": "json_schema",
    "json_schema": {"name": "decision", "strict": True, "schema": DECISION_SCHEMA},
}
JSON_OBJECT_FORMAT: completion_create_params.ResponseFormat = {"type": "json_object"}


class OpenAIConfig(BaseModel):
    """One tenant's model: where it is served, which model, the key (any non-empty string for Ollama)."""

    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)

    base_url: str = "https://api.openai.com/v1"
    model: str = Field(min_length=1)
    api_key: SecretStr = SecretStr("no-key")
    timeout_s: float = Field(8.0, gt=0)
    grounding_entries: int = Field(8, ge=1)  # knowledge-base entries in the prompt
    history_turns: int = Field(6, ge=0)  # earlier messages sent along
    temperature: float | None = Field(None, ge=0, le=2)  # None: the server's default (reasoning models need it)
    max_tokens: int | None = Field(None, ge=1)


class _SchemaRejected(ModelError):
    """The server answered 400 to a ``json_schema`` response format (internal: triggers the fallback)."""


class OpenAIProvider:
    """The ``openai`` provider: grounds the model on the best knowledge-base entries and parses its JSON."""

    name = "openai"

    def __init__(
        self,
        config: OpenAIConfig,
        *,
        ranker: OfflineScorer | None = None,
        client: openai.AsyncOpenAI | None = None,
    ) -> None:
        self.config = config
        self._ranker = ranker if ranker is not None else OfflineScorer()
        self._owns_client = client is None
        self._client = client if client is not None else openai.AsyncOpenAI(
            base_url=config.base_url,
            api_key=config.api_key.get_secret_value() or "no-key",
            timeout=config.timeout_s,
            max_retries=0,
        )
        self._json_schema = True  # cleared once a server turned it down and json_object worked

    def __repr__(self) -> str:
        return f"OpenAIProvider(base_url={self.config.base_url!r}, model={self.config.model!r})"

    async def answer(self, question: str, history: Sequence[Turn], knowledge: Sequence[KnowledgeEntry]) -> Answer:
        """Ask the model; raises ``ModelError`` or ``ModelTimeout`` when there is no usable answer."""
        entries = select_grounding(question, knowledge, self._ranker, k=self.config.grounding_entries)
        messages = build_messages(question, history, entries, history_turns=self.config.history_turns)
        if self._json_schema:
            try:
                return parse_answer(await self._complete(messages, JSON_SCHEMA_FORMAT))
            except _SchemaRejected as exc:
                log.info("model server %s rejected json_schema (%s); retrying with json_object", self._host, exc)
        answer = parse_answer(await self._complete(messages, JSON_OBJECT_FORMAT))
        self._json_schema = False
        return answer

    async def aclose(self) -> None:
        """Close the HTTP client (only if this provider created it)."""
        if self._owns_client:
            await self._client.close()

    async def _complete(
        self, messages: list[ChatCompletionMessageParam], response_format: completion_create_params.ResponseFormat
    ) -> str | None:
        config = self.config
        try:
            completion = await self._client.chat.completions.create(
                model=config.model,
                messages=messages,
                response_format=response_format,
                temperature=config.temperature if config.temperature is not None else openai.omit,
                max_tokens=config.max_tokens if config.max_tokens is not None else openai.omit,
            )
        except openai.APITimeoutError:
            raise ModelTimeout(config.timeout_s) from None
        except openai.BadRequestError as exc:
            error = _SchemaRejected if response_format is JSON_SCHEMA_FORMAT else ModelError
            raise error(f"the model server refused the request (HTTP 400): {self._scrub(exc.message)}") from None
        except openai.APIStatusError as exc:
            raise ModelError(f"the model server answered HTTP {exc.status_code}: {self._scrub(exc.message)}") from None
        except openai.APIConnectionError as exc:
            raise ModelError(f"cannot reach the model server {self._host}: {self._scrub(str(exc))}") from None
        except openai.OpenAIError as exc:
            raise ModelError(f"{type(exc).__name__}: {self._scrub(str(exc))}") from None
        except ValueError:  # a 200 whose body is not JSON (a proxy's error page, not a model server)
            raise ModelError("the model server's answer is not a chat completion") from None
        return self._content(completion)

    def _content(self, completion: ChatCompletion) -> str | None:
        """The first choice's text; the object is checked, since a lenient client lets any JSON through."""
        try:
            if not completion.choices:
                raise ModelError("the model server returned no choices")
            message = completion.choices[0].message
            refusal, content = message.refusal, message.content
        except (AttributeError, IndexError, KeyError, TypeError):
            raise ModelError("the model server's answer is not a chat completion") from None
        if refusal:
            raise ModelError(f"the model refused: {self._scrub(str(refusal))}")
        if content is not None and not isinstance(content, str):
            raise ModelError("the model server's answer is not a chat completion")
        return content

    @property
    def _host(self) -> str:
        return urlsplit(self.config.base_url).netloc or self.config.base_url

    def _scrub(self, text: str, limit: int = 200) -> str:
        """``text`` without the API key (servers may echo it), shortened for a hand-off reason."""
        key = self.config.api_key.get_secret_value()
        if len(key) >= 4:
            text = text.replace(key, "***")
        text = " ".join(text.split())
        return text if len(text) <= limit else text[:limit] + "…"
