"""The console's Contacts page (admins): search and page through contacts, a contact's details with its opt-out
history, CSV import with its progress and report, and segments with a live count as the rule is edited.

The page is a shell rendered here; ``static/contacts.js`` fills it from ``/v1/contacts``,
``/v1/contacts/imports`` (the import's status is polled while it runs: the live feed carries no import events)
and ``/v1/segments`` (``POST /v1/segments/count`` counts a rule before it is saved).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.console.access import page
from api.deps import EngineDep
from contacts.csv_import import MAX_FILE_BYTES
from contacts.segments import MAX_CONDITIONS, MAX_TAGS

router = APIRouter(prefix="/console", tags=["console pages"], include_in_schema=False)

OPERATORS = {"eq": "is", "neq": "is not", "in": "is one of", "contains": "contains", "exists": "is set",
             "not_exists": "is not set", "gt": "is more than", "lt": "is less than"}
OPT_SOURCES = {"keyword": "Customer wrote STOP/START", "rule": "Automation rule", "meta": "Meta (marketing opt-out)",
               "admin": "Admin", "conversation": "Agent in a conversation"}


@router.get("/contacts")
async def contacts_page(request: Request, engine: EngineDep) -> Response:
    """Contacts, their details, CSV import and segments."""
    data = {"operators": OPERATORS, "opt_sources": OPT_SOURCES, "max_file_bytes": MAX_FILE_BYTES,
            "max_conditions": MAX_CONDITIONS, "max_tags": MAX_TAGS}
    return await page(request, engine, "contacts", "contacts.html",
                      {"max_file_mb": MAX_FILE_BYTES // (1024 * 1024), "page_data": data})
