"""api.message_models: what ``POST /v1/messages`` accepts and refuses, and the routes of the API."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from aerostic.web import WebApp
from api.auth import require_tenant
from api.message_models import MESSAGE_TYPES, MessageContent, MessageCreate
from config.settings import IngressSettings
from schemas import messages
from tenants.api_keys import ApiKeyPrincipal, generate_key
from tests.unit._vectors import VECTORS

SEND_REQUESTS = sorted((VECTORS / "send-requests").glob("*.json")) if VECTORS.is_dir() else []
# Meta's read receipts and typing indicators share the endpoint but are not messages.
NOT_MESSAGES = {"pywa-mark-as-read.json", "pywa-typing-indicator.json",
                "openapi-send-typing-indicator-and-read-receipt.json"}
TO = "+16505551234"


def make(type_: str, obj: Any, **extra: Any) -> MessageCreate:
    return MessageCreate.model_validate_json(json.dumps({"to": TO, "type": type_, type_: obj, **extra}))


def buttons(count: int) -> dict[str, Any]:
    return {"type": "button", "body": {"text": "Pick one"}, "action": {"buttons": [
        {"type": "reply", "reply": {"id": f"b{i}", "title": f"Option {i}"}} for i in range(count)]}}


def list_message(rows_per_section: list[int]) -> dict[str, Any]:
    sections = [{"title": f"S{s}", "rows": [{"id": f"r{s}.{r}", "title": f"Row {r}"} for r in range(n)]}
                for s, n in enumerate(rows_per_section)]
    return {"type": "list", "body": {"text": "Menu"}, "action": {"button": "See menu", "sections": sections}}


def errors_of(exc: pytest.ExceptionInfo[ValidationError]) -> str:
    return " | ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.value.errors())


# --- accepted ---

def test_text_normalises_to_and_builds_the_graph_message() -> None:
    created = make("text", {"body": "Hello", "preview_url": True}, context={"message_id": "wamid.X"},
                   idempotency_key="order-42", **{"from": "106540352242922"})
    assert created.to == "16505551234"
    assert created.from_ == "106540352242922"
    assert created.idempotency_key == "order-42"
    assert created.graph_message() == {"type": "text", "text": {"body": "Hello", "preview_url": True},
                                       "context": {"message_id": "wamid.X"}}


def test_the_message_objects_are_the_shared_ones() -> None:
    """One model of a message object, in ``schemas``: the send API, inbox replies and automations use it."""
    assert MessageContent is messages.MessageContent and MESSAGE_TYPES == messages.MESSAGE_TYPES
    assert issubclass(MessageCreate, messages.MessageContent)
    assert make("text", {"body": "Hi"}, messaging_product="whatsapp").graph_message().keys().isdisjoint(
        messages.ROUTING_FIELDS)


def test_from_is_optional() -> None:
    assert make("text", {"body": "x" * 4096}).from_ is None


def test_template_keeps_its_components_as_given() -> None:
    template = {"name": "order_update", "language": {"code": "en_US"}, "components": [
        {"type": "body", "parameters": [{"type": "text", "text": "42"}]},
        {"type": "button", "sub_type": "quick_reply", "index": "0",
         "parameters": [{"type": "payload", "payload": "ok"}]}]}
    assert make("template", template).graph_message()["template"] == template


@pytest.mark.parametrize("interactive", [
    buttons(3),
    list_message([6, 4]),
    {"type": "cta_url", "body": {"text": "See it"},
     "action": {"name": "cta_url", "parameters": {"display_text": "Open", "url": "https://example.com/x"}}},
    {"type": "flow", "body": {"text": "Book"}, "action": {"name": "flow", "parameters": {"flow_id": "1"}}},
], ids=["buttons", "list", "cta_url", "flow"])
def test_interactive_messages(interactive: dict[str, Any]) -> None:
    assert make("interactive", interactive).graph_message()["interactive"] == interactive


@pytest.mark.parametrize("image", [{"id": "1234", "caption": "Receipt"}, {"link": "https://example.com/a.png"}])
def test_image_by_id_or_link(image: dict[str, Any]) -> None:
    assert make("image", image).graph_message() == {"type": "image", "image": image}


def test_graph_fields_are_accepted_and_not_forwarded() -> None:
    created = make("reaction", {"message_id": "wamid.X", "emoji": ""}, messaging_product="whatsapp",
                   recipient_type="individual")
    assert created.graph_message() == {"type": "reaction", "reaction": {"message_id": "wamid.X", "emoji": ""}}


def _fill_placeholders(body: dict[str, Any]) -> dict[str, Any]:
    """Meta's examples hold placeholders where real values go; put plausible ones there."""
    raw = json.dumps(body)
    raw = re.sub(r"<?http\(s\)://([^\">]*)>?", r"https://example.com/\1", raw)
    raw = raw.replace('"<HEADER_TYPE>"', '"text"').replace('"language-and-locale-code"', '"en_US"')
    filled: dict[str, Any] = json.loads(raw)
    filled["to"] = TO
    # Aerostic sets biz_opaque_callback_data itself (it carries the idempotency key downstream).
    filled.pop("biz_opaque_callback_data", None)
    filled.pop("recipient_identity_key_hash", None)
    return filled


