"""Contracts of the template registry: requests to the dispatcher and what came of them.

``TemplateRequest`` (``templates.requests``, keyed by WABA id): the API (create, delete, sync) or the
dispatcher's signup lane (sync after a connection) asks; the dispatcher, the only Meta caller, answers
with ``TemplateResult`` records (``templates.results``, same key) that the projector writes to the
registry: one ``page`` per page of ``GET /{waba}/message_templates`` then ``synced`` with every key seen,
``created``, ``deleted``, or ``failed`` with Meta's (or Aerostic's) code and message.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from schemas.events import Event

TemplateAction = Literal["create", "delete", "sync"]
# Aerostic's own refusal when a WABA's creations in the last hour reached Meta's limit.
CREATION_LIMIT_CODE = -10


class TemplateRequest(Event):
    """Create (``template`` is Meta's creation body), delete (``name``) or sync one WABA's templates."""

    kind: Literal["template_request"] = "template_request"
    request_id: str
    tenant_id: str
    waba_id: str
    action: TemplateAction
    name: str | None = None
    template: dict[str, Any] | None = None
    requested_by: str
    requested_at: datetime


class TemplateResult(Event):
    """What the dispatcher got from Meta for one request (several ``page`` results, then one final)."""

    kind: Literal["template_result"] = "template_result"
    request_id: str
    tenant_id: str
    waba_id: str
    action: TemplateAction
    outcome: Literal["page", "synced", "created", "deleted", "failed"]
    name: str | None = None
    language: str | None = None
    template: dict[str, Any] | None = None  # created: the creation body
    templates: list[dict[str, Any]] = Field(default_factory=list, max_length=1000)  # page: as Meta lists them
    seen: list[tuple[str, str]] = Field(default_factory=list)  # synced: every (name, language) Meta listed
    meta_id: str | None = None
    status: str | None = None
    category: str | None = None
    error_code: int | None = None
    error_message: str | None = None
    fetched_at: datetime  # when Meta answered: the time of the facts it carries
