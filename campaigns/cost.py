"""A campaign's cost estimate: Σ rate(category, recipient's country) from a configurable rate table.

Meta charges per delivered template (since 1 July 2025) by category and the recipient's country; the table
maps a category to country calling codes (longest prefix wins) and a ``*`` fallback, in USD per message.
The default is illustrative, not Meta's price list: operators set theirs (``AEROSTIC_CAMPAIGN_RATES``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping

RateTable = Mapping[str, Mapping[str, float]]

DEFAULT_RATES: dict[str, dict[str, float]] = {
    "marketing": {"1": 0.025, "44": 0.0529, "49": 0.1365, "55": 0.0625, "91": 0.0107, "*": 0.0592},
    "utility": {"1": 0.004, "44": 0.022, "49": 0.0456, "55": 0.008, "91": 0.0014, "*": 0.0113},
    "authentication": {"1": 0.0135, "44": 0.0358, "49": 0.0768, "55": 0.0315, "91": 0.0014, "*": 0.0113},
}


def parse_rates(text: str) -> dict[str, dict[str, float]]:
    """A rate table from JSON (``{"marketing": {"44": 0.05, "*": 0.06}, ...}``); empty text: the default."""
    if not text.strip():
        return DEFAULT_RATES
    table = json.loads(text)
    if not isinstance(table, dict):
        raise ValueError("the rate table is a JSON object of categories")
    return {str(cat).lower(): {str(code): float(rate) for code, rate in rates.items()} for cat, rates in table.items()}


def rate(table: RateTable, category: str, wa_id: str) -> float:
    """The price of one ``category`` message to ``wa_id`` (digits with country code)."""
    rates = table.get(category.lower()) or {}
    for length in (4, 3, 2, 1):
        if wa_id[:length] in rates:
            return rates[wa_id[:length]]
    return rates.get("*", 0.0)


def estimate(table: RateTable, category: str, wa_ids: Iterable[str]) -> dict[str, object]:
    """Total and per-country-code breakdown for the given recipients."""
    total = 0.0
    by_rate: Counter[float] = Counter()
    count = 0
    for wa_id in wa_ids:
        price = rate(table, category, wa_id)
        total += price
        by_rate[price] += 1
        count += 1
    return {"currency": "USD", "category": category.lower(), "recipients": count, "total": round(total, 4),
            "by_rate": [{"rate": r, "recipients": n} for r, n in sorted(by_rate.items())]}
