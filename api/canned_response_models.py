"""Request and response models of ``/v1/canned-responses``: an inbox's saved replies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

SHORTCUT = r"^[a-z0-9][a-z0-9_-]{0,31}$"
MAX_TEXT = 4096
Shortcut = Annotated[str, StringConstraints(pattern=SHORTCUT)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT)]


class CannedResponseCreate(BaseModel):
    """A saved reply: ``shortcut`` (lowercase letters, digits, ``_`` and ``-``, 1 to 32, unique in the tenant)
    names it in the inbox; ``text`` (1 to 4096 characters) is what it inserts."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"shortcut": "hours", "text": "We're open Monday to Saturday, 9am to 6pm."}]})

    shortcut: Shortcut
    text: Text


class CannedResponsePublic(BaseModel):
    """A saved reply as the inbox lists it."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"id": "3f0c7d0e-6a55-4d53-9d7e-2b1f7c7f6a10", "shortcut": "hours",
         "text": "We're open Monday to Saturday, 9am to 6pm.", "updated_at": "2026-12-02T04:10:00Z"}]})

    id: str
    shortcut: str
    text: str
    updated_at: datetime
