"""Meta's words as people read them: one table per kind of value, Meta's own value kept for the hover.

Meta answers in codes (``GREEN``, ``TIER_1K``, ``STANDARD``, ``PENDING_DELETION``); the console shows
the human label and keeps the code in ``title`` (``<span title="GREEN">High</span>``) so that support
and Meta's documentation still line up. Pages call the ``meta`` filter (``{{ n.quality_rating |
meta("quality") }}``); their scripts read the same tables from ``script_tables()`` so that a row
re-rendered in the browser says the same thing. Values are as Meta sends them (``metasim.limits``
mirrors the tiers and throughput levels); a value not listed reads as its words, capitalised.
"""

from __future__ import annotations

from collections.abc import Mapping

from markupsafe import Markup, escape

MISSING = "—"

QUALITY = {"GREEN": "High", "YELLOW": "Medium", "RED": "Low", "UNKNOWN": "Not yet rated"}
# Unique customers a business may start conversations with in a rolling 24 hours.
TIER = {
    "TIER_50": "50 customers a day",
    "TIER_250": "250 customers a day",
    "TIER_1K": "1,000 customers a day",
    "TIER_2K": "2,000 customers a day",
    "TIER_10K": "10,000 customers a day",
    "TIER_100K": "100,000 customers a day",
    "TIER_UNLIMITED": "Unlimited customers a day",
}
THROUGHPUT = {"STANDARD": "80 messages/s", "HIGH": "1,000 messages/s", "COEXISTENCE": "20 messages/s"}
# The messages per second of each level (Meta's phone field ``throughput.level``; the platform stores the rate).
THROUGHPUT_LEVEL_OF_MPS = {80: "STANDARD", 1000: "HIGH", 20: "COEXISTENCE"}
TEMPLATE_STATUS = {
    "APPROVED": "Approved",
    "PENDING": "In review",
    "REJECTED": "Rejected",
    "PAUSED": "Paused",
    "DISABLED": "Disabled",
    "IN_APPEAL": "In appeal",
    "PENDING_DELETION": "Being deleted",
    "DELETED": "Deleted",
    "LIMIT_EXCEEDED": "Limit exceeded",
    "ARCHIVED": "Archived",
    "FLAGGED": "Flagged",
    "REINSTATED": "Reinstated",
}
TEMPLATE_QUALITY = {"GREEN": "High quality", "YELLOW": "Medium quality", "RED": "Low quality",
                    "UNKNOWN": "Not yet rated"}
TEMPLATE_CATEGORY = {"MARKETING": "Marketing", "UTILITY": "Utility", "AUTHENTICATION": "Authentication"}
NAME_STATUS = {
    "APPROVED": "Approved",
    "AVAILABLE_WITHOUT_REVIEW": "Usable, review pending",
    "PENDING_REVIEW": "In review",
    "DECLINED": "Declined",
    "EXPIRED": "Expired",
    "NONE": "Not submitted",
    "NON_EXISTS": "Not submitted",
}
ACCOUNT_REVIEW = {"APPROVED": "Approved", "PENDING": "In review", "REJECTED": "Rejected"}
NUMBER_STATUS = {"CONNECTED": "Connected", "PENDING": "Pending", "LINKED": "Linked", "UNLINKED": "Unlinked",
                 "DELETED": "Deleted", "MIGRATED": "Migrated", "BANNED": "Banned", "RESTRICTED": "Restricted",
                 "FLAGGED": "Flagged", "DISCONNECTED": "Disconnected"}

KINDS: dict[str, Mapping[str, str]] = {
    "quality": QUALITY,
    "tier": TIER,
    "throughput": THROUGHPUT,
    "template_status": TEMPLATE_STATUS,
    "template_quality": TEMPLATE_QUALITY,
    "template_category": TEMPLATE_CATEGORY,
    "name_status": NAME_STATUS,
    "account_review": ACCOUNT_REVIEW,
    "number_status": NUMBER_STATUS,
}


def _words(value: str) -> str:
    """An unlisted code as words: ``SOME_NEW_VALUE`` → ``Some new value``."""
    return value.replace("_", " ").strip().capitalize()


def meta_value(kind: str, value: object) -> str | None:
    """Meta's code for ``value`` (a throughput given in messages per second maps back to its level)."""
    if value is None or value == "":
        return None
    if kind == "throughput" and isinstance(value, int) and not isinstance(value, bool):
        return THROUGHPUT_LEVEL_OF_MPS.get(value, str(value))
    return str(value)


def label(kind: str, value: object) -> str:
    """The human words for Meta's ``value`` of ``kind`` (a key of ``KINDS``); ``—`` when there is none."""
    if kind not in KINDS:
        raise KeyError(f"no labels for {kind!r}")
    if kind == "throughput" and isinstance(value, int) and not isinstance(value, bool) \
            and value not in THROUGHPUT_LEVEL_OF_MPS:
        return f"{value:,} messages/s"
    code = meta_value(kind, value)
    if code is None:
        return MISSING
    table = KINDS[kind]
    return table.get(code) or table.get(code.upper()) or _words(code)


def meta_span(value: object, kind: str) -> Markup:
    """``<span title="GREEN">High</span>``: the label, Meta's value on hover (just ``—`` when there is none)."""
    code = meta_value(kind, value)
    if code is None:
        return Markup('<span class="meta-missing">{}</span>').format(MISSING)
    return Markup('<span class="meta-value" title="{}" data-meta="{}">{}</span>').format(
        code, code, escape(label(kind, value)))


def script_tables() -> dict[str, object]:
    """The tables for a page's script (``AerosticLabels`` in ``static/labels.js`` reads them)."""
    return {"kinds": {kind: dict(table) for kind, table in KINDS.items()},
            "throughput_levels": {str(mps): level for mps, level in THROUGHPUT_LEVEL_OF_MPS.items()},
            "missing": MISSING}
