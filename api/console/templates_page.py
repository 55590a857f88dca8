"""The console's Templates page (admins): the registry with status and quality in words, a create form with a
live preview of the WhatsApp bubble, delete, and "Sync from Meta".

The page is a shell rendered here; ``static/templates.js`` fills it from ``/v1/templates`` and posts to the same
API (its 422 names each field Meta would refuse, shown at the field). Labels are people's words for Meta's values
(the value itself is shown on hover): status, quality and category from ``api.console.labels`` (the values of
Meta's ``message_template_status_update`` and ``message_template_quality_update`` webhooks), rejection reasons
from the table below.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.console.access import page
from api.deps import EngineDep
from templates.creation import BODY_MAX, BUTTON_TEXT_MAX, FOOTER_MAX, HEADER_MAX, MAX_BUTTONS

router = APIRouter(prefix="/console", tags=["console pages"], include_in_schema=False)

STATUS_TONE = {"APPROVED": "good", "REINSTATED": "good", "PENDING": "warn", "SUBMITTING": "warn", "FLAGGED": "warn",
               "IN_APPEAL": "warn", "PAUSED": "warn", "REJECTED": "bad", "DISABLED": "bad", "FAILED": "bad",
               "LIMIT_EXCEEDED": "bad", "LOCKED": "bad"}
QUALITY_TONE = {"GREEN": "good", "YELLOW": "warn", "RED": "bad"}
# Why Meta rejected a template (``reason`` of ``message_template_status_update``).
REASON = {
    "ABUSIVE_CONTENT": "Abusive content", "INCORRECT_CATEGORY": "Wrong category", "INVALID_FORMAT": "Invalid format",
    "PROMOTIONAL": "Promotional content in a non-marketing template", "SCAM": "Looks like a scam",
    "TAG_CONTENT_MISMATCH": "Content does not match the category", "NONE": "No reason given",
}
LIMITS = {"header": HEADER_MAX, "body": BODY_MAX, "footer": FOOTER_MAX, "button_text": BUTTON_TEXT_MAX,
          "buttons": MAX_BUTTONS}


def labels() -> dict[str, dict[str, str]]:
    """The tone (good/warn/bad) of statuses and qualities, and rejection reasons in words (status, quality and
    category words are the console's, ``api.console.labels``, read by the script through ``labels.js``)."""
    return {"status_tone": STATUS_TONE, "quality_tone": QUALITY_TONE, "reason": REASON}


@router.get("/templates")
async def templates_page(request: Request, engine: EngineDep) -> Response:
    """The registry, the create form with its preview, sync."""
    return await page(request, engine, "templates", "templates.html",
                      {"page_data": {"labels": labels(), "limits": LIMITS}})
