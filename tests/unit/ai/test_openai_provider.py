"""The OpenAI provider through the real ``openai`` client against a local chat-completions server."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from ai.agent import decide_request
from ai.exceptions import ModelError, ModelTimeout
from ai.knowledge import KnowledgeBase
from ai.openai_provider import OpenAIConfig, OpenAIProvider
from ai.provider import decide
from schemas.ai import AiRequest
from tests.unit.ai.chat_server import ChatServer, Scripted, decision, refused_url
from tests.unit.ai.conftest import API_KEY, HISTORY, MODEL

MakeProvider = Callable[..., OpenAIProvider]
SHIPPING_REPLY = "Your order leaves us within 1 business day and arrives 3-5 business days later."


async def test_confident_reply_is_grounded_and_authenticated(
    chat: ChatServer, make_provider: MakeProvider, kb: KnowledgeBase
) -> None:
    chat.script.append(decision(SHIPPING_REPLY, 0.92, "from shipping-time"))
    provider = make_provider(grounding_entries=3)
    answer = await provider.answer("How long does the delivery take to Munich?", HISTORY, kb)

    assert (answer.reply, answer.confidence, answer.reason) == (SHIPPING_REPLY, 0.92, "from shipping-time")
    assert decide(answer, 0.70) == ("reply", "from shipping-time")
    [sent] = chat.received
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.body["model"] == MODEL
    fmt = sent.body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "decision" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"]["required"] == ["reply", "confidence", "reason"]
    system, *turns = sent.messages
    assert system["role"] == "system"
    assert "[shipping-time]" in system["content"] and kb[0].answer in system["content"]  # the grounding
    assert system["content"].count("\nQ: ") == 3  # top-k only
    assert "[gift-cards]" not in system["content"]
    assert [(m["role"], m["content"]) for m in turns] == [
        ("user", HISTORY[0].text), ("assistant", HISTORY[1].text),
        ("user", "How long does the delivery take to Munich?"),
    ]
    assert "temperature" not in sent.body and "max_tokens" not in sent.body  # server defaults unless configured


async def test_configured_sampling_is_sent(chat: ChatServer, make_provider: MakeProvider, kb: KnowledgeBase) -> None:
    await make_provider(temperature=0.0, max_tokens=200, history_turns=1).answer("Hi", HISTORY, kb)
    body = chat.received[0].body
    assert (body["temperature"], body["max_tokens"]) == (0.0, 200)
    assert [m["content"] for m in body["messages"][1:]] == [HISTORY[1].text, "Hi"]


async def test_low_confidence_is_handed_over_with_the_model_reason(
    chat: ChatServer, make_provider: MakeProvider, kb: KnowledgeBase
) -> None:
    chat.script.append(decision("A colleague will get back to you shortly.", 0.2, "engines are not in the base"))
    answer = await make_provider().answer("Can you fix my car engine?", [], kb)
    assert decide(answer, 0.70) == ("handoff", "confidence 0.20 < 0.70: engines are not in the base")


async def test_invalid_json_is_a_model_error(chat: ChatServer, make_provider: MakeProvider, kb: KnowledgeBase) -> None:
    chat.script.append(Scripted("Sure! Shipping takes 3-5 days."))
    with pytest.raises(ModelError, match="not JSON"):
        await make_provider().answer("How long is shipping?", [], kb)
    assert len(chat.received) == 1  # a bad answer is not a reason to drop json_schema


@pytest.mark.parametrize(("content", "message"), [
    (json.dumps({"reply": "", "confidence": 0.9, "reason": "r"}), "empty reply"),
    (json.dumps({"reply": "Hi", "confidence": 7, "reason": "r"}), "outside [0, 1]"),
    (None, "no content"),
])
async def test_unusable_decisions_are_model_errors(
    chat: ChatServer, make_provider: MakeProvider, kb: KnowledgeBase, content: str | None, message: str
) -> None:
    chat.script.append(Scripted(content))
    with pytest.raises(ModelError) as caught:
        await make_provider().answer("Hi", [], kb)
    assert message in str(caught.value)


@pytest.mark.parametrize(("raw", "message"), [
    ("<html><body>502 Bad Gateway</body></html>", "not a chat completion"),
    ('{"object": "list", "data": []}', "returned no choices"),
    ('{"choices": "none"}', "not a chat completion"),
    ('{"choices": [{"index": 0, "message": {"role": "assistant"}}]}', "returned no content"),
])
async def test_answers_that_are_not_chat_completions_are_model_errors(
    chat: ChatServer, make_provider: MakeProvider, kb: KnowledgeBase, raw: str, message: str
) -> None:
    chat.script.append(Scripted(raw=raw))
    with pytest.raises(ModelError, match=message):
        await make_provider().answer("Hi", [], kb)


async def test_a_refusal_is_a_model_error(chat: ChatServer, make_provider: MakeProvider, kb: KnowledgeBase) -> None:
    chat.script.append(Scripted(None, refusal="I can't help with that."))
    with pytest.raises(ModelError, match="the model refused: I can't help with that"):
        await make_provider().answer("Hi", [], kb)


async def test_json_schema_rejected_falls_back_to_json_object_once(
    chat: ChatServer, make_provider: MakeProvider, kb: KnowledgeBase
) -> None:
    chat.reject_json_schema = True
    chat.default = decision(SHIPPING_REPLY, 0.88, "shipping-time")
    provider = make_provider()
    first = await provider.answer("How long does shipping take?", [], kb)
    assert first.reply == SHIPPING_REPLY
    assert [r.response_format_type for r in chat.received] == ["json_schema", "json_object"]
    assert chat.received[0].messages == chat.received[1].messages
    await provider.answer("And the cost?", [], kb)  # the provider remembers: straight to json_object
    assert [r.response_format_type for r in chat.received] == ["json_schema", "json_object", "json_object"]


async def test_a_400_on_json_object_too_is_a_model_error(
    chat: ChatServer, make_provider: MakeProvider, kb: KnowledgeBase
) -> None:
    chat.default = Scripted(status=400, error="context length exceeded")
    provider = make_provider()
    with pytest.raises(ModelError, match=r"HTTP 400.*context length exceeded"):
        await provider.answer("Hi", [], kb)
    assert [r.response_format_type for r in chat.received] == ["json_schema", "json_object"]
    chat.default = decision("Hello!", 0.9, "greeting")
    await provider.answer("Hi", [], kb)  # json_object never worked, so json_schema is still tried first
    assert chat.received[-1].response_format_type == "json_schema"


async def test_slow_server_times_out(chat: ChatServer, make_provider: MakeProvider, kb: KnowledgeBase) -> None:
    chat.script.append(Scripted(decision("Late", 0.9, "r").content, delay_s=1.0))
    started = time.perf_counter()
    with pytest.raises(ModelTimeout, match=r"model timed out after 0\.3 s"):
        await make_provider(timeout_s=0.3).answer("Hi", [], kb)
    assert time.perf_counter() - started < 0.9  # no retries


async def test_server_down_is_a_model_error(make_provider: MakeProvider, kb: KnowledgeBase) -> None:
    with pytest.raises(ModelError, match=r"cannot reach the model server 127\.0\.0\.1"):
        await make_provider(base_url=refused_url()).answer("Hi", [], kb)


@pytest.mark.parametrize("status", [401, 429, 500, 503])
async def test_http_errors_are_model_errors_without_the_key(
    chat: ChatServer, make_provider: MakeProvider, kb: KnowledgeBase, status: int
) -> None:
    chat.script.append(Scripted(status=status, error=f"Incorrect API key provided: {API_KEY}."))
    with pytest.raises(ModelError) as caught:
        await make_provider().answer("Hi", [], kb)
    assert f"HTTP {status}" in str(caught.value)
    assert API_KEY not in str(caught.value) and "***" in str(caught.value)
    assert len(chat.received) == 1  # max_retries=0: the processor hands over instead of waiting


def test_the_key_stays_secret_in_reprs() -> None:
    config = OpenAIConfig(base_url="http://127.0.0.1:9/v1", model=MODEL, api_key=API_KEY)
    assert API_KEY not in repr(config) and API_KEY not in str(config)
    assert API_KEY not in repr(OpenAIProvider(config, client=object()))  # type: ignore[arg-type]


@pytest.mark.parametrize("changes", [{"model": ""}, {"timeout_s": 0}, {"grounding_entries": 0}])
def test_config_is_validated(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="validation error"):
        OpenAIConfig(**{"model": MODEL, **changes})


# decide_request end to end with the model provider


async def test_decide_request_replies_through_the_model(
    chat: ChatServer, make_provider: MakeProvider, kb: KnowledgeBase, make_request: Callable[..., AiRequest]
) -> None:
    chat.script.append(decision(SHIPPING_REPLY, 0.9, "shipping-time"))
    request = make_request("How long does shipping take?", history=HISTORY)
    decided = await decide_request(request, make_provider(), kb, threshold=0.7, timeout_s=5)
    assert (decided.outcome, decided.reply, decided.confidence) == ("reply", SHIPPING_REPLY, 0.9)
    assert (decided.provider, decided.reason, decided.threshold) == ("openai", "shipping-time", 0.7)
    assert decided.latency_ms > 0


@pytest.mark.parametrize(("script", "provider_config", "agent_timeout", "expected"), [
    (Scripted("not json at all"), {}, 5.0, "model error: the model's answer is not JSON"),
    (Scripted(status=500), {}, 5.0, "model error: the model server answered HTTP 500"),
    (Scripted(decision("Late", 0.9, "r").content, delay_s=1.0), {"timeout_s": 0.3}, 5.0,
     "model timed out after 0.3 s"),
    (Scripted(decision("Late", 0.9, "r").content, delay_s=1.0), {}, 0.2, "model timed out after 0.2 s"),
    (decision("Someone will help you.", 0.1, "unknown topic"), {}, 5.0, "confidence 0.10 < 0.70: unknown topic"),
])
async def test_decide_request_hands_over_on_model_trouble(
    chat: ChatServer, make_provider: MakeProvider, kb: KnowledgeBase, make_request: Callable[..., AiRequest],
    script: Scripted, provider_config: dict[str, float], agent_timeout: float, expected: str,
) -> None:
    chat.script.append(script)
    decided = await decide_request(
        make_request("Hi"), make_provider(**provider_config), kb, threshold=0.7, timeout_s=agent_timeout)
    assert decided.outcome == "handoff" and decided.reply is None
    assert decided.reason.startswith(expected), decided.reason
    assert API_KEY not in decided.encode().decode()


async def test_decide_request_hands_over_when_the_server_is_down(
    make_provider: MakeProvider, kb: KnowledgeBase, make_request: Callable[..., AiRequest]
) -> None:
    decided = await decide_request(make_request("Hi"), make_provider(base_url=refused_url()), kb, timeout_s=5)
    assert (decided.outcome, decided.confidence, decided.provider) == ("handoff", 0.0, "openai")
    assert decided.reason.startswith("model error: cannot reach the model server")
    assert API_KEY not in decided.reason
