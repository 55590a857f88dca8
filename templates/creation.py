"""Local validation of a new template, before it goes to Meta's ``POST /{waba}/message_templates``.

``TemplateCreate`` is the request's shape (Meta's creation body); ``check_create`` lists every problem
as a ``Problem`` (where, what), so the API answers one 422 naming each field. What is checked
(Meta's rules; the README's "Templates" section): the name (``^[a-z0-9_]{1,512}$``), one BODY and at most one
HEADER, FOOTER and BUTTONS, lengths (header and footer 60, body 1,024, button text 25, URL 2,000, phone 20),
placeholders in the template's parameter format only (positional ``{{1}}…{{n}}`` numbered from 1 without
gaps, or named ``{{first_name}}``, never both), an example for every variable, no variable in the footer,
a URL button's variable only at the end of its URL, a media header's example handle, at most 10 buttons.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from templates.model import MEDIA_FORMATS, NAMED, POSITIONAL, ParameterFormat, Template, placeholders

NAME_PATTERN = r"^[a-z0-9_]{1,512}$"
LANGUAGE_PATTERN = r"^[a-z]{2,3}(_[A-Za-z0-9]{2,4})?$"
HEADER_MAX, BODY_MAX, FOOTER_MAX, BUTTON_TEXT_MAX, URL_MAX, PHONE_MAX, COUPON_MAX = 60, 1024, 60, 25, 2000, 20, 15
MAX_BUTTONS = 10
MAX_VARIABLES = 100
BUTTON_TYPES = ("QUICK_REPLY", "URL", "PHONE_NUMBER", "COPY_CODE", "OTP", "FLOW", "CATALOG", "MPM", "VOICE_CALL")
LABELLED = ("QUICK_REPLY", "URL", "PHONE_NUMBER", "FLOW", "VOICE_CALL")


Text = Annotated[str, StringConstraints(max_length=4096)]
Short = Annotated[str, StringConstraints(max_length=256)]
Value = Annotated[str, StringConstraints(max_length=2000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NamedExample(_Strict):
    param_name: Short
    example: Value


class Example(_Strict):
    """Examples of a component's variables (and a media header's sample handle)."""

    header_text: Annotated[list[Value], Field(max_length=MAX_VARIABLES)] | None = None
    header_text_named_params: Annotated[list[NamedExample], Field(max_length=MAX_VARIABLES)] | None = None
    header_handle: Annotated[list[Value], Field(max_length=10)] | None = None
    body_text: Annotated[list[Annotated[list[Value], Field(max_length=MAX_VARIABLES)]], Field(max_length=10)] | None \
        = None
    body_text_named_params: Annotated[list[NamedExample], Field(max_length=MAX_VARIABLES)] | None = None


class SupportedApp(_Strict):
    package_name: Short
    signature_hash: Short


class Button(_Strict):
    """One button as Meta's creation takes it (the fields of every button type)."""

    type: Short
    text: Text | None = None
    url: Text | None = None
    phone_number: Short | None = None
    example: Value | Annotated[list[Value], Field(max_length=10)] | None = None
    otp_type: Short | None = None
    autofill_text: Short | None = None
    package_name: Short | None = None
    signature_hash: Short | None = None
    zero_tap_terms_accepted: bool | None = None
    supported_apps: Annotated[list[SupportedApp], Field(max_length=10)] | None = None
    flow_id: Short | None = None
    flow_name: Short | None = None
    flow_action: Short | None = None
    navigate_screen: Short | None = None


class Component(_Strict):
    """HEADER, BODY, FOOTER or BUTTONS, as Meta's creation takes it."""

    type: Short
    format: Short | None = None
    text: Text | None = None
    example: Example | None = None
    buttons: Annotated[list[Button], Field(max_length=MAX_BUTTONS)] | None = None
    add_security_recommendation: bool | None = None
    code_expiration_minutes: Annotated[int, Field(ge=1, le=90)] | None = None


