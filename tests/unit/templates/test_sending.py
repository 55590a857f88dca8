"""Pre-send validation and preview of template messages (templates.sending)."""

from __future__ import annotations

from typing import Any

import pytest

from templates import Template, TemplateSendError, render, send_components, validate_send, variables

ORDER = Template(name="order_update", language="en_US", category="UTILITY", components=[
    {"type": "HEADER", "format": "IMAGE"},
    {"type": "BODY", "text": "Hi {{1}}, order {{2}} ships {{3}}."},
    {"type": "FOOTER", "text": "Reply STOP to opt out"},
    {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Track", "url": "https://x.test/t/{{1}}"},
                                    {"type": "QUICK_REPLY", "text": "Stop"}]},
])
NAMED = Template(name="welcome", language="en_US", parameter_format="named", components=[
    {"type": "HEADER", "format": "TEXT", "text": "Hello {{first_name}}"},
    {"type": "BODY", "text": "Dear {{first_name}}, your code is {{code}}."},
])
PLAIN = Template(name="hello_world", language="en_US", components=[{"type": "BODY", "text": "Hello World"}])


def _text(value: str, name: str | None = None) -> dict[str, Any]:
    return {"type": "text", "text": value, **({"parameter_name": name} if name else {})}


GOOD_ORDER = [
    {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://x.test/a.jpg"}}]},
    {"type": "body", "parameters": [_text("Ann"), _text("#42"),
                                    {"type": "date_time", "date_time": {"fallback_value": "tomorrow"}}]},
    {"type": "button", "sub_type": "url", "index": "0", "parameters": [_text("42")]},
]


def _code(template: Template, components: list[dict[str, Any]] | None) -> tuple[str, int]:
    with pytest.raises(TemplateSendError) as caught:
        validate_send(template, components)
    return caught.value.code, caught.value.meta_code


def test_matching_parameters_pass() -> None:
    validate_send(ORDER, GOOD_ORDER)
    validate_send(PLAIN, None)
    validate_send(NAMED, [{"type": "header", "parameters": [_text("Ann", "first_name")]},
                          {"type": "body", "parameters": [_text("9", "code"), _text("Ann", "first_name")]}])


@pytest.mark.parametrize(("status", "meta_code"), [("PENDING", 132001), ("REJECTED", 132001), ("PAUSED", 132015),
                                                   ("DISABLED", 132016), ("SUBMITTING", 132001)])
def test_a_template_that_is_not_approved_is_refused(status: str, meta_code: int) -> None:
    assert _code(PLAIN.model_copy(update={"status": status}), None) == ("template_not_approved", meta_code)


def test_a_wrong_count_is_132000() -> None:
    short = [GOOD_ORDER[0], {"type": "body", "parameters": [_text("Ann")]}, GOOD_ORDER[2]]
    assert _code(ORDER, short) == ("template_parameter_mismatch", 132000)
    assert _code(ORDER, GOOD_ORDER[:2]) == ("template_parameter_mismatch", 132000)  # URL button value missing
    assert _code(PLAIN, [{"type": "body", "parameters": [_text("x")]}]) == ("template_parameter_mismatch", 132000)


def test_a_wrong_type_is_132012() -> None:
    wrong = [{"type": "header", "parameters": [_text("not an image")]}, *GOOD_ORDER[1:]]
    with pytest.raises(TemplateSendError) as caught:
        validate_send(ORDER, wrong)
    assert caught.value.meta_code == 132012 and "expected IMAGE, received TEXT" in caught.value.reason


def test_named_parameters_must_match_by_name() -> None:
    header = {"type": "header", "parameters": [_text("Ann", "first_name")]}
    missing = [header, {"type": "body", "parameters": [_text("Ann", "first_name"), _text("9", "coupon")]}]
    with pytest.raises(TemplateSendError) as caught:
        validate_send(NAMED, missing)
    assert caught.value.meta_code == 132000 and "missing code" in caught.value.reason
    assert "unknown coupon" in caught.value.reason
    unnamed = [header, {"type": "body", "parameters": [_text("Ann"), _text("9")]}]
    assert _code(NAMED, unnamed)[1] == 132000


def test_an_empty_value_is_refused() -> None:
    empty = [GOOD_ORDER[0], {"type": "body", "parameters": [_text(" "), _text("#42"), _text("x")]}, GOOD_ORDER[2]]
    assert _code(ORDER, empty)[0] == "template_parameter_mismatch"


def test_the_optional_quick_reply_payload_may_be_given() -> None:
    validate_send(ORDER, [*GOOD_ORDER, {"type": "button", "sub_type": "quick_reply", "index": 1,
                                        "parameters": [{"type": "payload", "payload": "STOP"}]}])


def test_render_fills_values_and_keeps_unfilled_placeholders() -> None:
    assert render(ORDER, GOOD_ORDER) == ("[image]\nHi Ann, order #42 ships tomorrow.\nReply STOP to opt out\n"
                                         "[Track] | [Stop]")
    assert render(NAMED) == "Hello {{first_name}}\nDear {{first_name}}, your code is {{code}}."


def test_send_components_builds_what_validate_send_accepts() -> None:
    values = {"header": "https://x.test/a.jpg", "body.1": "Ann", "body.2": "#42", "body.3": "today", "button.0": "42"}
    built = send_components(ORDER, values)
    validate_send(ORDER, built)
    assert render(ORDER, built).splitlines()[1] == "Hi Ann, order #42 ships today."
    named = send_components(NAMED, {"header.first_name": "Ann", "body.first_name": "Ann", "body.code": "9"})
    validate_send(NAMED, named)
    with pytest.raises(TemplateSendError):
        send_components(ORDER, {"body.1": "Ann"})


def test_variables_are_in_number_order() -> None:
    swapped = Template(name="t", language="en", components=[{"type": "BODY", "text": "{{2}} then {{1}}"}])
    assert [v.ref for v in variables(swapped)] == ["body.1", "body.2"]
    assert [v.ref for v in variables(ORDER)] == ["header", "body.1", "body.2", "body.3", "button.0", "button.1"]
