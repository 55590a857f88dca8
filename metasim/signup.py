"""Embedded Signup's state: Facebook users and their assets, dialog sessions, one-time codes, issued tokens.

A seeded account (``POST /_sim/signup/accounts``, models in ``signup_models.py``) is a Facebook user with a
password and business portfolios holding WhatsApp Business Accounts (WABAs) and their phone numbers. The OAuth dialog
(``dialog.py``) logs the user in and turns their choice of business and WABA into a one-time code; the
exchange (``oauth.py``) turns the code into a token whose grant the onboarding endpoints
(``onboarding.py``) check. ``Signup`` only keeps this state: the sending registry (``Simulator.numbers``,
``Simulator.tokens``) changes through ``Simulator.seed_account``, ``issue_token`` and ``connect_number``.
https://developers.facebook.com/docs/whatsapp/embedded-signup
"""

from __future__ import annotations

import hashlib
import secrets
import string
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from metasim.signup_models import AccountCreate, AccountPublic, BusinessSeed, NumberSeed, SignupFault, WabaSeed

ALPHANUMERIC = string.ascii_letters + string.digits


@dataclass(slots=True)
class User:
    id: str
    email: str
    password: str
    name: str
    businesses: list[BusinessSeed]

    def public(self) -> AccountPublic:
        return AccountPublic(id=self.id, email=self.email, name=self.name, businesses=self.businesses)


@dataclass(frozen=True, slots=True)
class WabaEntry:
    seed: WabaSeed
    business_id: str


@dataclass(frozen=True, slots=True)
class NumberEntry:
    seed: NumberSeed
    waba_id: str
    business_id: str


@dataclass(slots=True)
class DialogSession:
    """One OAuth dialog from its first page to the redirect; single use, expires like a code."""

    id: str
    client_id: str
    redirect_uri: str
    state: str
    config_id: str
    extras: dict[str, Any]
    expires_at: float
    user: User | None = None
    used: bool = False


@dataclass(slots=True)
class CodeGrant:
    """What a one-time code stands for; ``waba_id`` is None when the user shared no WABA."""

    code: str
    client_id: str
    redirect_uri: str
    user: User
    business_id: str
    waba_id: str | None
    phone_number_id: str | None
    expires_at: float
    used: bool = False


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A never-expiring business token issued by the code exchange."""

    token: str
    user_id: str
    business_ids: tuple[str, ...]
    waba_ids: tuple[str, ...]
    issued_at: float


@dataclass(slots=True)
class Registration:
    pin: str
    count: int = 0


@dataclass(slots=True)
class Subscription:
    override_callback_uri: str | None = None


class CodeRefused(Exception):
    """The code exchange's answer for an unusable code: Graph error 100 with this subcode and message."""

    def __init__(self, subcode: int, message: str) -> None:
        super().__init__(message)
        self.subcode = subcode
        self.message = message


def user_id(email: str) -> str:
    """A stable Facebook-style numeric user id for an email."""
    return str(10**14 + int(hashlib.sha256(email.encode()).hexdigest()[:12], 16) % (9 * 10**14))


def new_code() -> str:
    """A one-time OAuth code shaped like Meta's (``AQ`` and about 130 URL-safe characters)."""
    return "AQ" + secrets.token_urlsafe(96)


def new_token() -> str:
    """A business token shaped like Meta's (``EAAG`` and alphanumerics)."""
    return "EAAG" + "".join(secrets.choice(ALPHANUMERIC) for _ in range(180))


