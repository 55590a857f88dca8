"""The console's API reference page and the site's front door.

``/console/api-reference`` renders the OpenAPI document of ``api.reference`` server-side, grouped by
tag: each operation's method, path, summary, parameters, request example, response examples and error
codes, so that the browser's find searches all of it; the JSON is a link away (``/v1/openapi.json``).
``/`` leads to the console: the inbox when signed in, else the sign-in form.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request, Response

from api.console.access import LOGIN_PATH, page_user, session_user
from api.console.nav import BY_KEY
from api.console.templating import redirect, render
from api.deps import EngineDep
from api.reference import MISSING, document, media_example

router = APIRouter(include_in_schema=False)

METHODS = ("get", "post", "put", "patch", "delete")
UNTAGGED = "other"


@dataclass(frozen=True)
class Parameter:
    name: str
    where: str
    required: bool
    type: str
    description: str


@dataclass(frozen=True)
class Answer:
    code: str
    description: str
    example: str | None


@dataclass
class Operation:
    method: str
    path: str
    summary: str
    description: str
    anchor: str
    parameters: list[Parameter] = field(default_factory=list)
    request_type: str | None = None
    request_example: str | None = None
    answers: list[Answer] = field(default_factory=list)
    errors: list[Answer] = field(default_factory=list)


def _pretty(value: Any) -> str | None:
    return None if value is MISSING else json.dumps(value, indent=2, ensure_ascii=False)


def _answer_example(answer: dict[str, Any], components: dict[str, Any]) -> str | None:
    """A response's example as text: the JSON one, else the first other media type's (CSV, an event stream)."""
    content = answer.get("content", {})
    if "application/json" in content:
        return _pretty(media_example(content["application/json"], components))
    for media in content.values():
        if isinstance(media.get("example"), str):
            return str(media["example"])
    return None


def _type_of(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[1]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(_type_of(option) for option in schema[key])
    kind = str(schema.get("type", "any"))
    if kind == "array" and isinstance(schema.get("items"), dict):
        return f"array of {_type_of(schema['items'])}"
    return kind


def _anchor(method: str, path: str) -> str:
    return f"{method}-" + "".join(c if c.isalnum() else "-" for c in path).strip("-")


def operations_by_tag(doc: dict[str, Any]) -> list[tuple[str, list[Operation]]]:
    """The document's operations grouped by their first tag, in the document's order."""
    components = doc.get("components", {}).get("schemas", {})
    groups: dict[str, list[Operation]] = {}
    for path, item in doc.get("paths", {}).items():
        for method in METHODS:
            spec = item.get(method)
            if spec is None:
                continue
            op = Operation(method=method.upper(), path=path, summary=spec.get("summary", ""),
                           description=spec.get("description", ""), anchor=_anchor(method, path))
            for p in spec.get("parameters", []):
                op.parameters.append(Parameter(p["name"], p["in"], bool(p.get("required")),
                                               _type_of(p.get("schema", {})), p.get("description", "")))
            body = spec.get("requestBody", {}).get("content", {})
            for content_type, media in body.items():
                op.request_type = content_type
                op.request_example = _pretty(media_example(media, components)) \
                    if content_type == "application/json" else None
                break
            for code, answer in spec.get("responses", {}).items():
                entry = Answer(code, answer.get("description", ""), _answer_example(answer, components))
                (op.answers if code.startswith(("1", "2", "3")) else op.errors).append(entry)
            groups.setdefault((spec.get("tags") or [UNTAGGED])[0], []).append(op)
    return list(groups.items())


@router.get("/")
async def front_door(request: Request, engine: EngineDep) -> Response:
    """The inbox when signed in, else the sign-in form."""
    principal = await session_user(request, engine)
    return redirect(BY_KEY["inbox"].path if principal is not None else LOGIN_PATH)


@router.get("/console/api-reference")
async def api_reference(request: Request, engine: EngineDep) -> Response:
    """The API reference, rendered from the OpenAPI document."""
    principal = await page_user(request, engine, "api-reference")
    if isinstance(principal, Response):
        return principal
    doc = document(request.app)
    return render(request, "api_reference.html", {
        "user": principal, "info": doc.get("info", {}), "groups": operations_by_tag(doc),
    })
