"""Response models of the template API (the request is ``templates.TemplateCreate``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class TemplateError(BaseModel):
    code: int | None
    message: str | None


class TemplatePublic(BaseModel):
    """One template of the tenant's registry, in one language."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "id": "4c2e8a6f-1b3d-4f5a-9c7e-2d4f6a8c0e1b", "waba_id": "102290129340398",
                "name": "order_confirmation", "language": "en_US", "category": "UTILITY", "status": "APPROVED",
                "status_reason": None, "quality": "GREEN", "previous_category": None,
                "parameter_format": "positional",
                "components": [
                    {
                        "type": "BODY", "text": "Hi {{1}}, your order {{2}} is confirmed.",
                        "example": {"body_text": [["Maria", "#1042"]]},
                    },
                ],
                "variables": ["body.1", "body.2"], "preview": "Hi {{1}}, your order {{2}} is confirmed.",
                "meta_id": "1689556908129832", "error": None, "created_at": "2026-11-20T09:00:00Z",
                "updated_at": "2026-11-20T09:02:10Z",
            },
        ]})

    id: str
    waba_id: str
    name: str
    language: str
    category: str
    status: str
    status_reason: str | None
    quality: str | None
    previous_category: str | None
    parameter_format: str
    components: list[dict[str, Any]]
    variables: list[str]
    preview: str
    meta_id: str | None
    error: TemplateError | None
    created_at: datetime
    updated_at: datetime


class TemplateRequested(BaseModel):
    """202: the request is on its way to Meta through the dispatcher; the registry shows what came of it."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "id": "4c2e8a6f-1b3d-4f5a-9c7e-2d4f6a8c0e1b", "request_id": "7d9f1b3e-5a2c-4e6d-8b0f-1a3c5e7d9b2f",
                "waba_id": "102290129340398", "name": "order_confirmation", "language": "en_US",
                "status": "SUBMITTING",
            },
        ]})

    id: str | None = None
    request_id: str
    waba_id: str
    name: str | None = None
    language: str | None = None
    status: str


class SyncPublic(BaseModel):
    """The last registry sync of one WABA."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "waba_id": "102290129340398", "request_id": "7d9f1b3e-5a2c-4e6d-8b0f-1a3c5e7d9b2f", "status": "done",
                "templates": 12, "error": None, "synced_at": "2026-12-01T09:14:03Z",
                "finished_at": "2026-12-01T09:14:05Z",
            },
        ]})

    waba_id: str
    request_id: str
    status: str
    templates: int | None
    error: TemplateError | None
    synced_at: datetime | None
    finished_at: datetime


class SendRefusal(BaseModel):
    """The ``detail`` of a 422 for a template message Meta would refuse."""

    code: str
    reason: str
    meta_code: int
