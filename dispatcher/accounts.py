"""What the dispatcher needs to know about a sending number: owner, limits, account state, token.

Profiles are read from PostgreSQL (``phone_numbers`` joined with ``whatsapp_accounts``) and
cached for a few seconds; the token is decrypted here, in the dispatcher only, and cached
briefly in memory. ``mark_needs_reauth`` records a 190 from Meta so sends are held.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from db.shared_reads import SharedReads
from db.tables import phone_numbers, whatsapp_accounts
from schemas.events import AccountEvent
from vault.cipher import Vault
from vault.exceptions import AccountNotFoundError
from vault.store import set_status

# account_update events after which Meta no longer lets us send for the WABA
# (https://developers.facebook.com/docs/whatsapp/embedded-signup/webhooks): held until reconnected.
DISCONNECTING_EVENTS = frozenset({"PARTNER_REMOVED", "PARTNER_APP_UNINSTALLED", "ACCOUNT_DELETED",
                                  "ACCOUNT_OFFBOARDED"})
RATES_MAX = 100_000  # numbers whose throughput is remembered (all forgotten when reached)


@dataclass(frozen=True, slots=True)
class NumberProfile:
    """One sending number as the dispatcher sees it."""

    phone_number_id: str
    tenant_id: str
    waba_id: str
    business_id: str | None
    throughput_mps: int
    tier_limit: int | None
    account_status: str
    token_ciphertext: bytes | None
    token_key_id: str | None

    @property
    def sendable(self) -> bool:
        return self.account_status == "connected" and self.token_ciphertext is not None


class Accounts:
    """Cached number profiles and decrypted tokens."""

    def __init__(self, engine: AsyncEngine, vault: Vault, *, ttl_s: float = 5.0, token_ttl_s: float = 60.0) -> None:
        self.engine = engine
        self.vault = vault
        self.token_ttl_s = token_ttl_s
        self._profiles: SharedReads[str, NumberProfile | None] = SharedReads(ttl_s)
        self._tokens: dict[tuple[str, str, bytes], tuple[float, str]] = {}
        self._rates: dict[str, float] = {}  # the last throughput read of each number (``rate``)
        self.on_rate: Callable[[str], None] | None = None  # called with a number whose rate was read and changed

    async def profile(self, phone_number_id: str) -> NumberProfile | None:
        """The number's profile (None when it is unknown or has no account).

        One read at a time per number: when the cached profile expires, every send in flight on the number
        (hundreds) would otherwise query PostgreSQL at once; they share the first one's read instead.
        """
        return await self._profiles.get(phone_number_id, partial(self._read, phone_number_id))

    def rate(self, phone_number_id: str) -> float | None:
        """The number's messages per second as last read, without waiting (None: not read yet)."""
        return self._rates.get(phone_number_id)

    async def _read(self, phone_number_id: str) -> NumberProfile | None:
        query = (select(phone_numbers.c.tenant_id, phone_numbers.c.waba_id, phone_numbers.c.throughput_mps,
                        whatsapp_accounts.c.business_id, whatsapp_accounts.c.tier_limit,
                        whatsapp_accounts.c.status, whatsapp_accounts.c.token_ciphertext,
                        whatsapp_accounts.c.token_key_id)
                 .join(whatsapp_accounts, (whatsapp_accounts.c.waba_id == phone_numbers.c.waba_id)
                       & (whatsapp_accounts.c.tenant_id == phone_numbers.c.tenant_id))
                 .where(phone_numbers.c.phone_number_id == phone_number_id, phone_numbers.c.status == "connected"))
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        if len(self._rates) >= RATES_MAX and phone_number_id not in self._rates:
            self._rates.clear()
        rate = float(row.throughput_mps)  # kept once per read, not once per send
        known = self._rates.get(phone_number_id)
        self._rates[phone_number_id] = rate
        if rate != known and self.on_rate is not None:
            self.on_rate(phone_number_id)
        return NumberProfile(
            phone_number_id=phone_number_id, tenant_id=str(row.tenant_id), waba_id=row.waba_id,
            business_id=row.business_id, throughput_mps=row.throughput_mps, tier_limit=row.tier_limit,
            account_status=row.status, token_ciphertext=row.token_ciphertext, token_key_id=row.token_key_id)

    def token(self, profile: NumberProfile) -> str:
        """The plaintext token of the number's account (decrypted here only, cached briefly)."""
        if profile.token_ciphertext is None or profile.token_key_id is None:
            raise LookupError(f"no token stored for WABA {profile.waba_id}")
        key = (profile.waba_id, profile.token_key_id, profile.token_ciphertext)
        now = time.monotonic()
        cached = self._tokens.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        token = self.vault.decrypt(profile.token_ciphertext, profile.token_key_id, aad=profile.waba_id)
        self._tokens[key] = (now + self.token_ttl_s, token)
        return token

    def forget(self, phone_number_id: str) -> None:
        """Drop the cached profile so the next lookup reads PostgreSQL again."""
        self._profiles.forget(phone_number_id)

    async def mark_needs_reauth(self, profile: NumberProfile, reason: str) -> None:
        """Meta refused the token (190): hold the account's sends until it is re-authorised."""
        async with self.engine.begin() as conn:
            await set_status(conn, tenant_id=profile.tenant_id, waba_id=profile.waba_id, status="needs_reauth",
                             reason=reason)
        self._tokens = {k: v for k, v in self._tokens.items() if k[0] != profile.waba_id}
        self.forget(profile.phone_number_id)

    async def apply(self, event: AccountEvent) -> bool:
        """Mark the tenant's WABA ``disconnected`` after a disconnecting ``account_update``; True if it did."""
        name = (event.event or "").upper()
        if event.field != "account_update" or name not in DISCONNECTING_EVENTS or event.tenant_id is None:
            return False
        info = event.payload.get("waba_info")
        waba_id = str(info.get("waba_id")) if isinstance(info, dict) and info.get("waba_id") else event.waba_id
        try:
            async with self.engine.begin() as conn:
                await set_status(conn, tenant_id=event.tenant_id, waba_id=waba_id, status="disconnected",
                                 reason=name)
        except AccountNotFoundError:
            return False
        self._profiles.clear()
        self._tokens = {k: v for k, v in self._tokens.items() if k[0] != waba_id}
        return True
