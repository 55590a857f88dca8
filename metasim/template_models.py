"""The simulator's message templates: what Meta stores for each, and how a send is checked against it.

Written from Meta's template docs, independently of Aerostic's own ``templates`` package (the simulator
imports nothing of Aerostic's), so that a mismatch between the two shows up in the tests. A template
holds Meta's ``components``; its expected send parameters are derived from them: per component key
(``header``, ``body``, ``button:<index>``) how many (``low``..``high``: a quick reply's payload is
optional), which parameter ``type`` values fit, and, for named templates, the names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

PLACEHOLDER = re.compile(r"\{\{([^{}]*)\}\}")
NAME = re.compile(r"^[a-z0-9_]{1,512}$")
MEDIA = {"IMAGE": "image", "VIDEO": "video", "DOCUMENT": "document", "LOCATION": "location"}
BODY_TYPES = frozenset({"text", "currency", "date_time"})


@dataclass(frozen=True, slots=True)
class Slot:
    """What one send component must carry."""

    low: int
    high: int
    types: frozenset[str] | None  # None: any type (a template registered by parameter counts only)
    names: tuple[str, ...] = ()


class SimTemplate(BaseModel):
    """One template in one language of one WABA, as the simulated Meta keeps it (mutable)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    waba_id: str
    name: str
    language: str
    category: Literal["MARKETING", "UTILITY", "AUTHENTICATION"] = "UTILITY"
    status: str = "APPROVED"
    quality: str = "UNKNOWN"
    parameter_format: Literal["named", "positional"] = "positional"
    components: list[dict[str, Any]] = Field(default_factory=list)
    parameters: dict[str, int] | None = None  # counts given directly (POST /_sim/templates): no type checks
    rejected_reason: str = "NONE"
    paced: bool = False
    created_at: float = 0.0

    def listed(self) -> dict[str, Any]:
        """The template as ``GET /{waba}/message_templates`` lists it."""
        return {"id": self.id, "name": self.name, "language": self.language, "status": self.status,
                "category": self.category, "parameter_format": self.parameter_format.upper(),
                "components": self.components, "quality_score": {"score": self.quality},
                "rejected_reason": self.rejected_reason}

    def slots(self) -> dict[str, Slot]:
        """The expected parameters per send component key."""
        if self.parameters is not None:
            return {key: Slot(n, n, None) for key, n in self.parameters.items()}
        found: dict[str, Slot] = {}
        for component in self.components:
            kind = str(component.get("type", "")).upper()
            if kind == "HEADER":
                fmt = str(component.get("format", "TEXT")).upper()
                if fmt in MEDIA:
                    found["header"] = Slot(1, 1, frozenset({MEDIA[fmt]}))
                else:
                    names = _distinct(str(component.get("text", "")))
                    if names:
                        found["header"] = Slot(len(names), len(names), frozenset({"text"}), tuple(names))
            elif kind == "BODY":
                names = _distinct(str(component.get("text") or ""))
                if names:
                    found["body"] = Slot(len(names), len(names), BODY_TYPES, tuple(names))
                elif self.category == "AUTHENTICATION":
                    found["body"] = Slot(1, 1, frozenset({"text"}))
            elif kind == "BUTTONS":
                for index, button in enumerate(component.get("buttons") or []):
                    slot = _button(button if isinstance(button, dict) else {})
                    if slot is not None:
                        found[f"button:{index}"] = slot
        return found


def _distinct(text: str) -> list[str]:
    names: list[str] = []
    for name in PLACEHOLDER.findall(text):
        if name not in names:
            names.append(name)
    return names


def _button(button: dict[str, Any]) -> Slot | None:
    kind = str(button.get("type", "")).upper()
    if kind == "URL" and PLACEHOLDER.search(str(button.get("url", ""))):
        return Slot(1, 1, frozenset({"text"}))
    if kind == "COPY_CODE":
        return Slot(1, 1, frozenset({"coupon_code"}))
    if kind == "OTP":
        return Slot(1, 1, frozenset({"text"}))
    if kind == "QUICK_REPLY":
        return Slot(0, 1, frozenset({"payload"}))
    if kind in ("FLOW", "CATALOG", "MPM", "SPM"):
        return Slot(0, 1, frozenset({"action"}))
    return None


def send_problem(template: SimTemplate, components: list[Any]) -> tuple[int, str] | None:
    """``(132000 | 132012, details)`` when a send's ``template.components`` do not fit ``template``."""
    sent: dict[str, list[dict[str, Any]]] = {}
    for component in components:
        key = component.key
        sent[key] = [p.model_dump(exclude_none=True) for p in component.parameters]
    slots = template.slots()
    for key in sorted(set(sent) | set(slots)):
        slot, given = slots.get(key, Slot(0, 0, frozenset())), sent.get(key, [])
        if not slot.low <= len(given) <= slot.high:
            return 132000, (f"Number of parameters in {key} ({len(given)}) does not match the expected number of "
                            f"params ({slot.high}).")
        if template.parameter_format == "named" and slot.names:
            names = sorted(str(p.get("parameter_name")) for p in given)
            if names != sorted(slot.names):
                return 132000, f"Parameter names in {key} ({', '.join(names)}) do not match the template's."
        for parameter in given:
            if slot.types is not None and parameter.get("type") not in slot.types:
                expected = "/".join(sorted(t.upper() for t in slot.types))
                return 132012, (f"{key}: Format mismatch, expected {expected}, received "
                                f"{str(parameter.get('type') or 'UNKNOWN').upper()}")
    return None


def creation_problem(body: Any) -> str | None:
    """What Meta's ``POST /{waba}/message_templates`` refuses in ``body`` (error 100), or None."""
    if not isinstance(body, dict):
        return "The request body must be a JSON object."
    if not isinstance(body.get("name"), str) or not NAME.match(body["name"]):
        return "Template name can only contain lowercase alphanumeric characters and underscores."
    if not isinstance(body.get("language"), str) or not body["language"]:
        return "The parameter language is required."
    if body.get("category") not in ("MARKETING", "UTILITY", "AUTHENTICATION"):
        return "The parameter category is required and must be MARKETING, UTILITY or AUTHENTICATION."
    components = body.get("components")
    if not isinstance(components, list) or not any(
            isinstance(c, dict) and str(c.get("type", "")).upper() == "BODY" for c in components):
        return "A template needs a BODY component."
    if body.get("parameter_format", "positional") not in ("named", "positional"):
        return "parameter_format must be named or positional."
    return None