def test_meta_send_request_vectors_are_present(vectors: Path) -> None:
    assert len(SEND_REQUESTS) == 53


@pytest.mark.parametrize("path", [p for p in SEND_REQUESTS if p.name not in NOT_MESSAGES], ids=lambda p: p.name)
def test_meta_send_request_vectors(path: Path) -> None:
    """Every message body in Meta's examples is accepted and forwarded unchanged."""
    body = _fill_placeholders(json.loads(path.read_bytes()))
    # Graph defaults a missing type to text (or infers it); Aerostic's API asks for it explicitly.
    body.setdefault("type", next(t for t in MESSAGE_TYPES if t in body))
    created = MessageCreate.model_validate(body)
    message = created.graph_message()
    assert message[body["type"]] == body[body["type"]]
    assert message.get("context") == body.get("context")


# --- refused ---

@pytest.mark.parametrize(("body", "expected"), [
    ({"to": TO, "type": "interactive", "interactive": buttons(4)}, "at most 3"),
    ({"to": TO, "type": "interactive", "interactive": list_message([6, 5])}, "at most 10 rows"),
    ({"to": TO, "type": "interactive", "interactive": list_message([11])}, "at most 10"),
    ({"to": TO, "type": "carrier_pigeon", "text": {"body": "hi"}}, "Input should be 'text'"),
    ({"to": TO, "type": "text"}, "no 'text' object"),
    ({"to": TO, "type": "template", "text": {"body": "hi"}}, "no 'template' object"),
    ({"to": TO, "type": "text", "text": {"body": "hi"}, "image": {"id": "1"}}, "remove the 'image'"),
    ({"to": TO, "type": "text", "text": {"body": "x" * 4097}}, "at most 4096"),
    ({"to": TO, "type": "text", "text": {"body": "   "}}, "blank"),
    ({"to": TO, "type": "text", "text": {"body": "hi", "preview_url": "yes"}}, "valid boolean"),
    ({"to": TO, "type": "text", "text": {"body": "hi"}, "sender": "x"}, "Extra inputs"),
    ({"to": TO, "type": "image", "image": {"id": "1", "link": "https://example.com/a.png"}}, "exactly one"),
    ({"to": TO, "type": "image", "image": {"link": "ftp://example.com/a.png"}}, "pattern"),
    ({"to": TO, "type": "template", "template": {"name": "hello_world"}}, "template.language"),
    ({"to": TO, "type": "location", "location": {"latitude": 91, "longitude": 0}}, "latitude"),
    ({"to": TO, "type": "text", "text": {"body": "hi"}, "idempotency_key": "k" * 201}, "idempotency_key"),
    ({"to": TO, "type": "text", "text": {"body": "hi"}, "from": "+1555"}, "from"),
], ids=["4-buttons", "11-rows-in-all", "11-rows", "unknown-type", "missing-object", "object-of-other-type",
        "two-objects", "text-too-long", "blank-text", "string-bool", "unknown-field", "id-and-link", "ftp-link",
        "no-language", "latitude", "long-idempotency-key", "bad-from"])
