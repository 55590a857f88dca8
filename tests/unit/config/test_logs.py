"""config.logs: one JSON object per line with the process's role and the record's context, text on request,
and never a secret in either format."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from config import logs
from config.logs import JsonFormatter, TextFormatter, chosen_format, log_context, protect, protect_settings, redact
from config.settings import DispatcherSettings

GRAPH_TOKEN = "EAAGm0PX4ZCpsBAKZCxyzQWERTY1234567890abcdefZZ"
APP_SECRET = "f00dfacecafebabe0123456789abcdef"


@pytest.fixture(autouse=True)
def _no_protected_leftovers() -> Iterator[None]:
    saved = logs._protected
    yield
    logs._protected = saved


def _line(formatter: logging.Formatter, message: str, *args: object, exc: BaseException | None = None,
          **extra: object) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("aerostic.test.logs")
    logger.handlers, logger.propagate, logger.level = [handler], False, logging.DEBUG
    try:
        if exc is not None:
            try:
                raise exc
            except type(exc):
                logger.exception(message, *args, extra=extra)
        else:
            logger.warning(message, *args, extra=extra)
    finally:
        logger.handlers = []
    return stream.getvalue()


def test_a_json_line_has_the_fields_and_the_context() -> None:
    with log_context(tenant_id="t-1", conversation_key="123:919800000001"):
        text = _line(JsonFormatter("dispatcher"), "sent %s", "m-1", message_id="m-1", wamid="wamid.X")
    assert text.endswith("\n") and text.count("\n") == 1
    line = json.loads(text)
    assert line["level"] == "WARNING" and line["logger"] == "aerostic.test.logs" and line["role"] == "dispatcher"
    assert line["message"] == "sent m-1"
    assert (line["tenant_id"], line["conversation_key"]) == ("t-1", "123:919800000001")
    assert (line["message_id"], line["wamid"]) == ("m-1", "wamid.X")
    assert line["time"].endswith("Z") and line["time"][10] == "T"


def test_the_context_ends_with_its_block_and_nests() -> None:
    with log_context(tenant_id="t-1"):
        with log_context(conversation_key="k"):
            inner = json.loads(_line(JsonFormatter("streams"), "x"))
        outer = json.loads(_line(JsonFormatter("streams"), "x"))
    after = json.loads(_line(JsonFormatter("streams"), "x"))
    assert (inner["tenant_id"], inner["conversation_key"]) == ("t-1", "k")
    assert outer["tenant_id"] == "t-1" and "conversation_key" not in outer
    assert "tenant_id" not in after


def test_a_traceback_is_one_field_of_one_line() -> None:
    line = json.loads(_line(JsonFormatter("ai"), "failed", exc=RuntimeError("boom")))
    assert "RuntimeError: boom" in line["exception"] and line["message"] == "failed"


@pytest.mark.parametrize("message", [
    f"GET https://graph.facebook.com/v23.0/debug_token?input_token={GRAPH_TOKEN}&access_token=123|abc",
    f"calling Graph with Authorization: Bearer {GRAPH_TOKEN}",
    f"token {GRAPH_TOKEN} refused",
    f"body {{'client_secret': '{APP_SECRET}', 'code': 'x'}}",
    f'exchange failed: {{"access_token": "{GRAPH_TOKEN}", "token_type": "bearer"}}',
    f"appsecret_proof={APP_SECRET}",
])
@pytest.mark.parametrize("formatter", [JsonFormatter("dispatcher"), TextFormatter()], ids=["json", "text"])
def test_no_access_token_or_app_secret_is_ever_written(message: str, formatter: logging.Formatter) -> None:
    text = _line(formatter, "%s", message) + _line(formatter, "failed", exc=ValueError(message))
    assert GRAPH_TOKEN not in text and APP_SECRET not in text
    assert "***" in text


def test_the_processs_own_secrets_are_masked_wherever_they_appear() -> None:
    settings = DispatcherSettings(environment="test", vault_keys=SecretStr("k1:" + "A" * 44),
                                  meta_app_secret=SecretStr(APP_SECRET),
                                  database_url=SecretStr("postgresql+asyncpg://app:s3cretpassw0rd@db/aerostic"))
    protect_settings(settings)
    text = _line(JsonFormatter("dispatcher"), "secret %s, vault %s, password %s in %s", APP_SECRET,
                 "k1:" + "A" * 44, "s3cretpassw0rd", "postgresql+asyncpg://app:s3cretpassw0rd@db/aerostic")
    assert APP_SECRET not in text and "A" * 44 not in text and "s3cretpassw0rd" not in text


def test_redaction_leaves_ordinary_text_alone_and_short_values_unprotected() -> None:
    protect(["abc", ""])
    assert redact("abc: 3 partitions, tokens rotated") == "abc: 3 partitions, tokens rotated"


def test_the_format_follows_the_variable_then_the_environment() -> None:
    assert chosen_format({"AEROSTIC_LOG_FORMAT": "text", "AEROSTIC_ENVIRONMENT": "production"}) == "text"
    assert chosen_format({"AEROSTIC_LOG_FORMAT": "json"}) == "json"
    assert chosen_format({"AEROSTIC_ENVIRONMENT": "production"}) == "json"
    assert chosen_format({"AEROSTIC_ENVIRONMENT": "development"}) == "text"
    for wrong in ("xml", "JSON"):
        with pytest.raises(ValueError, match="json or text"):
            chosen_format({"AEROSTIC_LOG_FORMAT": wrong})


def test_the_dispatchers_graph_url_mask_holds_in_json() -> None:
    """dispatcher.graph masks the query of httpx's request lines (a debug_token call carries a token there)."""
    import httpx

    from dispatcher.graph import _mask_httpx_log

    _mask_httpx_log()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("dispatcher"))
    logger = logging.getLogger("httpx")
    saved = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info('HTTP Request: %s %s "%s %d %s"', "GET",
                    httpx.URL("https://graph.facebook.com/v23.0/debug_token?opaque=zz9plural-z-alpha"),
                    "HTTP/1.1", 200, "OK")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved)
    line = json.loads(stream.getvalue())
    assert "zz9plural" not in line["message"] and "debug_token?***" in line["message"]
