"""Embedded Signup's server side: exchange the code, discover, subscribe, register, store, publish.

``Onboarding.connect`` turns one ``SignupRequest`` into one ``SignupResult``. Meta is called first
(code → token, ``debug_token`` for the granted WABAs, ``/me/businesses``, each business's owned
WABAs, each WABA's numbers, ``subscribed_apps``, ``register`` for numbers still pending); only then
is anything written, in one transaction: the accounts with the token encrypted by the vault, and
the numbers with quality, tier and throughput. A failure at any step writes nothing and names the
step and Meta's code and message. The token lives in this process's memory only.

A failed attempt undoes only the webhook subscriptions it added itself: a WABA is recorded as
added when this tenant did not have it and ``GET subscribed_apps`` showed our app absent before
the ``POST``; at clean-up, a recorded WABA that some tenant has stored meanwhile is left alone too.
A WABA or number another tenant has connected is refused before anything is subscribed, so a
failed attempt can never cut another tenant's webhooks.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db.tables import phone_numbers, tenants, whatsapp_accounts
from dispatcher.exceptions import AmbiguousOutcome, DispatchError, GraphError
from dispatcher.graph import GraphClient
from schemas.meta_enums import THROUGHPUT_MPS, TIER_LIMITS
from schemas.signup import SignupNumber, SignupRequest, SignupResult, SignupStep, SignupWaba
from vault.cipher import Vault
from vault.exceptions import AccountOwnershipError
from vault.store import store_token

log = logging.getLogger(__name__)

T = TypeVar("T")

NUMBER_FIELDS = ("id,display_phone_number,verified_name,quality_rating,code_verification_status,status,"
                 "platform_type,throughput,messaging_limit_tier")
ATTEMPTS = 3  # per step, for failures that certainly did not reach Meta or that Meta calls transient
ANOTHER_TENANT = "This WhatsApp account is already connected to another Aerostic account."


class SignupFailed(Exception):
    """An attempt stopped at ``step``; ``message`` is Meta's (or ours) and safe to show."""

    def __init__(self, step: SignupStep, message: str, code: int | None = None) -> None:
        super().__init__(f"{step}: {message}")
        self.step, self.message, self.code = step, message, code


@dataclass
class Discovery:
    """What Meta granted, before anything is stored."""

    token: str
    wabas: list[SignupWaba] = field(default_factory=list)
    numbers: list[SignupNumber] = field(default_factory=list)
    pending: set[str] = field(default_factory=set)  # numbers whose status says they must be registered


def _meta_message(exc: DispatchError) -> tuple[str, int | None]:
    if isinstance(exc, GraphError):
        text = exc.title + (f": {exc.details}" if exc.details and exc.details != exc.title else "")
        return text or f"Meta error {exc.code}", exc.code
    return str(exc), None


def _page(body: dict[str, Any]) -> list[dict[str, Any]]:
    data = body.get("data")
    return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []


