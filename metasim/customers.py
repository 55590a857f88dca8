"""The simulator's customers as Meta knows them: a phone number, a business-scoped user id (BSUID) and an
optional username; a username-only customer has no number at all.

A BSUID is scoped to the business portfolio (``Number.business_id``) and stays the person's across number
changes: it is derived from the first handle the simulator met them by (number or username), and a person
met by username who later shares a number keeps it. ``parent_user_id`` is the same person's id for the
parent (enterprise) portfolio.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

MAX_CUSTOMERS = 1_000_000  # a bound on the registry (a simulator's run never gets near it)


def bsuid(business_id: str, handle: str, *, parent: bool = False) -> str:
    """A deterministic BSUID shaped like Meta's (``US.`` and 20 digits; a parent's has ``US.ENT.``)."""
    digest = hashlib.sha256(f"{'ent' if parent else 'biz'}\x1f{business_id}\x1f{handle}".encode()).digest()
    digits = str(int.from_bytes(digest[:8], "big")).zfill(20)[:20]
    return f"US.ENT.{digits}" if parent else f"US.{digits}"


@dataclass(slots=True)
class Customer:
    business_id: str
    user_id: str
    parent_user_id: str
    phone: str | None = None
    username: str | None = None

    @property
    def key(self) -> str:
        """How the simulator's windows, limits and counts name the customer: the number, else the BSUID."""
        return self.phone or self.user_id

    def contact(self, name: str | None) -> dict[str, Any]:
        """The customer's ``contacts[]`` entry in a messages webhook."""
        profile: dict[str, Any] = {"name": name or self.username or "Customer"}
        if self.username:
            profile["username"] = self.username
        out: dict[str, Any] = {"profile": profile}
        if self.phone:
            out["wa_id"] = self.phone
        return {**out, "user_id": self.user_id, "parent_user_id": self.parent_user_id}

    def status_contact(self) -> dict[str, Any]:
        """The ``contacts[]`` entry of a status webhook: ``{wa_id, user_id}`` (no number, no ``wa_id``)."""
        return {**({"wa_id": self.phone} if self.phone else {}), "user_id": self.user_id}


class Customers:
    """Customers per business portfolio, found by number, username or BSUID."""

    def __init__(self) -> None:
        self._by: dict[tuple[str, str], Customer] = {}  # (business, "p:"/"u:"/"b:" + handle) → customer
        self._last_sent: dict[tuple[str, str], str] = {}  # (phone_number_id, customer key) → wamid
        self._wa_ids: dict[str, str] = {}  # a number as dialled → the WhatsApp id Meta knows it by

    def set_wa_id(self, number: str, wa_id: str) -> None:
        """Meta knows the account of ``number`` as ``wa_id`` (a Brazilian number registered before the 9th
        digit, say): a send to ``number`` reaches ``wa_id`` and Meta's answer names it."""
        if len(self._wa_ids) >= MAX_CUSTOMERS:
            self._wa_ids.clear()
        self._wa_ids[number] = wa_id

    def wa_id_of(self, number: str) -> str:
        """The WhatsApp id of the account a send to ``number`` reaches."""
        return self._wa_ids.get(number, number)

    def sent(self, phone_number_id: str, key: str, wamid: str) -> None:
        """A message was accepted for the customer: their next interactive reply answers it."""
        if len(self._last_sent) >= MAX_CUSTOMERS:
            self._last_sent.clear()
        self._last_sent[(phone_number_id, key)] = wamid

    def last_sent(self, phone_number_id: str, key: str) -> str | None:
        return self._last_sent.get((phone_number_id, key))

    def meet(self, business_id: str, *, phone: str | None, username: str | None) -> Customer:
        """The customer writing from ``phone`` and/or as ``username`` (created, or completed, as needed)."""
        found = (self._by.get((business_id, f"p:{phone}")) if phone else None) \
            or (self._by.get((business_id, f"u:{username}")) if username else None)
        if found is None:
            if len(self._by) >= MAX_CUSTOMERS:
                self._by.clear()
            handle = f"p:{phone}" if phone else f"u:{username}"
            found = Customer(business_id, bsuid(business_id, handle), bsuid(business_id, handle, parent=True))
            self._by[(business_id, f"b:{found.user_id}")] = found
        if phone and found.phone != phone:
            if found.phone:
                self._by.pop((business_id, f"p:{found.phone}"), None)
            found.phone = phone
        found.username = username or found.username
        for kind, name in (("p", found.phone), ("u", found.username)):
            if name:
                self._by[(business_id, f"{kind}:{name}")] = found
        return found

    def find(self, business_id: str, addressee: str) -> Customer | None:
        """The customer a send names by number (``to``) or BSUID (``recipient``)."""
        return self._by.get((business_id, f"b:{addressee}")) or self._by.get((business_id, f"p:{addressee}"))

    def clear(self) -> None:
        self._by.clear()
        self._last_sent.clear()
        self._wa_ids.clear()
