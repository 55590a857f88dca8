"""The console's API reference: the OpenAPI document rendered by tag, each operation with its examples."""

from __future__ import annotations

import json

import pytest

from aerostic.web import create_app
from api.console.reference import Operation, operations_by_tag
from api.console.templating import inline_code, templates
from api.reference import document
from config.settings import IngressSettings
from tests.unit.api.console._html import Page
from tests.unit.api.console.test_templates import AGENT


@pytest.fixture(scope="module")
def groups() -> list[tuple[str, list[Operation]]]:
    return operations_by_tag(document(create_app(IngressSettings(environment="test")).api))


def find(groups: list[tuple[str, list[Operation]]], method: str, path: str) -> Operation:
    return next(op for _, ops in groups for op in ops if (op.method, op.path) == (method, path))


def test_each_operation_has_its_examples_and_errors(groups: list[tuple[str, list[Operation]]]) -> None:
    reply = find(groups, "POST", "/v1/conversations/{key}/reply")
    assert reply.request_type == "application/json" and reply.request_example is not None
    assert json.loads(reply.request_example)["message"]["type"] == "text"
    accepted = next(a for a in reply.answers if a.code == "202")
    assert accepted.example is not None and json.loads(accepted.example)["status"] == "queued"
    assert {"401", "422", "429"} <= {e.code for e in reply.errors}
    assert [p.name for p in reply.parameters] == ["key"]
    recipients = find(groups, "GET", "/v1/campaigns/{campaign_id}/recipients")
    assert any(a.example and a.example.startswith("{") for a in recipients.answers)
    assert {tag for tag, _ in groups} >= {"messages", "platform"}


def test_the_page_renders_every_operation(groups: list[tuple[str, list[Operation]]]) -> None:
    html = templates.get_template("api_reference.html").render(
        {"user": AGENT, "info": {"description": "d"}, "groups": groups, "csp_nonce": "n"})
    page = Page(html)
    assert page.element("openapi-download")[1]["href"] == "/v1/openapi.json"
    articles = [attrs for tag, attrs in page.tags if tag == "article"]
    assert len(articles) == sum(len(ops) for _, ops in groups)
    assert {"data-method": "POST", "data-path": "/v1/automations"}.items() <= next(
        a for a in articles if a["data-path"] == "/v1/automations" and a["data-method"] == "POST").items()
    assert len({a["id"] for a in articles}) == len(articles)  # anchors are unique


def test_backticks_read_as_code_and_nothing_else_is_markup() -> None:
    assert str(inline_code("pass `next_cursor` back <b>now</b>")) == (
        "pass <code>next_cursor</code> back &lt;b&gt;now&lt;/b&gt;")
    assert str(inline_code(None)) == ""