class TemplateCreate(_Strict):
    """``POST /v1/templates``: Meta's creation body, plus the WABA when the tenant has several."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "name": "order_confirmation", "language": "en_US", "category": "UTILITY",
                "parameter_format": "positional",
                "components": [
                    {
                        "type": "BODY", "text": "Hi {{1}}, your order {{2}} is confirmed.",
                        "example": {"body_text": [["Maria", "#1042"]]},
                    },
                    {"type": "FOOTER", "text": "Jasper's Market"},
                ],
            },
        ]})

    name: Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
    language: Annotated[str, StringConstraints(pattern=LANGUAGE_PATTERN)]
    category: Literal["MARKETING", "UTILITY", "AUTHENTICATION"]
    parameter_format: ParameterFormat = "positional"
    components: Annotated[list[Component], Field(min_length=1, max_length=8)]
    waba_id: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,32}$")] | None = None
    allow_category_change: bool | None = None

    @property
    def component_dicts(self) -> list[dict[str, Any]]:
        """The components as Meta's JSON (unset fields left out)."""
        return [c.model_dump(exclude_none=True) for c in self.components]

    def template(self) -> Template:
        """The registry's view of it (status ``SUBMITTING`` until Meta answers)."""
        return Template(name=self.name, language=self.language, category=self.category, status="SUBMITTING",
                        parameter_format=self.parameter_format, components=self.component_dicts)

    def meta_body(self) -> dict[str, Any]:
        """The body for Meta's ``POST /{waba}/message_templates``."""
        return self.model_dump(exclude={"waba_id"}, exclude_none=True)


class Problem(NamedTuple):
    """One thing wrong: ``loc`` is the path inside the request body, ``msg`` says what."""

    loc: tuple[str | int, ...]
    msg: str


def check_create(request: TemplateCreate) -> list[Problem]:
    """Every problem of ``request`` (empty: it may go to Meta)."""
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for i, component in enumerate(request.component_dicts):
        kind = str(component.get("type", "")).upper()
        where: tuple[str | int, ...] = ("components", i)
        if kind not in ("HEADER", "BODY", "FOOTER", "BUTTONS"):
            problems.append(Problem((*where, "type"), "must be HEADER, BODY, FOOTER or BUTTONS"))
            continue
        if kind in seen:
            problems.append(Problem((*where, "type"), f"only one {kind} component is allowed"))
            continue
        seen[kind] = i
        check = {"HEADER": _header, "BODY": _body, "FOOTER": _footer, "BUTTONS": _buttons}[kind]
        problems += check(request, component, where)
    if "BODY" not in seen:
        problems.append(Problem(("components",), "a BODY component is required"))
    return problems


def _text(component: dict[str, Any], where: tuple[str | int, ...], limit: int, *,
          required: bool = True) -> tuple[str, list[Problem]]:
    text = component.get("text")
    if text is None and not required:
        return "", []
    if not isinstance(text, str) or not text.strip():
        return "", [Problem((*where, "text"), "is required")]
    if len(text) > limit:
        return text, [Problem((*where, "text"), f"is {len(text)} characters; at most {limit}")]
    return text, []


def _placeholders(request: TemplateCreate, text: str, where: tuple[str | int, ...]) -> tuple[list[str], list[Problem]]:
    """The distinct variables of ``text`` in the request's format, and what is wrong with them."""
    names: list[str] = []
    for name in placeholders(text):
        if name not in names:
            names.append(name)
    problems: list[Problem] = []
    if len(names) > MAX_VARIABLES:
        return names, [Problem((*where, "text"), f"at most {MAX_VARIABLES} variables")]
    if request.parameter_format == "positional":
        bad = [n for n in names if not POSITIONAL.match(n)]
        if bad:
            problems.append(Problem((*where, "text"), f"positional templates use {{{{1}}}}, {{{{2}}}}…; found "
                                                      f"{', '.join('{{' + b + '}}' for b in bad)} (set "
                                                      "parameter_format to named for named variables)"))
        elif sorted(int(n) for n in names) != list(range(1, len(names) + 1)):
            problems.append(Problem((*where, "text"), "positional variables must be numbered from {{1}} without "
                                                      "gaps"))
    else:
        bad = [n for n in names if not NAMED.match(n)]
        if bad:
            problems.append(Problem((*where, "text"), "named variables are lowercase letters, digits and _, "
                                                      f"starting with a letter or _; found "
                                                      f"{', '.join('{{' + b + '}}' for b in bad)}"))
    return names, problems


def _examples(request: TemplateCreate, component: dict[str, Any], where: tuple[str | int, ...], names: list[str],
              prefix: str) -> list[Problem]:
    """An example for every variable: ``{prefix}_text`` (positional) or ``{prefix}_text_named_params``."""
    if not names:
        return []
    example = component.get("example")
    example = example if isinstance(example, dict) else {}
    loc = (*where, "example")
    if request.parameter_format == "named":
        key = f"{prefix}_text_named_params"
        given = example.get(key)
        if not isinstance(given, list):
            return [Problem(loc, f"{key} is required: one {{param_name, example}} per variable")]
        found = {str(p.get("param_name")): p.get("example") for p in given if isinstance(p, dict)}
        missing = [n for n in names if not isinstance(found.get(n), str) or not str(found[n]).strip()]
        extra = sorted(set(found) - set(names))
        problems = [Problem((*loc, key), f"no example for {', '.join(missing)}")] if missing else []
        if extra:
            problems.append(Problem((*loc, key), f"examples for variables the text does not use: {', '.join(extra)}"))
        return problems
    key = f"{prefix}_text"
    given = example.get(key)
    if prefix == "body":  # body_text: [["Mark", "860198"]]; header_text: ["Mark"]
        given = given[0] if isinstance(given, list) and len(given) == 1 and isinstance(given[0], list) else None
    if not isinstance(given, list) or len(given) != len(names) or not all(
            isinstance(v, str) and v.strip() for v in given):
        shape = '[["…", …]]' if prefix == "body" else '["…"]'
        return [Problem((*loc, key), f"must give {len(names)} non-empty example value(s), shaped {shape}")]
    return []


