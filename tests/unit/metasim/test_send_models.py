"""metasim.send_models against Meta's own request examples and against bodies Meta refuses."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from metasim.send_models import InvalidSend, SendRequest, StatusRequest, validate_send
from tests.unit._vectors import VECTORS, load

SEND_REQUESTS = VECTORS / "send-requests"
SEND_FILES: list[Path] = sorted(SEND_REQUESTS.glob("*.json")) if SEND_REQUESTS.is_dir() else []
# Every file is a bare body for POST /{Version}/{Phone-Number-ID}/messages (none is wrapped under a key,
# see the vectors' README); nothing is excluded.
EXCLUDED: dict[str, str] = {}
STATUS_FILES = {"openapi-send-typing-indicator-and-read-receipt.json", "pywa-mark-as-read.json",
                "pywa-typing-indicator.json"}

PLACEHOLDER = re.compile(r"<[^<>]+>|\{\{[^{}]+\}\}")
PHONE = "16505551234"
MEDIA_ID = "1013859600285441"
WAMID = "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"
# Placeholders written without brackets in Meta's examples.
BARE_PLACEHOLDERS = {"language-and-locale-code": "en_US"}


def substitute(value: Any, key: str | None = None) -> Any:
    """Meta's examples with their placeholders replaced by plausible values (text placeholders are kept)."""
    if isinstance(value, dict):
        return {k: substitute(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, key) for v in value]
    if not isinstance(value, str):
        return value
    if value in BARE_PLACEHOLDERS:
        return BARE_PLACEHOLDERS[value]
    if value.startswith("http(s)://"):
        return "https://" + value.removeprefix("http(s)://")
    if not PLACEHOLDER.fullmatch(value):
        return value
    if key == "to":
        return PHONE
    if "http" in value:
        return "https://example.com/media/file"
    if key == "id" and ("OBJECT_ID" in value or "MEDIA_ID" in value):  # not button/row ids
        return MEDIA_ID
    if key == "message_id":
        return WAMID
    if key == "type":  # the multi-product header's "<HEADER_TYPE>" next to a text header
        return "text"
    return value


def body(name: str) -> dict[str, Any]:
    return substitute(load(SEND_REQUESTS / name))


def refusal(data: object) -> str:
    with pytest.raises(InvalidSend) as caught:
        validate_send(data)
    assert caught.value.message == caught.value.details == str(caught.value)
    return caught.value.details


def text_message(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": PHONE,
                            "type": "text", "text": {"body": "hello"}}
    data.update(overrides)
    return data


def interactive(inner: dict[str, Any]) -> dict[str, Any]:
    return text_message(type="interactive", interactive=inner, text=None)


def buttons(count: int, title: str = "Yes") -> dict[str, Any]:
    return interactive({"type": "button", "body": {"text": "Pick one"}, "action": {"buttons": [
        {"type": "reply", "reply": {"id": f"b{i}", "title": title}} for i in range(count)]}})


