"""Who a customer is: Meta names a person by phone number (``wa_id``), by business-scoped user id (BSUID,
``US.1349…``) or both, and a username-only customer has no number at all (pure; no I/O).

Aerostic keeps **one identity per person and tenant**: the first one Meta gave (the phone number when a
message carries both the first time, else the BSUID). Every other identity seen with it is an alias of
that one (``contact_identities``), so a conversation keyed by a number keeps its key when a later webhook
adds a BSUID, and one keyed by a BSUID keeps its key when the person shares a number.
"""

from __future__ import annotations

import re
from typing import NamedTuple

# Meta's BSUIDs: a two-letter country code, a dot, then digits ("US.13491208655302741918"); a parent
# (business portfolio) one has ".ENT." before the digits. Phone numbers are digits only.
BSUID = re.compile(r"[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,64}")


def is_bsuid(value: str | None) -> bool:
    """True for a business-scoped user id (sent to Meta as ``recipient``), False for a phone number."""
    return bool(value) and BSUID.fullmatch(value or "") is not None


class Identity(NamedTuple):
    """What one webhook says about a customer: any of phone number, BSUID and username."""

    phone: str | None
    user_id: str | None
    username: str | None = None

    @property
    def names(self) -> list[str]:
        """The identities a person can be found by (phone first)."""
        return [n for n in (self.phone, self.user_id) if n]

    @property
    def first(self) -> str:
        """The identity a person with no record yet is keyed by: the number if Meta gave one, else the BSUID."""
        return self.phone or self.user_id or ""


def canonical(identity: Identity, known: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The person's one identity, and the aliases to record (identity → canonical, write-once).

    ``known`` maps identities already recorded to their canonical identity. The BSUID's record wins over
    the number's (a BSUID is stable for the person across number changes; a number can be given up and
    reused), then the number's; with neither recorded the person is new and keyed by ``identity.first``.
    A number already recorded for someone else stays theirs (records are never re-pointed), but this
    message goes to the BSUID's conversation.
    """
    chosen = next((known[n] for n in (identity.user_id, identity.phone) if n and n in known), identity.first)
    return chosen, {n: chosen for n in identity.names if n not in known}