@dataclass(slots=True)
class Signup:
    """Everything Embedded Signup knows; ids of businesses, WABAs and numbers are global."""

    ttl_s: float
    clock: Callable[[], float]
    log_max: int = 10_000
    users: dict[str, User] = field(default_factory=dict)
    businesses: dict[str, tuple[BusinessSeed, str]] = field(default_factory=dict)
    wabas: dict[str, WabaEntry] = field(default_factory=dict)
    numbers: dict[str, NumberEntry] = field(default_factory=dict)
    dialogs: dict[str, DialogSession] = field(default_factory=dict)
    codes: dict[str, CodeGrant] = field(default_factory=dict)
    issued: dict[str, IssuedToken] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Subscription]] = field(default_factory=dict)
    registrations: dict[str, Registration] = field(default_factory=dict)
    faults: dict[str, SignupFault] = field(default_factory=dict)
    remaining: dict[str, int] = field(default_factory=dict)
    log: deque[dict[str, Any]] = field(default_factory=deque)

    # --- accounts --------------------------------------------------------------------------------

    def seed(self, account: AccountCreate) -> tuple[User, list[str]]:
        """Store (or replace) a user; returns them and the number ids their previous data held.

        Raises ``ValueError`` when an id belongs to another user's account.
        """
        email = account.email.strip().lower()
        taken = [b.id for b in account.businesses if b.id in self.businesses and self.businesses[b.id][1] != email]
        taken += [w.id for b in account.businesses for w in b.wabas
                  if w.id in self.wabas and self.businesses[self.wabas[w.id].business_id][1] != email]
        taken += [n.id for b in account.businesses for w in b.wabas for n in w.numbers
                  if n.id in self.numbers and self.businesses[self.numbers[n.id].business_id][1] != email]
        if taken:
            raise ValueError(f"ids already seeded for another user: {', '.join(taken)}")
        previous = self.users.pop(email, None)
        dropped = self._forget(previous) if previous else []
        user = User(user_id(email), email, account.password, account.name, account.businesses)
        self.users[email] = user
        for business in user.businesses:
            self.businesses[business.id] = (business, email)
            for waba in business.wabas:
                self.wabas[waba.id] = WabaEntry(waba, business.id)
                for number in waba.numbers:
                    self.numbers[number.id] = NumberEntry(number, waba.id, business.id)
        return user, dropped

    def _forget(self, user: User) -> list[str]:
        numbers = [n.id for b in user.businesses for w in b.wabas for n in w.numbers]
        for business in user.businesses:
            self.businesses.pop(business.id, None)
            for waba in business.wabas:
                self.wabas.pop(waba.id, None)
        for number_id in numbers:
            self.numbers.pop(number_id, None)
        return numbers

    def login(self, email: str, password: str) -> User | None:
        user = self.users.get(email.strip().lower())
        if user is None or not secrets.compare_digest(user.password.encode(), password.encode()):
            return None
        return user

    def owns(self, user: User, *, business_id: str, waba_id: str | None) -> bool:
        """Whether the business is the user's and the WABA (if any) is that business's."""
        business = self.businesses.get(business_id)
        if business is None or business[1] != user.email:
            return False
        return waba_id is None or (waba_id in self.wabas and self.wabas[waba_id].business_id == business_id)

    # --- dialog and codes -------------------------------------------------------------------------

    def open_dialog(self, *, client_id: str, redirect_uri: str, state: str, config_id: str,
                    extras: dict[str, Any]) -> DialogSession:
        now = self.clock()
        self.dialogs = {k: d for k, d in self.dialogs.items() if d.expires_at > now and not d.used}
        session = DialogSession(secrets.token_urlsafe(24), client_id, redirect_uri, state, config_id, extras,
                                expires_at=now + self.ttl_s)
        self.dialogs[session.id] = session
        return session

    def dialog(self, dialog_id: str) -> DialogSession | None:
        """The live dialog session of that id (not used, not expired)."""
        session = self.dialogs.get(dialog_id)
        if session is None or session.used or session.expires_at <= self.clock():
            return None
        return session

    def issue_code(self, session: DialogSession, *, business_id: str, waba_id: str | None,
                   phone_number_id: str | None) -> str:
        """Close the dialog and remember what its one-time code grants."""
        assert session.user is not None
        session.used = True
        code = new_code()
        self.codes[code] = CodeGrant(code, session.client_id, session.redirect_uri, session.user, business_id,
                                     waba_id, phone_number_id, expires_at=self.clock() + self.ttl_s)
        return code

    def redeem(self, code: str, redirect_uri: str | None) -> CodeGrant:
        """Consume a code (its first exchange attempt does, even a refused one); raises ``CodeRefused``."""
        grant = self.codes.get(code)
        if grant is None:
            raise CodeRefused(36008, "Invalid verification code format.")
        if grant.used:
            raise CodeRefused(36009, "This authorization code has been used.")
        grant.used = True
        if grant.expires_at <= self.clock():
            raise CodeRefused(36007, "This authorization code has expired.")
        if redirect_uri is not None and redirect_uri != grant.redirect_uri:
            raise CodeRefused(36008, "Error validating verification code. Please make sure your redirect_uri is "
                                     "identical to the one you used in the OAuth dialog request")
        return grant

    def expire_codes(self) -> int:
        """Expire every outstanding code; returns how many."""
        now = self.clock()
        live = [g for g in self.codes.values() if not g.used and g.expires_at > now]
        for grant in live:
            grant.expires_at = now
        return len(live)

    # --- grants, faults, log --------------------------------------------------------------------

    def businesses_of(self, token: str, waba_ids: set[str]) -> list[str]:
        """Businesses a token grants: the exchange's choice, else the owners of its WABAs (admin tokens)."""
        issued = self.issued.get(token)
        if issued is not None:
            return list(issued.business_ids)
        return sorted({self.wabas[w].business_id for w in waba_ids if w in self.wabas})

    def take_fault(self, step: str) -> SignupFault | None:
        """The fault set for ``step``, counting one use of it."""
        fault = self.faults.get(step)
        if fault is None:
            return None
        self.remaining[step] -= 1
        if self.remaining[step] <= 0:
            del self.faults[step], self.remaining[step]
        return fault

    def set_fault(self, fault: SignupFault) -> None:
        self.faults[fault.step] = fault
        self.remaining[fault.step] = fault.times

    def record(self, entry: dict[str, Any]) -> None:
        if len(self.log) >= self.log_max:
            self.log.popleft()
        self.log.append(entry)
