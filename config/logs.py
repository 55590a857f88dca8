"""How every Aerostic process logs: one JSON object per line, or text for a person at a terminal.

``configure(role)`` is called once by each process's entry point (``aerostic/cli.py``). The format comes from
``AEROSTIC_LOG_FORMAT`` (``json`` or ``text``); unset, it is JSON in production and text in development and
test. A JSON line holds ``time`` (UTC, ISO 8601, milliseconds), ``level``, ``logger``, ``message``, ``role``
(the process: ingress, streams, dispatcher…), whatever is known of the record being handled (``tenant_id``,
``conversation_key``, ``message_id``, ``wamid``, ``group``: from ``log_context`` or a call's ``extra=``) and
``exception`` with the traceback when there is one.

No secret is ever written, in either format: the values of the process's secret settings (``protect``) and
anything shaped like a credential (Graph access tokens, ``access_token=``/``client_secret=``/
``appsecret_proof=`` parameters and JSON fields, ``Authorization``/``Bearer`` values) are replaced by ``***``
in the message and the traceback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar, Token
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson
from pydantic import SecretStr

LogFormat = Literal["json", "text"]
FORMAT_ENV = "AEROSTIC_LOG_FORMAT"
CONTEXT_FIELDS = ("tenant_id", "conversation_key", "message_id", "wamid", "group")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MASK = "***"
MIN_PROTECTED_CHARS = 6  # shorter values would mask ordinary words

# What is being handled right now, in this task or thread; set with ``log_context``/``bind``. A plain dict
# (never mutated once set), so binding costs one dict and one ContextVar.set.
_context: ContextVar[dict[str, str] | None] = ContextVar("aerostic_log_context", default=None)
_protected: tuple[str, ...] = ()

_CREDENTIALS = re.compile(
    r"(?P<key>(?:access_token|input_token|client_secret|app_secret|appsecret_proof|fb_exchange_token|password|"
    r"api_key|token)[\"']?\s*[=:]\s*[\"']?)(?P<value>[^\s\"'&,;}]+)"
    r"|(?P<scheme>\b(?:Bearer|Basic)\s+)(?P<credential>[A-Za-z0-9._~+/=-]{8,})"
    r"|(?P<graph>\bEAA[A-Za-z0-9]{16,})",
    re.IGNORECASE,
)


def _masked(match: re.Match[str]) -> str:
    if match.group("key") is not None:
        return match.group("key") + MASK
    if match.group("scheme") is not None:
        return match.group("scheme") + MASK
    return MASK


def redact(text: str) -> str:
    """``text`` without the protected values and without anything shaped like a credential."""
    for secret in _protected:
        if secret in text:
            text = text.replace(secret, MASK)
    return _CREDENTIALS.sub(_masked, text)


def protect(values: Iterable[str]) -> None:
    """Mask these exact values (the process's secret settings) in every log line from now on."""
    global _protected
    found = {v for v in (value.strip() for value in values) if len(v) >= MIN_PROTECTED_CHARS}
    _protected = tuple(sorted(set(_protected) | found, key=len, reverse=True))  # longest first: no partial mask


def bind(**fields: str | None) -> Token[dict[str, str] | None]:
    """Add ``fields`` (those not None) to the log context of the current task; ``unbind`` the token after."""
    current = _context.get()
    return _context.set({**current, **{k: v for k, v in fields.items() if v is not None}} if current else
                        {k: v for k, v in fields.items() if v is not None})


def unbind(token: Token[dict[str, str] | None]) -> None:
    _context.reset(token)


@contextlib.contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Within the block, every log line of this task carries ``fields`` (e.g. ``tenant_id=…``)."""
    token = bind(**fields)
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict[str, str]:
    return dict(_context.get() or {})


class JsonFormatter(logging.Formatter):
    """One JSON object per record, redacted; ``role`` names the process."""

    def __init__(self, role: str) -> None:
        super().__init__()
        self.role = role

    def format(self, record: logging.LogRecord) -> str:
        created = record.created
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created % 1 * 1000):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "role": self.role,
        }
        context = _context.get()
        if context:
            line.update(context)
        attributes = record.__dict__
        for name in CONTEXT_FIELDS:
            value = attributes.get(name)
            if value is not None:
                line[name] = value if isinstance(value, str | int | float) else str(value)
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            line["stack"] = redact(self.formatStack(record.stack_info))
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """The human-readable line (``aerostic dev`` on a terminal), redacted the same way."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def chosen_format(environ: dict[str, str] | None = None) -> LogFormat:
    """``AEROSTIC_LOG_FORMAT``, or JSON in production and text elsewhere; ``ValueError`` for anything else."""
    env = os.environ if environ is None else environ
    value = env.get(FORMAT_ENV, "").strip()
    if not value:
        return "json" if env.get("AEROSTIC_ENVIRONMENT", "").strip().lower() == "production" else "text"
    if value not in ("json", "text"):  # as the settings' field accepts it
        raise ValueError(f"{FORMAT_ENV} is {value[:20]!r}: it must be json or text")
    return "json" if value == "json" else "text"


def configure(role: str, *, verbose: bool = False, log_format: LogFormat | None = None) -> None:
    """Send every log record of this process to stderr in the chosen format (replacing earlier handlers)."""
    handler = logging.StreamHandler(sys.stderr)
    fmt = log_format or chosen_format()
    handler.setFormatter(JsonFormatter(role) if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("httpx").setLevel(logging.DEBUG if verbose else logging.WARNING)  # one line per call


def protect_settings(settings: Any) -> None:
    """``protect`` every secret of a settings object: its ``SecretStr`` fields (and lists of them), and the
    password inside a secret URL (``DATABASE_URL``, ``REDIS_URL``)."""
    values: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name, None)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, SecretStr):
                text = item.get_secret_value()
                values.append(text)
                with contextlib.suppress(ValueError):
                    if "://" in text and (password := urlsplit(text).password):
                        values.append(password)
    protect(values)
