"""The API reference: every request body and every 2xx JSON response of every route has an example.

The walk reads the OpenAPI document the API serves (``api.reference.document``); a route that fails it
is named with what lacks an example, so whoever added it knows what to fix (README, "API reference")."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, ConfigDict, ValidationError

from aerostic.web import create_app
from api.reference import MISSING, document, media_example
from config.settings import IngressSettings


def undocumented(doc: dict[str, Any]) -> list[str]:
    """Every request body and 2xx JSON response of ``doc`` without an example, as ``METHOD path: what``."""
    components = doc.get("components", {}).get("schemas", {})
    missing: list[str] = []
    for path, item in doc.get("paths", {}).items():
        for method, spec in item.items():
            where = f"{method.upper()} {path}"
            for content_type, media in spec.get("requestBody", {}).get("content", {}).items():
                if content_type == "application/json" and media_example(media, components) is MISSING:
                    missing.append(f"{where}: request body ({content_type})")
            for code, answer in spec.get("responses", {}).items():
                media = answer.get("content", {}).get("application/json")
                if code.startswith("2") and media is not None and media_example(media, components) is MISSING:
                    missing.append(f"{where}: {code} response")
    return missing


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app(IngressSettings(environment="test")).api


def test_every_route_has_examples(app: FastAPI) -> None:
    missing = undocumented(document(app))
    assert not missing, ("add examples (model_config json_schema_extra, or the route's responses=...; README, "
                         "'API reference') for:\n  " + "\n  ".join(missing))


def test_the_document_covers_the_tenant_api_auth_and_the_platform_routes(app: FastAPI) -> None:
    paths = document(app)["paths"]
    for path in ("/v1/messages", "/v1/auth/login", "/v1/conversations/{key}/reply", "/v1/automations",
                 "/admin/tenants"):
        assert path in paths, path
    assert "/v1/openapi.json" not in paths and not any(p.startswith("/console") for p in paths)


def test_request_examples_are_valid_bodies(app: FastAPI) -> None:
    """A request example the API itself would refuse is no example: each one validates as its route's body."""
    components = document(app).get("components", {}).get("schemas", {})
    checked = 0
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not route.include_in_schema or len(route.dependant.body_params) != 1:
            continue
        model = route.dependant.body_params[0].field_info.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        spec = document(app)["paths"][context.path_format]
        for method in route.methods or ():
            media = spec[method.lower()].get("requestBody", {}).get("content", {}).get("application/json")
            example = media_example(media, components)
            assert example is not MISSING, f"{method} {context.path_format}"
            try:
                model.model_validate(example)
            except ValidationError as exc:
                pytest.fail(f"{method} {context.path_format}: its request example is refused: {exc}")
            checked += 1
    assert checked > 40


class Bare(BaseModel):
    name: str
    count: int


class Exampled(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "ada", "count": 2}]})
    name: str
    count: int


def _app_with(body: type[BaseModel], answer: type[BaseModel]) -> FastAPI:
    async def create(thing: Any) -> Any:
        return thing

    create.__annotations__ = {"thing": body, "return": answer}  # real types: this module's annotations are strings
    router = APIRouter()
    router.add_api_route("/v1/things", create, methods=["POST"], response_model=answer, status_code=201)
    app = FastAPI(openapi_url=None)
    app.include_router(router)
    return app


def test_the_walk_names_a_route_whose_models_lack_examples() -> None:
    assert undocumented(document(_app_with(Bare, Bare))) == ["POST /v1/things: request body (application/json)",
                                                             "POST /v1/things: 201 response"]
    assert undocumented(document(_app_with(Exampled, Bare))) == ["POST /v1/things: 201 response"]
    assert undocumented(document(_app_with(Exampled, Exampled))) == []


def test_a_response_without_a_model_needs_its_own_example() -> None:
    app = FastAPI(openapi_url=None)

    @app.get("/v1/loose")
    async def loose() -> dict[str, Any]:
        return {}

    @app.get("/v1/told", responses={200: {"content": {"application/json": {"example": {"ok": True}}}}})
    async def told() -> dict[str, Any]:
        return {"ok": True}

    assert undocumented(document(app)) == ["GET /v1/loose: 200 response"]
