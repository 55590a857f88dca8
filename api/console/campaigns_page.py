"""The console's Campaigns pages (admins): the list with state and progress, the create wizard (template →
audience → variables → schedule → review with a preview and a cost estimate → launch) and a campaign's page
with its live funnel, pause / resume / cancel, its recipients by state and their CSV export.

Pages are shells rendered here; ``static/campaigns.js`` fills them from ``/v1/campaigns`` (the review step
saves the campaign as a draft to ask the API for its preview and estimate). A campaign's page follows the live
feed's ``campaign`` events (the layout's ``static/live.js``: ``AerosticLive``) and reads the campaign again on
each one.

The facts the review step shows (sources: the project's reference notes on campaigns, section 2):
- Meta charges per delivered template since 1 July 2025, by category and the recipient's country
  (Vonage "WhatsApp Pricing Updates 1st July 2025"; WATI "Message-based pricing"). The amount is an estimate:
  Σ of the operator's rate table (``AEROSTIC_CAMPAIGN_RATES``, illustrative defaults, ``campaigns.cost``) over
  the audience, not Meta's invoice.
- Messaging limits count unique users reached outside the customer-service window over a moving 24 hours,
  per business portfolio; tiers 250 → 2,000 → 10K → 100K → unlimited (Meta, "Messaging limits", developers.
  facebook.com/documentation/business-messaging/whatsapp/messaging-limits). ``schemas.meta_enums.TIER_LIMITS``
  is that ladder as the number's ``messaging_limit_tier`` names it.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from api.console.access import page
from api.deps import EngineDep
from campaigns.states import CampaignState, RecipientState
from schemas.meta_enums import TIER_LIMITS

router = APIRouter(prefix="/console", tags=["console pages"], include_in_schema=False)

STATES = {"draft": "Draft", "scheduled": "Scheduled", "running": "Sending", "paused": "Paused",
          "completed": "Completed", "cancelled": "Cancelled", "failed": "Failed"}
STATE_TONE = {"running": "good", "completed": "good", "scheduled": "warn", "paused": "warn", "cancelled": "bad",
              "failed": "bad"}
RECIPIENT_STATES = {"queued": "Waiting", "skipped": "Skipped", "submitted": "Sent to Meta", "sent": "Sent",
                    "delivered": "Delivered", "read": "Read", "replied": "Replied",
                    "failed": "Failed"}
SKIP_REASONS = {"opted_out": "Opted out", "meta_stop": "Stopped marketing at Meta", "duplicate": "Duplicate",
                "invalid_e164": "Not a valid number", "not_whatsapp": "Not on WhatsApp",
                "us_marketing_block": "US number (Meta sends no marketing to +1)",
                "cooldown_131049": "Meta's per-person marketing limit", "portfolio_budget": "Daily limit reached",
                "template_not_approved": "Template not approved",
                "account_needs_reauth": "WhatsApp account needs reconnecting (Meta refused its token)",
                "account_disconnected": "WhatsApp account disconnected"}
PRICING_NOTE = ("Estimate: recipients times the per-message rate for the template's category in each recipient's "
                "country, from the rate table this Aerostic installation is configured with (illustrative rates "
                "unless the operator set Meta's current ones). Meta charges per delivered template since "
                "1 July 2025 (sources: Vonage and WATI pricing notes, 2025), so undelivered messages cost nothing.")
TIER_NOTE = ("Meta's messaging limit: unique people reached outside a 24-hour customer-service window in a moving "
             "24 hours, per business portfolio (Meta, Messaging limits). Recipients past it wait for the next day.")


def _data() -> dict[str, object]:
    return {"states": STATES, "state_tone": STATE_TONE, "recipient_states": RECIPIENT_STATES,
            "skip_reasons": SKIP_REASONS, "tier_limits": TIER_LIMITS, "pricing_note": PRICING_NOTE,
            "tier_note": TIER_NOTE}


@router.get("/campaigns")
async def campaigns_page(request: Request, engine: EngineDep) -> Response:
    """The tenant's campaigns with their state and progress."""
    return await page(request, engine, "campaigns", "campaigns.html", {"page_data": _data()})


@router.get("/campaigns/new")
async def campaign_wizard(request: Request, engine: EngineDep) -> Response:
    """The create wizard."""
    return await page(request, engine, "campaigns", "campaign_new.html", {"page_data": _data()})


@router.get("/campaigns/{campaign_id}")
async def campaign_page(campaign_id: uuid.UUID, request: Request, engine: EngineDep) -> Response:
    """One campaign: its live funnel, its commands, its recipients (the API answers 404 for another tenant's)."""
    return await page(request, engine, "campaigns", "campaign.html", {"page_data": {
        **_data(), "campaign_id": str(campaign_id),
        "recipient_state_values": [s.value for s in RecipientState],
        "final_states": [s.value for s in (CampaignState.COMPLETED, CampaignState.CANCELLED)]}})
