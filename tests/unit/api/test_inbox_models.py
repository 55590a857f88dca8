"""The inbox's request models and derived fields, without a database."""

from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from api.console.inbox import router as inbox_page_router
from api.inbox import handled_by
from api.inbox_models import ReplyCreate
from config.settings import IngressSettings

TEXT = {"type": "text", "text": {"body": "hi"}}
TEMPLATE = {"id": str(uuid.uuid4()), "values": {"body.1": "Ann"}}


def test_a_reply_is_a_message_or_a_template() -> None:
    assert ReplyCreate.model_validate({"message": TEXT}).template is None
    chosen = ReplyCreate.model_validate({"template": TEMPLATE})
    assert chosen.message is None and chosen.template is not None and chosen.template.values == {"body.1": "Ann"}
    for bad in ({}, {"message": TEXT, "template": TEMPLATE}, {"template": {"id": "not-a-uuid"}},
                {"template": {**TEMPLATE, "values": {"body 1": "x"}}},
                {"template": {**TEMPLATE, "values": {"body.1": ""}}},
                {"template": {**TEMPLATE, "values": {"body.1": "x" * 1025}}},
                {"template": {**TEMPLATE, "values": {f"body.{i}": "x" for i in range(51)}}},
                {"template": {**TEMPLATE, "extra": 1}}):
        with pytest.raises(ValidationError):
            ReplyCreate.model_validate(bad)


@pytest.mark.parametrize(("state", "ai_on", "expected"), [
    ("bot", True, "ai"), ("bot", False, "automation"), ("queued", True, "queue"), ("agent", True, "human"),
    ("closed", True, "nobody"), ("agent", False, "human")])
def test_who_handles_a_conversation(state: str, ai_on: bool, expected: str) -> None:
    assert handled_by(state, ai_on) == expected


def test_the_inbox_page_sends_a_stranger_to_sign_in() -> None:
    app = FastAPI()
    app.include_router(inbox_page_router)
    app.state.settings = IngressSettings(environment="test")
    app.state.engine = object()  # never reached: no session cookie, no query
    with TestClient(app, follow_redirects=False) as client:
        response = client.get("/console/inbox")
    assert response.status_code == 303 and response.headers["location"] == "/console/login"
    assert "default-src 'self'" in response.headers["content-security-policy"]
