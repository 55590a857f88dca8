"""The API reference: the OpenAPI document of every route, served to signed-in users and API keys only.

The public docs stay off (``openapi_url=None``); ``GET /v1/openapi.json`` answers the same document to a
session or an API key, and the console's ``/console/api-reference`` renders it. ``document(app)`` builds
it once per app: FastAPI's generation plus the errors every authenticated route may answer (401, 429,
503). ``example_of`` finds a request's or response's example in it (the media type's own, the schema's,
or one composed from the examples of its parts); every request body and every 2xx JSON response must
have one (``tests/unit/api/test_openapi_examples.py`` walks the document).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.utils import get_openapi

from api.auth import TenantDep

router = APIRouter(prefix="/v1", tags=["reference"])

TITLE = "Aerostic API"
VERSION = "1"
DESCRIPTION = (
    "The tenant API of Aerostic (`/v1`), its sign-in (`/v1/auth/login`) and the platform's admin routes "
    "(`/admin`, with the platform key). Authenticate with `Authorization: Bearer aer_…` (an API key from the "
    "console's *WhatsApp & keys* page) or the console's session cookie. Lists are pages: pass `next_cursor` "
    "back as `cursor`.")
MAX_DEPTH = 12
MISSING: Any = object()  # no example could be found

# Errors a route answers besides its own, by the prefix of its path (the first that matches).
COMMON_ERRORS: tuple[tuple[str, dict[str, str]], ...] = (
    ("/v1/auth/login", {"429": "too many failed sign-ins: wait `Retry-After` seconds",
                        "503": "a backing service is unavailable: retry shortly"}),
    ("/v1", {"401": "missing, unknown, expired or revoked credentials",
             "429": "over the tenant's request rate: wait `Retry-After` seconds",
             "503": "a backing service is unavailable: retry shortly"}),
    ("/admin", {"401": "missing or wrong platform key", "503": "a backing service is unavailable: retry shortly"}),
)
ERROR_EXAMPLE = {"detail": "invalid, expired or revoked credentials"}


def json_example(example: Any, description: str = "Successful Response") -> dict[str, Any]:
    """A route's ``responses`` entry for a JSON answer that has no response model: ``responses={200:
    json_example({...})}``."""
    return {"description": description, "content": {"application/json": {"example": example}}}


def _add_common_errors(doc: dict[str, Any]) -> None:
    for path, operations in doc.get("paths", {}).items():
        errors = next((found for prefix, found in COMMON_ERRORS if path.startswith(prefix)), {})
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for code, description in errors.items():
                responses.setdefault(code, {"description": description, "content": {
                    "application/json": {"example": {**ERROR_EXAMPLE, "detail": description}}}})


def document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document (built once, then kept on the app)."""
    cached: dict[str, Any] | None = getattr(app.state, "api_reference", None)
    if cached is None:
        cached = get_openapi(title=TITLE, version=VERSION, description=DESCRIPTION, routes=app.routes)
        _add_common_errors(cached)
        app.state.api_reference = cached
    return cached


@router.get("/openapi.json", include_in_schema=False)
async def openapi_json(request: Request, principal: TenantDep) -> dict[str, Any]:
    """The OpenAPI document of this API (a session or an API key; 401 without)."""
    del principal  # authenticated: the document is for the platform's users only
    return document(request.app)


def _resolve(schema: Mapping[str, Any], components: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        return components.get(ref.rsplit("/", 1)[1], {})
    return schema


def example_of(schema: Mapping[str, Any] | None, components: Mapping[str, Any], depth: int = 0) -> Any:
    """An example of ``schema``: its own (``example``, ``examples``), else one composed of its parts' examples
    (an array of an exampled item, the first exampled choice of ``anyOf``/``oneOf``, an object whose required
    properties all have one); ``MISSING`` when there is none."""
    if not schema or depth > MAX_DEPTH:
        return MISSING
    if "example" in schema:
        return schema["example"]
    examples = schema.get("examples")
    if isinstance(examples, list) and examples:
        return examples[0]
    if "$ref" in schema:
        return example_of(_resolve(schema, components), components, depth + 1)
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key) or []:
            if option.get("type") == "null":
                continue
            found = example_of(option, components, depth + 1)
            if found is not MISSING:
                return found
    if schema.get("type") == "array" and isinstance(schema.get("items"), Mapping):
        item = example_of(schema["items"], components, depth + 1)
        return MISSING if item is MISSING else [item]
    properties = schema.get("properties")
    if schema.get("type") == "object" and isinstance(properties, Mapping) and properties:
        built: dict[str, Any] = {}
        for name, part in properties.items():
            value = example_of(part, components, depth + 1)
            if value is MISSING and "default" in part:
                value = part["default"]
            if value is MISSING:
                if name in (schema.get("required") or []):
                    return MISSING
                continue
            built[name] = value
        return built
    return MISSING


def media_example(media: Mapping[str, Any] | None, components: Mapping[str, Any]) -> Any:
    """The example of one media type of a request or response (its own, else its schema's)."""
    if not media:
        return MISSING
    if "example" in media:
        return media["example"]
    examples = media.get("examples")
    if isinstance(examples, Mapping) and examples:
        first = next(iter(examples.values()))
        if isinstance(first, Mapping) and "value" in first:
            return first["value"]
    return example_of(media.get("schema"), components)
