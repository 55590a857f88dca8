"""Local validation of new templates (templates.creation)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from templates import TemplateCreate, check_create


def _create(**changes: Any) -> TemplateCreate:
    body: dict[str, Any] = {
        "name": "order_confirmation", "language": "en_US", "category": "UTILITY",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}", "example": {"header_text": ["#42"]}},
            {"type": "BODY", "text": "Thanks {{1}}, order {{2}} is confirmed.",
             "example": {"body_text": [["Mark", "860198"]]}},
            {"type": "FOOTER", "text": "Aerostic shop"},
            {"type": "BUTTONS", "buttons": [
                {"type": "QUICK_REPLY", "text": "Stop"},
                {"type": "URL", "text": "Track", "url": "https://shop.test/o/{{1}}",
                 "example": ["https://shop.test/o/860198"]},
                {"type": "PHONE_NUMBER", "text": "Call", "phone_number": "16467043595"}]},
        ]}
    body.update(changes)
    return TemplateCreate.model_validate(body)


def _where(request: TemplateCreate) -> list[tuple[str | int, ...]]:
    return [p.loc for p in check_create(request)]


def test_meta_example_passes() -> None:
    assert check_create(_create()) == []


@pytest.mark.parametrize("name", ["Order", "order-confirmation", "", "a" * 513, "héllo"])
def test_names_are_lowercase_letters_digits_and_underscores(name: str) -> None:
    with pytest.raises(ValidationError):
        _create(name=name)


def test_missing_body_and_duplicates() -> None:
    request = _create(components=[{"type": "FOOTER", "text": "x"}, {"type": "FOOTER", "text": "y"}])
    assert _where(request) == [("components", 1, "type"), ("components",)]


def test_lengths() -> None:
    request = _create(components=[{"type": "HEADER", "format": "TEXT", "text": "h" * 61},
                                  {"type": "BODY", "text": "b" * 1025},
                                  {"type": "FOOTER", "text": "f" * 61},
                                  {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "q" * 26}]}])
    assert _where(request) == [("components", 0, "text"), ("components", 1, "text"), ("components", 2, "text"),
                               ("components", 3, "buttons", 0, "text")]


def test_every_variable_needs_an_example() -> None:
    request = _create(components=[{"type": "BODY", "text": "Hi {{1}} and {{2}}", "example": {"body_text": [["a"]]}}])
    assert _where(request) == [("components", 0, "example", "body_text")]
    request = _create(components=[{"type": "BODY", "text": "Hi {{1}}"}])
    assert _where(request) == [("components", 0, "example", "body_text")]


def test_positional_variables_are_numbered_from_one_without_gaps() -> None:
    request = _create(components=[{"type": "BODY", "text": "Hi {{1}} {{3}}",
                                   "example": {"body_text": [["a", "b"]]}}])
    assert [p.msg for p in check_create(request)] == [
        "positional variables must be numbered from {{1}} without gaps"]


def test_named_and_positional_do_not_mix() -> None:
    positional = _create(components=[{"type": "BODY", "text": "Hi {{first_name}}"}])
    assert "set parameter_format to named" in check_create(positional)[0].msg
    named = _create(parameter_format="named", components=[{"type": "BODY", "text": "Hi {{1}}"}])
    assert "named variables" in check_create(named)[0].msg


def test_named_examples_by_name() -> None:
    good = _create(parameter_format="named", components=[{
        "type": "BODY", "text": "Hi {{first_name}}, {{order_id}}",
        "example": {"body_text_named_params": [{"param_name": "first_name", "example": "Pablo"},
                                               {"param_name": "order_id", "example": "42"}]}}])
    assert check_create(good) == []
    bad = _create(parameter_format="named", components=[{
        "type": "BODY", "text": "Hi {{first_name}}",
        "example": {"body_text_named_params": [{"param_name": "last_name", "example": "P"}]}}])
    assert [p.msg for p in check_create(bad)] == [
        "no example for first_name", "examples for variables the text does not use: last_name"]


def test_footer_takes_no_variables_and_url_only_one_at_its_end() -> None:
    request = _create(components=[
        {"type": "BODY", "text": "Hello"}, {"type": "FOOTER", "text": "Bye {{1}}"},
        {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Go", "url": "https://x.test/{{1}}/a",
                                         "example": ["https://x.test/1/a"]}]}])
    assert _where(request) == [("components", 1, "text"), ("components", 2, "buttons", 0, "url")]


def test_media_header_needs_a_handle() -> None:
    request = _create(components=[{"type": "HEADER", "format": "IMAGE"}, {"type": "BODY", "text": "Hi"}])
    assert _where(request) == [("components", 0, "example", "header_handle")]


def test_too_many_buttons_and_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="buttons"):
        _create(components=[{"type": "BODY", "text": "Hi"}, {"type": "BUTTONS", "buttons": [
            {"type": "QUICK_REPLY", "text": str(i)} for i in range(11)]}])
    with pytest.raises(ValidationError, match="colour"):
        _create(components=[{"type": "BODY", "text": "Hi", "colour": "red"}])
    assert _where(_create(components=[{"type": "BODY", "text": "Hi"}, {"type": "BUTTONS", "buttons": []}])) == [
        ("components", 1, "buttons")]


def test_meta_body_leaves_out_aerostic_fields() -> None:
    body = _create(waba_id="123").meta_body()
    assert "waba_id" not in body and body["name"] == "order_confirmation" and body["parameter_format"] == "positional"