def list_message(rows: int, sections: int = 1) -> dict[str, Any]:
    per = [rows // sections + (1 if i < rows % sections else 0) for i in range(sections)]
    return interactive({"type": "list", "body": {"text": "Choose"}, "action": {"button": "Menu", "sections": [
        {"title": f"S{s}", "rows": [{"id": f"r{s}.{i}", "title": "Row", "description": "d"} for i in range(n)]}
        for s, n in enumerate(per)]}})


def template(**template: Any) -> dict[str, Any]:
    return text_message(type="template", template=template, text=None)


# --- Meta's examples are accepted -------------------------------------------------------------------

def test_vectors_present(vectors: Path) -> None:
    assert len(SEND_FILES) == 53, "expected the 53 send-request vectors"


@pytest.mark.parametrize("path", SEND_FILES, ids=[p.name for p in SEND_FILES])
def test_meta_example_accepted(path: Path) -> None:
    if path.name in EXCLUDED:
        pytest.skip(EXCLUDED[path.name])
    result = validate_send(body(path.name))
    expected = StatusRequest if path.name in STATUS_FILES else SendRequest
    assert isinstance(result, expected)


def test_placeholders_are_replaced_where_they_matter() -> None:
    data = body("openapi-send-reply-to-image-message-by-url.json")
    assert data["to"] == PHONE
    assert data["image"]["link"].startswith("https://")
    assert data["context"]["message_id"] == WAMID


def test_raw_placeholder_recipient_is_refused() -> None:
    raw = load(SEND_REQUESTS / "openapi-send-text-message.json")
    assert "to" in refusal(raw)


def test_type_inferred_when_meta_omits_it() -> None:
    reply = validate_send(body("openapi-send-reply-to-list-message.json"))
    assert isinstance(reply, SendRequest)
    assert reply.type == "interactive" and reply.reply_to == WAMID
    preview = validate_send(body("openapi-send-text-message-with-preview-url.json"))
    assert isinstance(preview, SendRequest)
    assert preview.type == "text" and preview.text is not None and preview.text.preview_url


def test_pywa_text_with_context_and_tracker() -> None:
    sent = validate_send(body("pywa-send-text-with-context-and-tracker.json"))
    assert isinstance(sent, SendRequest)
    assert (sent.to, sent.reply_to, sent.biz_opaque_callback_data) == ("123", "wamid.1", "tracker")
    assert sent.is_free_form and not sent.is_template and sent.template is None
    assert sent.template_parameter_counts() == {}


@pytest.mark.parametrize(("name", "typing"), [
    ("pywa-mark-as-read.json", False),
    ("pywa-typing-indicator.json", True),
    ("openapi-send-typing-indicator-and-read-receipt.json", True),
])
def test_status_requests(name: str, typing: bool) -> None:
    status = validate_send(body(name))
    assert isinstance(status, StatusRequest)
    assert status.message_id.startswith("wamid.") and status.typing_indicator is typing


# --- template parameter counts ----------------------------------------------------------------------

EXPECTED_COUNTS = {
    "openapi-send-test-message.json": {},
    "openapi-send-message-template-text.json": {"body": 3},
    "openapi-send-message-template-media.json": {"header": 1, "body": 3},
    "openapi-send-message-template-interactive.json": {"header": 1, "body": 3, "button:0": 1, "button:1": 1},
    "openapi-send-catalog-template-message.json": {"body": 3, "button:0": 1},
    "openapi-send-flow-template-message.json": {"button:0": 1},
    "openapi-send-sample-issue-resolution-template.json": {"body": 1, "button:0": 1, "button:1": 1},
    "openapi-send-sample-shipping-confirmation-template.json": {"body": 3},
    "openapi-send-sample-text-message.json": {"body": 3},
}


@pytest.mark.parametrize(("name", "counts"), EXPECTED_COUNTS.items(), ids=list(EXPECTED_COUNTS))
def test_template_parameter_counts(name: str, counts: dict[str, int]) -> None:
    sent = validate_send(body(name))
    assert isinstance(sent, SendRequest) and sent.is_template and not sent.is_free_form
    assert sent.template is not None and sent.template.name
    assert sent.template_parameter_counts() == counts


def test_every_template_vector_has_expected_counts() -> None:
    templates = {p.name for p in SEND_FILES if load(p).get("type") == "template"}
    assert templates == set(EXPECTED_COUNTS)


def test_template_details() -> None:
    sent = validate_send(body("openapi-send-sample-issue-resolution-template.json"))
    assert isinstance(sent, SendRequest) and sent.template is not None
    assert (sent.template.name, sent.template.language_code) == ("sample_issue_resolution", "en_US")
    button = sent.template.components[1]
    assert (button.sub_type, button.index, button.parameters[0].text) == ("quick_reply", 0, "true")


def test_named_parameters_and_carousel_counts() -> None:
    sent = validate_send(template(name="order_update", language={"code": "en_US"}, components=[
        {"type": "body", "parameters": [
            {"type": "text", "parameter_name": "customer", "text": "Mark"},
            {"type": "text", "parameter_name": "order_id", "text": "9128312"}]},
        {"type": "carousel", "cards": [
            {"card_index": 0, "components": [
                {"type": "header", "parameters": [{"type": "image", "image": {"id": MEDIA_ID}}]},
                {"type": "button", "sub_type": "quick_reply", "index": "0",
                 "parameters": [{"type": "payload", "payload": "more"}]}]}]},
    ]))
    assert isinstance(sent, SendRequest)
    assert sent.template_parameter_counts() == {"body": 2, "carousel": 0, "card:0:header": 1, "card:0:button:0": 1}


# --- refusals ---------------------------------------------------------------------------------------

def test_body_not_an_object() -> None:
    assert "JSON object" in refusal(["messaging_product", "whatsapp"])
    assert "JSON object" in refusal("hello")


def test_missing_to() -> None:
    data = text_message()
    del data["to"]
    assert refusal(data) == "The parameter to is required."


def test_unknown_type() -> None:
    details = refusal(text_message(type="hologram"))
    assert "Param type must be one of" in details and "'hologram'" in details


def test_text_without_body() -> None:
    assert refusal(text_message(text={"preview_url": True})) == "The parameter text['body'] is required."


def test_text_body_too_long() -> None:
    validate_send(text_message(text={"body": "x" * 4096}))
    assert refusal(text_message(text={"body": "x" * 4097})) == \
        "Param text['body'] must be at most 4096 characters long."


def test_text_body_wrong_type() -> None:
    assert refusal(text_message(text={"body": 42})) == "Param text['body'] must be a string."


def test_type_without_its_payload() -> None:
    assert refusal(text_message(type="image")) == "The parameter image is required."


def test_template_without_name() -> None:
    assert refusal(template(language={"code": "en_US"})) == "The parameter template['name'] is required."


def test_template_without_language() -> None:
    assert refusal(template(name="hello_world")) == "The parameter template['language'] is required."


def test_template_button_needs_index() -> None:
    details = refusal(template(name="t", language={"code": "en"}, components=[
        {"type": "button", "sub_type": "quick_reply", "parameters": [{"type": "payload", "payload": "p"}]}]))
    assert details == "The parameter template['components'][0]['index'] is required."


def test_template_parameter_without_value() -> None:
    details = refusal(template(name="t", language={"code": "en"}, components=[
        {"type": "body", "parameters": [{"type": "currency"}]}]))
    assert details == "The parameter template['components'][0]['parameters'][0]['currency'] is required."


def test_four_reply_buttons() -> None:
    validate_send(buttons(3))
    assert refusal(buttons(4)) == "Param interactive['action']['buttons'] must have at most 3 elements."


def test_button_title_of_21_chars() -> None:
    validate_send(buttons(1, title="x" * 20))
    assert refusal(buttons(1, title="x" * 21)) == \
        "Param interactive['action']['buttons'][0]['reply']['title'] must be at most 20 characters long."


def test_eleven_list_rows() -> None:
    validate_send(list_message(10, sections=3))
    details = refusal(list_message(11, sections=2))
    assert details.startswith("Param interactive['action']['sections'] must contain between 1 and 10 rows")


def test_list_row_limits() -> None:
    data = list_message(1)
    data["interactive"]["action"]["sections"][0]["rows"][0]["description"] = "d" * 73
    assert "['description'] must be at most 72 characters long" in refusal(data)
    data = list_message(1)
    data["interactive"]["action"]["sections"][0]["rows"][0]["title"] = "t" * 25
    assert "['title'] must be at most 24 characters long" in refusal(data)


def test_button_body_limit() -> None:
    data = buttons(1)
    data["interactive"]["body"]["text"] = "b" * 1025
    assert refusal(data) == "Param interactive['body']['text'] must be at most 1024 characters long."


def test_messaging_product_not_whatsapp() -> None:
    details = refusal(text_message(messaging_product="sms"))
    assert details.startswith("Param messaging_product must be one of 'whatsapp'")


def test_media_without_id_or_link() -> None:
    data = text_message(type="document", document={"caption": "invoice", "filename": "a.pdf"}, text=None)
    assert refusal(data) == "Param document must contain exactly one of id or link."


def test_media_link_must_be_http() -> None:
    data = text_message(type="image", image={"link": "file:///etc/passwd"}, text=None)
    assert refusal(data) == "Param image['link'] is not a valid http(s) URL."


def test_reaction_without_message_id() -> None:
    data = text_message(type="reaction", reaction={"emoji": "\N{GRINNING FACE}"}, text=None)
    assert refusal(data) == "The parameter reaction['message_id'] is required."


def test_empty_emoji_removes_reaction() -> None:
    sent = validate_send(text_message(type="reaction", reaction={"message_id": WAMID, "emoji": ""}, text=None))
    assert isinstance(sent, SendRequest) and sent.reaction is not None and sent.reaction.emoji == ""


def test_biz_opaque_callback_data_limit() -> None:
    validate_send(text_message(biz_opaque_callback_data="x" * 512))
    assert refusal(text_message(biz_opaque_callback_data="x" * 513)) == \
        "Param biz_opaque_callback_data must be at most 512 characters long."


def test_recipient_must_be_a_phone_number() -> None:
    assert refusal(text_message(to="alice")).startswith("Param to must be a phone number")
    assert refusal(text_message(to=16505551234)) == "Param to must be a string."
    sent = validate_send(text_message(to="+1 650-555-1234"))
    assert isinstance(sent, SendRequest) and sent.wa_id == PHONE
    group = validate_send(text_message(to="Y2FwaV9ncm91cDoxNzA1NTU1MDEzOToxMjAzNjM0MDQ2OTQyMzM4MjAZD",
                                       recipient_type="group"))
    assert isinstance(group, SendRequest) and group.recipient_type == "group"


def test_unknown_fields_are_tolerated() -> None:
    data = text_message(recipient_identity_key_hash="hash", extra={"nested": True})
    data["text"] = {"body": "hi", "unexpected": 1}
    assert isinstance(validate_send(data), SendRequest)


def test_status_request_refusals() -> None:
    read = {"messaging_product": "whatsapp", "status": "read", "message_id": WAMID}
    assert refusal({**read, "status": "delivered"}).startswith("Param status must be one of 'read'")
    assert refusal({k: v for k, v in read.items() if k != "message_id"}) == "The parameter message_id is required."
    assert refusal({**read, "typing_indicator": {"type": "audio"}}) == \
        "Param typing_indicator['type'] must be 'text' - got 'audio'."


def test_validation_does_not_mutate_input() -> None:
    data = body("openapi-send-reply-to-list-message.json")
    before = copy.deepcopy(data)
    validate_send(data)
    assert data == before