def _header(request: TemplateCreate, component: dict[str, Any], where: tuple[str | int, ...]) -> list[Problem]:
    fmt = str(component.get("format", "")).upper()
    if fmt in MEDIA_FORMATS:
        if fmt == "LOCATION":
            return []
        example = component.get("example")
        handles = example.get("header_handle") if isinstance(example, dict) else None
        if not isinstance(handles, list) or not handles or not all(isinstance(h, str) and h for h in handles):
            return [Problem((*where, "example", "header_handle"), f"a {fmt} header needs an example media handle")]
        return []
    if fmt != "TEXT":
        return [Problem((*where, "format"), "must be TEXT, IMAGE, VIDEO, DOCUMENT or LOCATION")]
    text, problems = _text(component, where, HEADER_MAX)
    names, found = _placeholders(request, text, where)
    problems += found
    if len(names) > 1:
        problems.append(Problem((*where, "text"), "a header takes at most one variable"))
    return problems + (_examples(request, component, where, names, "header") if not found else [])


def _body(request: TemplateCreate, component: dict[str, Any], where: tuple[str | int, ...]) -> list[Problem]:
    authentication = request.category == "AUTHENTICATION"
    text, problems = _text(component, where, BODY_MAX, required=not authentication)
    names, found = _placeholders(request, text, where)
    return problems + found + (_examples(request, component, where, names, "body") if not found else [])


def _footer(request: TemplateCreate, component: dict[str, Any], where: tuple[str | int, ...]) -> list[Problem]:
    text, problems = _text(component, where, FOOTER_MAX, required=request.category != "AUTHENTICATION")
    if placeholders(text):
        problems.append(Problem((*where, "text"), "a footer cannot have variables"))
    return problems


def _buttons(_request: TemplateCreate, component: dict[str, Any], where: tuple[str | int, ...]) -> list[Problem]:
    buttons = component.get("buttons")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= MAX_BUTTONS:
        return [Problem((*where, "buttons"), f"must list 1 to {MAX_BUTTONS} buttons")]
    problems: list[Problem] = []
    for j, button in enumerate(buttons):
        at = (*where, "buttons", j)
        if not isinstance(button, dict):
            problems.append(Problem(at, "must be an object"))
            continue
        kind = str(button.get("type", "")).upper()
        if kind not in BUTTON_TYPES:
            problems.append(Problem((*at, "type"), f"must be one of {', '.join(BUTTON_TYPES)}"))
            continue
        if kind in LABELLED:
            problems += _text(button, at, BUTTON_TEXT_MAX)[1]
        if kind == "URL":
            problems += _url(button, at)
        elif kind == "PHONE_NUMBER":
            phone = button.get("phone_number")
            if not isinstance(phone, str) or not phone or len(phone) > PHONE_MAX:
                problems.append(Problem((*at, "phone_number"), f"is required, at most {PHONE_MAX} characters"))
        elif kind == "COPY_CODE":
            code = button.get("example")
            if not isinstance(code, str) or not code or len(code) > COUPON_MAX:
                problems.append(Problem((*at, "example"), f"an example code of 1 to {COUPON_MAX} characters"))
    return problems


def _url(button: dict[str, Any], at: tuple[str | int, ...]) -> list[Problem]:
    url = button.get("url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")) or len(url) > URL_MAX:
        return [Problem((*at, "url"), f"an http(s) URL of at most {URL_MAX} characters is required")]
    names = placeholders(url)
    if not names:
        return []
    if len(names) > 1 or not url.endswith("{{" + names[0] + "}}"):
        return [Problem((*at, "url"), "a URL takes one variable, at its end")]
    example = button.get("example")
    if not isinstance(example, list) or len(example) != 1 or not isinstance(example[0], str) or not example[0]:
        return [Problem((*at, "example"), 'a URL with a variable needs an example: ["https://…/full-url"]')]
    return []
