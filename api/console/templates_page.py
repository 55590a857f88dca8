"""The console's Templates page (admins): the registry with status and quality in words, a create form with a
live preview of the WhatsApp bubble, delete, and "Sync from Meta".

The page is a shell rendered here; ``static/templates.js`` fills it from ``/v1/templates`` and posts to the same
API (its 422 names each field Meta would refuse, shown at the field). Labels are people's words for Meta's values
(the value itself is shown on hover); the values are those of Meta's ``message_template_status_update`` and
``message_template_quality_update`` webhooks (WhatsApp Manager's own words: In review, Rejected, Active…).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.console.access import page_user
from api.console.templating import render
from api.deps import EngineDep
from templates.creation import BODY_MAX, BUTTON_TEXT_MAX, FOOTER_MAX, HEADER_MAX, MAX_BUTTONS

router = APIRouter(prefix="/console", tags=["console pages"], include_in_schema=False)

STATUS = {
    "APPROVED": "Active", "PENDING": "In review", "SUBMITTING": "Submitting", "REJECTED": "Rejected",
    "PAUSED": "Paused", "DISABLED": "Disabled", "FLAGGED": "Flagged", "IN_APPEAL": "Appeal requested",
    "DELETED": "Deleted", "DELETING": "Deleting", "PENDING_DELETION": "Being deleted", "ARCHIVED": "Archived",
    "LIMIT_EXCEEDED": "Limit exceeded", "LOCKED": "Locked", "REINSTATED": "Reinstated", "FAILED": "Not submitted",
}
STATUS_TONE = {"APPROVED": "good", "REINSTATED": "good", "PENDING": "warn", "SUBMITTING": "warn", "FLAGGED": "warn",
               "IN_APPEAL": "warn", "PAUSED": "warn", "REJECTED": "bad", "DISABLED": "bad", "FAILED": "bad",
               "LIMIT_EXCEEDED": "bad", "LOCKED": "bad"}
QUALITY = {"GREEN": "High", "YELLOW": "Medium", "RED": "Low", "UNKNOWN": "Quality pending"}
QUALITY_TONE = {"GREEN": "good", "YELLOW": "warn", "RED": "bad"}
CATEGORY = {"MARKETING": "Marketing", "UTILITY": "Utility", "AUTHENTICATION": "Authentication"}
REASON = {
    "ABUSIVE_CONTENT": "Abusive content", "INCORRECT_CATEGORY": "Wrong category", "INVALID_FORMAT": "Invalid format",
    "PROMOTIONAL": "Promotional content in a non-marketing template", "SCAM": "Looks like a scam",
    "TAG_CONTENT_MISMATCH": "Content does not match the category", "NONE": "No reason given",
}
LIMITS = {"header": HEADER_MAX, "body": BODY_MAX, "footer": FOOTER_MAX, "button_text": BUTTON_TEXT_MAX,
          "buttons": MAX_BUTTONS}


def labels() -> dict[str, dict[str, str]]:
    """The words the page shows for Meta's values, and the tone of each (good/warn/bad)."""
    return {"status": STATUS, "status_tone": STATUS_TONE, "quality": QUALITY, "quality_tone": QUALITY_TONE,
            "category": CATEGORY, "reason": REASON}


@router.get("/templates")
async def templates_page(request: Request, engine: EngineDep) -> Response:
    """The registry, the create form with its preview, sync."""
    user = await page_user(request, engine, "templates")
    if isinstance(user, Response):
        return user
    return render(request, "templates.html", {"user": user, "page_data": {"labels": labels(), "limits": LIMITS}})
