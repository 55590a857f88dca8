"""Pre-send validation and preview of a template message (pure).

``validate_send(template, components)`` checks a send's ``template.components`` (Meta's send shape:
``[{"type": "body", "parameters": [{"type": "text", "text": "Ann"}]}, …]``) against the registry's
``Template`` and raises ``TemplateSendError`` with the error Meta would have answered:

- not approved: ``template_not_approved`` (Meta: 132015 paused, 132016 disabled, 132001 otherwise);
- a component's parameter count, or a named template's parameter names: ``template_parameter_mismatch`` (132000);
- a parameter of the wrong type (say text where the header is an image): ``template_parameter_type`` (132012).

``render(template, components)`` returns the text a recipient would read; ``send_components(template,
values)`` builds the send components from plain strings keyed by ``Variable.ref``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from templates.model import Template, Variable, placeholders, variables

STATUS_CODES = {"PAUSED": 132015, "DISABLED": 132016}
MEDIA_TYPES = ("image", "video", "document", "location")
MAX_COMPONENTS = 20
MAX_PARAMETERS = 100


class TemplateSendError(ValueError):
    """A template message Meta would refuse: ``code`` (Aerostic's), ``reason`` (readable), ``meta_code``."""

    def __init__(self, code: str, reason: str, meta_code: int) -> None:
        super().__init__(f"{code}: {reason}")
        self.code, self.reason, self.meta_code = code, reason, meta_code


def validate_send(template: Template, components: list[dict[str, Any]] | None) -> None:
    """Raise ``TemplateSendError`` unless Meta would accept ``components`` for ``template``."""
    status = template.status.upper()
    if status != "APPROVED" and status != "FLAGGED":  # FLAGGED stays sendable until its disable date
        raise TemplateSendError("template_not_approved",
                                f"template {template.name} ({template.language}) is {status}, not APPROVED",
                                STATUS_CODES.get(status, 132001))
    sent = _by_key(components or [])
    expected: dict[str, list[Variable]] = {}
    for variable in variables(template):
        expected.setdefault(variable.key, []).append(variable)
    for key in sorted(set(sent) - set(expected)):
        raise _mismatch(f"{_where(key)} takes no parameters, {len(sent[key])} given")
    for key, wanted in expected.items():
        _check_component(template, key, wanted, sent.get(key, []))


def _check_component(template: Template, key: str, wanted: list[Variable], given: list[dict[str, Any]]) -> None:
    required = [v for v in wanted if not v.optional]
    if not len(required) <= len(given) <= len(wanted):
        raise _mismatch(f"{_where(key)} expects {len(required)} parameter(s), {len(given)} given")
    named = template.parameter_format == "named" and key in ("header", "body")
    if named:
        names = [p.get("parameter_name") for p in given]
        missing = sorted({v.name for v in wanted} - {n for n in names if isinstance(n, str)})
        unknown = sorted({str(n) for n in names} - {v.name for v in wanted})
        if missing or unknown or len(set(names)) != len(names):
            parts = [f"missing {', '.join(missing)}" if missing else "",
                     f"unknown {', '.join(unknown)}" if unknown else "",
                     "repeated names" if len(set(names)) != len(names) else ""]
            raise _mismatch(f"{_where(key)} parameter names do not match: {'; '.join(p for p in parts if p)}")
        by_name = {v.name: v for v in wanted}
        pairs = [(by_name[str(p["parameter_name"])], p) for p in given]
    else:
        pairs = list(zip(wanted, given, strict=False))
    for variable, parameter in pairs:
        kind = str(parameter.get("type", "")).lower()
        if kind not in variable.types:
            expected = " or ".join(sorted(t.upper() for t in variable.types))
            label = f"{{{{{variable.name}}}}}" if variable.name else "its parameter"
            raise TemplateSendError("template_parameter_type",
                                    f"{_where(key)} {label}: expected {expected}, received {kind.upper() or 'UNKNOWN'}",
                                    132012)
        if not _has_value(kind, parameter):
            raise _mismatch(f"{_where(key)}: a {kind} parameter without its value")


def _has_value(kind: str, parameter: dict[str, Any]) -> bool:
    value = parameter.get(kind)
    if kind == "text":
        return isinstance(value, str | int | float) and str(value).strip() != ""
    return value not in (None, "", {}, [])


def _by_key(components: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    if len(components) > MAX_COMPONENTS:
        raise _mismatch(f"at most {MAX_COMPONENTS} components")
    found: dict[str, list[dict[str, Any]]] = {}
    for component in components:
        if not isinstance(component, dict):
            raise _mismatch("each component must be an object")
        kind = str(component.get("type", "")).lower()
        key = f"button:{component.get('index')}" if kind == "button" else kind
        parameters = component.get("parameters") or []
        if not isinstance(parameters, list) or len(parameters) > MAX_PARAMETERS:
            raise _mismatch(f"{_where(key)}: parameters must be a list of at most {MAX_PARAMETERS}")
        if key in found:
            raise _mismatch(f"{_where(key)} is given twice")
        found[key] = [p if isinstance(p, dict) else {} for p in parameters]
    return found


def _where(key: str) -> str:
    return f"button {key.split(':', 1)[1]}" if key.startswith("button:") else key


def _mismatch(reason: str) -> TemplateSendError:
    return TemplateSendError("template_parameter_mismatch", reason, 132000)


# --- preview and building ----------------------------------------------------------------------------

def _value(parameter: dict[str, Any]) -> str:
    kind = str(parameter.get("type", "")).lower()
    value = parameter.get(kind)
    if kind in ("currency", "date_time") and isinstance(value, dict):
        return str(value.get("fallback_value", ""))
    if kind in MEDIA_TYPES:
        return f"[{kind}]"
    return str(value) if value is not None else ""


def _fill(text: str, key: str, template: Template, sent: dict[str, list[dict[str, Any]]]) -> str:
    given = sent.get(key, [])
    if template.parameter_format == "named":
        values = {str(p.get("parameter_name")): _value(p) for p in given}
    else:
        order = [v.name for v in variables(template) if v.key == key]
        values = {name: _value(p) for name, p in zip(order, given, strict=False)}
    for name in placeholders(text):
        text = text.replace(f"{{{{{name}}}}}", values.get(name, f"{{{{{name}}}}}"))
    return text


def render(template: Template, components: list[dict[str, Any]] | None = None) -> str:
    """The message as the recipient reads it: header, body, footer and button labels, values filled in.

    A placeholder without a value stays as it is (``{{1}}``), so a preview of a template alone shows them.
    """
    sent = _by_key(components or [])
    lines: list[str] = []
    header = template.component("HEADER")
    if header is not None:
        fmt = str(header.get("format", "TEXT")).upper()
        lines.append(_fill(str(header.get("text", "")), "header", template, sent) if fmt == "TEXT" else
                     (_value(sent["header"][0]) if sent.get("header") else f"[{fmt.lower()}]"))
    body = template.component("BODY")
    if body is not None:
        if body.get("text"):
            lines.append(_fill(str(body["text"]), "body", template, sent))
        elif sent.get("body"):
            lines.append(f"{_value(sent['body'][0])} is your verification code.")
    footer = template.component("FOOTER")
    if footer is not None and footer.get("text"):
        lines.append(str(footer["text"]))
    buttons = template.component("BUTTONS")
    labels = [str(b.get("text", "")) for b in (buttons.get("buttons", []) if buttons else []) if isinstance(b, dict)]
    if any(labels):
        lines.append(" | ".join(f"[{label}]" for label in labels if label))
    return "\n".join(line for line in lines if line)


def send_components(template: Template, values: Mapping[str, str]) -> list[dict[str, Any]]:
    """Meta's send ``components`` for ``template`` from plain strings keyed by ``Variable.ref``.

    ``{"body.1": "Ann", "body.2": "#42"}`` (positional), ``{"body.first_name": "Ann"}`` (named),
    ``{"header": "https://…/a.jpg"}`` for a media header (a link), ``{"button.0": "abc"}`` for a dynamic URL
    suffix or a coupon code. An optional button value left out is left out; a missing required one raises
    ``TemplateSendError`` (``template_parameter_mismatch``).
    """
    grouped: dict[str, list[dict[str, Any]]] = {}
    for variable in variables(template):
        value = values.get(variable.ref)
        if value is None or value == "":
            if variable.optional:
                continue
            raise _mismatch(f"no value for {variable.ref}")
        kind = sorted(variable.types)[0] if len(variable.types) == 1 else "text"
        if kind in ("image", "video", "document"):
            parameter: dict[str, Any] = {"type": kind, kind: {"link": value}}
        elif kind == "action":
            parameter = {"type": "action", "action": {"flow_token": value}}
        else:
            parameter = {"type": kind, kind: value}
        if template.parameter_format == "named" and variable.key in ("header", "body"):
            parameter["parameter_name"] = variable.name
        grouped.setdefault(variable.key, []).append(parameter)
    out: list[dict[str, Any]] = []
    for key, parameters in grouped.items():
        if key.startswith("button:"):
            index = int(key.split(":", 1)[1])
            button = (template.component("BUTTONS") or {}).get("buttons", [])[index]
            sub_type = {"URL": "url", "COPY_CODE": "copy_code", "OTP": "url", "QUICK_REPLY": "quick_reply",
                        "FLOW": "flow", "CATALOG": "catalog", "MPM": "mpm", "SPM": "spm"}[
                str(button.get("type", "")).upper()]
            out.append({"type": "button", "sub_type": sub_type, "index": str(index), "parameters": parameters})
        else:
            out.append({"type": key, "parameters": parameters})
    return out
