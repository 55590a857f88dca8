"""Response models of the template API (the request is ``templates.TemplateCreate``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class TemplateError(BaseModel):
    code: int | None
    message: str | None


class TemplatePublic(BaseModel):
    """One template of the tenant's registry, in one language."""

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

    id: str | None = None
    request_id: str
    waba_id: str
    name: str | None = None
    language: str | None = None
    status: str


class SyncPublic(BaseModel):
    """The last registry sync of one WABA."""

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