def test_refused(body: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationError) as exc:
        MessageCreate.model_validate_json(json.dumps(body))
    assert expected in errors_of(exc)


def test_duplicate_button_ids_are_refused() -> None:
    interactive = buttons(2)
    interactive["action"]["buttons"][1]["reply"]["id"] = "b0"
    with pytest.raises(ValidationError, match="unique"):
        make("interactive", interactive)


def test_button_title_over_20_characters_is_refused() -> None:
    interactive = buttons(1)
    interactive["action"]["buttons"][0]["reply"]["title"] = "x" * 21
    with pytest.raises(ValidationError, match="at most 20"):
        make("interactive", interactive)


@pytest.mark.parametrize("to", ["", "abc", "+", "+1 650 555 1234", "1-650-555-1234", "0650555123", "12345",
                                "1234567890123456", "١٦٥٠٥٥٥١٢٣٤", 16505551234])
def test_bad_to_is_refused(to: Any) -> None:
    with pytest.raises(ValidationError) as exc:
        MessageCreate.model_validate_json(json.dumps({"to": to, "type": "text", "text": {"body": "hi"}}))
    assert errors_of(exc).startswith("to:")


# --- the routes ---

@pytest.fixture
def ingress() -> WebApp:
    """The app without its lifespan: no client is opened, so a request that reached one would fail."""
    app = WebApp(IngressSettings(environment="test"))
    app.api.state.engine = app.api.state.redis = app.api.state.producer = app.api.state.settings = None
    app.api.state.rate_limiter = None
    return app


def test_routes_exist(ingress: WebApp) -> None:
    schema = ingress.api.openapi()
    routes = {(path, method) for path, item in schema["paths"].items() for method in item}
    assert {("/v1/messages", "post"), ("/v1/messages/{message_id}", "get"),
            ("/v1/conversations/{key}/messages", "get"), ("/healthz", "get")} <= routes
    public = {("/healthz", "get"), ("/v1/auth/login", "post")}
    for path, method in routes - public:
        expected = [{"PlatformKey": []}] if path.startswith("/admin/") else [{"ApiKey": []}, {"Session": []}]
        assert schema["paths"][path][method]["security"] == expected, path
    for path, method in public:
        assert "security" not in schema["paths"][path][method], path
    assert schema["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http", "scheme": "bearer", "description": "An Aerostic API key `aer_…` or a session token `aes_…`"}


async def _post(ingress: WebApp, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=ingress)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        return await client.post("/v1/messages", json=body, headers=headers)


@pytest.mark.parametrize(("headers", "challenge"), [
    ({}, "Bearer"),
    ({"Authorization": "Basic dXNlcjpwYXNz"}, "Bearer"),
    ({"Authorization": "Bearer not-a-key-at-all"}, 'Bearer error="invalid_token"'),
])
async def test_unauthenticated_requests_get_401(ingress: WebApp, headers: dict[str, str],
                                                challenge: str) -> None:
    response = await _post(ingress, {"to": TO, "type": "text", "text": {"body": "hi"}}, headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == challenge
    assert set(response.json()) == {"detail"}
    assert "not-a-key" not in response.text and "dXNlcjpwYXNz" not in response.text


async def test_invalid_body_gets_422_before_anything_is_sent(ingress: WebApp) -> None:
    principal = ApiKeyPrincipal(key_id="k", tenant_id="t", name="test", prefix=generate_key()[0])
    ingress.api.dependency_overrides[require_tenant] = lambda: principal
    response = await _post(ingress, {"to": TO, "type": "interactive", "interactive": buttons(4)},
                           {"Authorization": "Bearer whatever"})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"][:3] == ["body", "interactive", "button"] and "at most 3" in error["msg"]
