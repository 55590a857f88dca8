"""A message template as Meta stores it, and the variables a send of it must fill.

``components`` are kept exactly as Meta's ``GET /{waba}/message_templates`` returns them (``HEADER``,
``BODY``, ``FOOTER``, ``BUTTONS`` with their ``text``, ``format``, ``buttons`` and ``example``).
``variables(template)`` lists, per send component (``header``, ``body``, ``button:<index>``), the
parameters a send must carry and the parameter types Meta accepts for each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ParameterFormat = Literal["named", "positional"]
CATEGORIES = ("MARKETING", "UTILITY", "AUTHENTICATION")
# Meta's statuses (message_template_status_update events and GET's ``status``); ``SUBMITTING`` is Aerostic's own:
# the creation request is on its way to Meta.
STATUSES = ("SUBMITTING", "PENDING", "APPROVED", "REJECTED", "PAUSED", "DISABLED", "IN_APPEAL", "FLAGGED",
            "LIMIT_EXCEEDED", "ARCHIVED", "DELETED", "PENDING_DELETION", "REINSTATED", "LOCKED", "FAILED")
# A template in one of these states may be submitted again under its name and language.
RECREATABLE = ("REJECTED", "FAILED", "DELETED")
PLACEHOLDER = re.compile(r"\{\{([^{}]*)\}\}")
POSITIONAL = re.compile(r"^[1-9][0-9]{0,2}$")
NAMED = re.compile(r"^[a-z_][a-z0-9_]{0,99}$")
MEDIA_FORMATS = {"IMAGE": "image", "VIDEO": "video", "DOCUMENT": "document", "LOCATION": "location"}
BODY_TYPES = frozenset({"text", "currency", "date_time"})


class Template(BaseModel):
    """One template of a WABA in one language (the registry's row, without bookkeeping)."""

    model_config = ConfigDict(extra="ignore")

    name: str
    language: str
    category: str = "UTILITY"
    status: str = "APPROVED"
    quality: str | None = None
    parameter_format: ParameterFormat = "positional"
    components: list[dict[str, Any]] = Field(default_factory=list)

    def component(self, kind: str) -> dict[str, Any] | None:
        """The first component of ``kind`` (``HEADER``, ``BODY``, ``FOOTER``, ``BUTTONS``)."""
        return next((c for c in self.components if str(c.get("type", "")).upper() == kind), None)


@dataclass(frozen=True, slots=True)
class Variable:
    """One parameter a send must (or, ``optional``, may) carry.

    ``key`` is the send component (``header``, ``body``, ``button:0``…), ``name`` the placeholder's
    content (``1``, ``first_name``; ``""`` for a media header or a button's single value), ``types`` the
    parameter ``type`` values Meta accepts there.
    """

    key: str
    name: str
    types: frozenset[str]
    optional: bool = False

    @property
    def ref(self) -> str:
        """How ``send_components`` names it: ``body.1``, ``body.first_name``, ``header``, ``button.0``."""
        base = self.key.replace(":", ".")
        return f"{base}.{self.name}" if self.name else base


def placeholders(text: str) -> list[str]:
    """The placeholders of ``text`` in order of appearance (``{{1}}`` → ``"1"``)."""
    return PLACEHOLDER.findall(text or "")


def _distinct(names: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for name in names:
        seen.setdefault(name, None)
    return list(seen)


def _ordered(names: list[str], parameter_format: ParameterFormat) -> list[str]:
    """Positional placeholders in number order (``{{2}} {{1}}`` is sent as 1 then 2); named in first use."""
    distinct = _distinct(names)
    if parameter_format == "positional" and all(POSITIONAL.match(n) for n in distinct):
        return sorted(distinct, key=int)
    return distinct


def variables(template: Template) -> list[Variable]:
    """Every parameter a send of ``template`` fills, in Meta's order (header, body, buttons)."""
    found: list[Variable] = []
    header = template.component("HEADER")
    if header is not None:
        fmt = str(header.get("format", "TEXT")).upper()
        if fmt in MEDIA_FORMATS:
            found.append(Variable("header", "", frozenset({MEDIA_FORMATS[fmt]})))
        else:
            found += [Variable("header", n, frozenset({"text"}))
                      for n in _ordered(placeholders(str(header.get("text", ""))), template.parameter_format)]
    body = template.component("BODY")
    if body is not None:
        text = body.get("text")
        if isinstance(text, str) and text:
            found += [Variable("body", n, BODY_TYPES) for n in _ordered(placeholders(text), template.parameter_format)]
        elif template.category.upper() == "AUTHENTICATION":  # Meta writes the body; the code is its one value
            found.append(Variable("body", "1", frozenset({"text"})))
    buttons = template.component("BUTTONS")
    for index, button in enumerate(buttons.get("buttons", []) if buttons else []):
        variable = _button_variable(index, button if isinstance(button, dict) else {})
        if variable is not None:
            found.append(variable)
    return found


def _button_variable(index: int, button: dict[str, Any]) -> Variable | None:
    key, kind = f"button:{index}", str(button.get("type", "")).upper()
    if kind == "URL":
        return Variable(key, "", frozenset({"text"})) if placeholders(str(button.get("url", ""))) else None
    if kind == "COPY_CODE":
        return Variable(key, "", frozenset({"coupon_code"}))
    if kind == "OTP":
        return Variable(key, "", frozenset({"text"}))
    if kind == "QUICK_REPLY":
        return Variable(key, "", frozenset({"payload"}), optional=True)
    if kind in ("FLOW", "CATALOG", "MPM", "SPM"):
        return Variable(key, "", frozenset({"action"}), optional=True)
    return None