class Onboarding:
    """Connects a tenant's WhatsApp assets; one per dispatcher process."""

    def __init__(self, graph: GraphClient, engine: AsyncEngine, vault: Vault, *, app_id: str, app_secret: str,
                 retry_base_s: float = 0.5) -> None:
        self.graph, self.engine, self.vault = graph, engine, vault
        self.app_id, self._app_secret = app_id, app_secret
        self.retry_base_s = retry_base_s

    async def connect(self, request: SignupRequest) -> SignupResult:
        """Run the whole attempt; never raises for Meta's or the store's refusals (they become a result)."""
        subscribed: list[str] = []
        found: Discovery | None = None
        known: set[str] = set()
        try:
            known = await self._known_wabas(request.tenant_id)
            found = await self._discover(request)
            await self._refuse_others(request.tenant_id, found)
            await self._subscribe(found, known, subscribed)
            await self._register(found)
            await self._store(request.tenant_id, found)
        except SignupFailed as failed:
            if found is not None:
                await self._unsubscribe(subscribed, found.token)
            log.warning("signup %s of tenant %s failed at %s (code %s)", request.attempt_id[:8], request.tenant_id,
                        failed.step, failed.code)
            return SignupResult(event_id=f"{request.attempt_id}:result", tenant_id=request.tenant_id,
                                attempt_id=request.attempt_id, outcome="failed", step=failed.step,
                                error_code=failed.code, error_message=failed.message, finished_at=datetime.now(UTC))
        log.info("signup %s of tenant %s connected %d WABA(s), %d number(s)", request.attempt_id[:8],
                 request.tenant_id, len(found.wabas), len(found.numbers))
        return SignupResult(event_id=f"{request.attempt_id}:result", tenant_id=request.tenant_id,
                            attempt_id=request.attempt_id, outcome="connected",
                            reconnected=any(w.waba_id in known for w in found.wabas),
                            wabas=found.wabas, numbers=found.numbers, finished_at=datetime.now(UTC))

    # --- Meta ------------------------------------------------------------------------------

    async def _call(self, step: SignupStep, call: Callable[[], Awaitable[T]], *, repeatable: bool = True) -> T:
        """``call`` with retries of transient failures; any other failure becomes ``SignupFailed(step)``.

        ``repeatable=False`` (the code exchange: a code works once) retries only failures that certainly
        did not reach Meta.
        """
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await call()
            except DispatchError as exc:
                sent = isinstance(exc, AmbiguousOutcome | GraphError)
                retry = exc.is_transient and (repeatable or not sent) and attempt < ATTEMPTS
                if not retry:
                    message, code = _meta_message(exc)
                    raise SignupFailed(step, message, code) from exc
                await asyncio.sleep(self.retry_base_s * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    async def _discover(self, request: SignupRequest) -> Discovery:
        app_token = f"{self.app_id}|{self._app_secret}"
        exchanged = await self._call("exchange", partial(self.graph.call, "GET", "oauth/access_token", None, params={
            "client_id": self.app_id, "client_secret": self._app_secret, "code": request.code,
            "redirect_uri": request.redirect_uri}), repeatable=False)
        token = exchanged.get("access_token")
        if not isinstance(token, str) or not token:
            raise SignupFailed("exchange", "Meta answered the code exchange without an access token")
        found = Discovery(token=token)
        debug = await self._call("debug_token", partial(
            self.graph.call, "GET", "debug_token", None, params={"input_token": token, "access_token": app_token}))
        data = debug["data"] if isinstance(debug.get("data"), dict) else {}
        if data.get("is_valid") is not True:
            raise SignupFailed("debug_token", "Meta says the new token is not valid")
        granted = {str(t) for g in data.get("granular_scopes") or [] if isinstance(g, dict)
                   and g.get("scope") == "whatsapp_business_management" for t in g.get("target_ids") or []}
        if not granted:
            raise SignupFailed("debug_token", "No WhatsApp Business Account was shared. Connect again and "
                                              "choose a WhatsApp account to share.")
        businesses = _page(await self._call("businesses", partial(self.graph.call, "GET", "me/businesses", token)))
        for business in businesses:
            business_id = str(business.get("id"))
            owned = _page(await self._call("wabas", partial(
                self.graph.call, "GET", f"{business_id}/owned_whatsapp_business_accounts", token)))
            for item in owned:
                waba_id = str(item.get("id"))
                if waba_id in granted and waba_id not in {w.waba_id for w in found.wabas}:
                    found.wabas.append(SignupWaba(waba_id=waba_id, business_id=business_id,
                                                  name=item.get("name")))
        if not found.wabas:
            raise SignupFailed("wabas", "The shared WhatsApp Business Account was not found in any business "
                                        "the token can see.")
        for waba in found.wabas:
            listed = _page(await self._call("phone_numbers", partial(
                self.graph.call, "GET", f"{waba.waba_id}/phone_numbers", token, params={"fields": NUMBER_FIELDS})))
            for number in listed:
                found.numbers.append(_number(waba.waba_id, number))
                if str(number.get("status") or "").upper() in ("PENDING", "UNREGISTERED", "DISCONNECTED"):
                    found.pending.add(str(number.get("id")))
        if not found.numbers:
            raise SignupFailed("phone_numbers", "The shared WhatsApp Business Account has no phone number.")
        return found

    async def _subscribe(self, found: Discovery, known: set[str], subscribed: list[str]) -> None:
        """Subscribe our app to each WABA; ``subscribed`` gets those that were not subscribed before."""
        for waba in found.wabas:
            before = waba.waba_id in known or await self._app_subscribed(waba.waba_id, found.token)
            await self._call("subscribe", partial(self.graph.call, "POST", f"{waba.waba_id}/subscribed_apps",
                                                  found.token))
            if not before:
                subscribed.append(waba.waba_id)

    async def _app_subscribed(self, waba_id: str, token: str) -> bool:
        """Whether our app is already subscribed to ``waba_id``'s webhooks."""
        listed = _page(await self._call("subscribe", partial(self.graph.call, "GET", f"{waba_id}/subscribed_apps",
                                                             token)))
        return any(isinstance(app := item.get("whatsapp_business_api_data"), dict) and str(app.get("id")) == self.app_id
                   for item in listed)

    async def _register(self, found: Discovery) -> None:
        registered = []
        for number in found.numbers:
            if number.phone_number_id not in found.pending:
                registered.append(number)
                continue
            pin = f"{secrets.randbelow(10**6):06d}"  # two-step verification PIN; reset it in WhatsApp Manager
            await self._call("register", partial(self.graph.call, "POST", f"{number.phone_number_id}/register",
                                                 found.token, json={"messaging_product": "whatsapp", "pin": pin}))
            registered.append(number.model_copy(update={"registered": True}))
        found.numbers = registered

    async def _unsubscribe(self, wabas: list[str], token: str) -> None:
        """Undo this attempt's own subscriptions (best effort), except of WABAs some tenant stored meanwhile
        (or all of them when that cannot be checked: a subscription left behind only sends webhooks that
        are kept as unroutable, a removed one would silence a connected tenant)."""
        if not wabas:
            return
        try:
            stored = await self._stored_wabas(wabas)
        except Exception as exc:  # the database is unreachable: leave every subscription
            log.warning("subscriptions of WABA(s) %s not undone: their owner cannot be checked (%s)",
                        ", ".join(wabas), type(exc).__name__)
            return
        for waba_id in (w for w in wabas if w not in stored):
            try:
                await self.graph.call("DELETE", f"{waba_id}/subscribed_apps", token)
            except DispatchError as exc:
                log.warning("could not undo the webhook subscription of WABA %s: %s", waba_id, type(exc).__name__)

    # --- PostgreSQL ------------------------------------------------------------------------

    async def _known_wabas(self, tenant_id: str) -> set[str]:
        async with self.engine.connect() as conn:
            if (await conn.execute(select(tenants.c.id).where(tenants.c.id == tenant_id))).first() is None:
                raise SignupFailed("store", "This Aerostic account no longer exists.")
            rows = await conn.execute(select(whatsapp_accounts.c.waba_id)
                                      .where(whatsapp_accounts.c.tenant_id == tenant_id))
            return {r.waba_id for r in rows}

    async def _stored_wabas(self, wabas: list[str]) -> set[str]:
        """Those of ``wabas`` that any tenant has stored."""
        async with self.engine.connect() as conn:
            return set((await conn.execute(select(whatsapp_accounts.c.waba_id)
                                           .where(whatsapp_accounts.c.waba_id.in_(wabas)))).scalars())

    async def _refuse_others(self, tenant_id: str, found: Discovery) -> None:
        """Fail before subscribing anything when another tenant has connected one of the WABAs or numbers."""
        wabas, numbers = [w.waba_id for w in found.wabas], [n.phone_number_id for n in found.numbers]
        async with self.engine.connect() as conn:
            taken = (await conn.execute(select(whatsapp_accounts.c.waba_id).where(
                whatsapp_accounts.c.waba_id.in_(wabas), whatsapp_accounts.c.tenant_id != tenant_id))).first()
            taken = taken or (await conn.execute(select(phone_numbers.c.phone_number_id).where(
                phone_numbers.c.phone_number_id.in_(numbers), phone_numbers.c.tenant_id != tenant_id))).first()
        if taken is not None:
            raise SignupFailed("store", ANOTHER_TENANT)

    async def _store(self, tenant_id: str, found: Discovery) -> None:
        try:
            async with self.engine.begin() as conn:
                for waba in found.wabas:
                    numbers = [n for n in found.numbers if n.waba_id == waba.waba_id]
                    tiers = [TIER_LIMITS.get((n.messaging_limit_tier or "").upper(), 0) for n in numbers]
                    tier = None if any(t is None for t in tiers) else max((t for t in tiers if t), default=None)
                    await store_token(conn, self.vault, tenant_id=tenant_id, waba_id=waba.waba_id, token=found.token,
                                      business_id=waba.business_id, name=waba.name, tier_limit=tier)
                for number in found.numbers:
                    await _store_number(conn, tenant_id, number)
        except AccountOwnershipError as exc:
            raise SignupFailed("store", ANOTHER_TENANT) from exc


def _number(waba_id: str, raw: dict[str, Any]) -> SignupNumber:
    throughput = raw.get("throughput")
    level = str(throughput.get("level")).upper() if isinstance(throughput, dict) and throughput.get("level") else None
    if str(raw.get("platform_type") or "").upper() == "COEXISTENCE" or level == "COEXISTENCE":
        mps = THROUGHPUT_MPS["COEXISTENCE"]
    else:
        mps = THROUGHPUT_MPS.get(level or "", THROUGHPUT_MPS["STANDARD"])
    return SignupNumber(phone_number_id=str(raw.get("id")), waba_id=waba_id,
                        display_phone_number=raw.get("display_phone_number"), verified_name=raw.get("verified_name"),
                        quality_rating=raw.get("quality_rating"), messaging_limit_tier=raw.get("messaging_limit_tier"),
                        throughput_level=level, throughput_mps=mps)


async def _store_number(conn: AsyncConnection, tenant_id: str, number: SignupNumber) -> None:
    """Upsert one number for ``tenant_id``; refuse one that belongs to another tenant."""
    values = dict(phone_number_id=number.phone_number_id, tenant_id=tenant_id, waba_id=number.waba_id,
                  display_phone_number=number.display_phone_number, verified_name=number.verified_name,
                  quality_rating=number.quality_rating, messaging_limit_tier=number.messaging_limit_tier,
                  throughput_level=number.throughput_level, throughput_mps=number.throughput_mps, status="connected")
    new = insert(phone_numbers).values(**values)
    stored = await conn.execute(new.on_conflict_do_update(
        index_elements=[phone_numbers.c.phone_number_id],
        set_={k: new.excluded[k] for k in values if k not in ("phone_number_id", "tenant_id")}
        | {"attached_at": func.coalesce(phone_numbers.c.attached_at, func.now())},
        where=phone_numbers.c.tenant_id == new.excluded.tenant_id,
    ).returning(phone_numbers.c.phone_number_id))
    if stored.first() is None:
        raise AccountOwnershipError(f"phone number {number.phone_number_id} belongs to another tenant")
