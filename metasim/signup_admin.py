"""The ``/_sim/signup`` admin API: seed Facebook users and their assets, inspect what Embedded Signup issued,
expire codes and inject faults into the onboarding calls."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request, Response

from metasim.calls import simulator
from metasim.signup_models import AccountCreate, AccountPublic, SignupFault

router = APIRouter(prefix="/_sim/signup")


@router.post("/accounts", status_code=201)
async def seed_account(account: AccountCreate, request: Request) -> AccountPublic:
    """Store a user (re-posting an email replaces that user's data); 409 for ids of another user."""
    try:
        return simulator(request).seed_account(account)
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from None


@router.get("/accounts")
async def accounts(request: Request) -> dict[str, list[AccountPublic]]:
    return {"accounts": [user.public() for user in simulator(request).signup.users.values()]}


@router.get("/tokens")
async def tokens(request: Request) -> dict[str, list[dict[str, Any]]]:
    """Every token the code exchange issued, oldest first."""
    sim = simulator(request)
    return {"tokens": [{"token": t.token, "waba_ids": list(t.waba_ids), "business_ids": list(t.business_ids),
                        "user_id": t.user_id, "revoked": t.token in sim.revoked}
                       for t in sim.signup.issued.values()]}


@router.post("/expire-codes")
async def expire_codes(request: Request) -> dict[str, int]:
    return {"expired": simulator(request).signup.expire_codes()}


@router.post("/faults")
async def set_fault(fault: SignupFault, request: Request) -> SignupFault:
    """The next ``times`` calls to the step answer the error (replaces the step's previous fault)."""
    simulator(request).signup.set_fault(fault)
    return fault


@router.delete("/faults")
async def clear_faults(request: Request) -> dict[str, int]:
    signup = simulator(request).signup
    cleared = len(signup.faults)
    signup.faults.clear()
    signup.remaining.clear()
    return {"cleared": cleared}


@router.get("/subscriptions")
async def subscriptions(request: Request) -> dict[str, list[str]]:
    """WABA id → ids of the apps subscribed to its webhooks."""
    return {waba_id: list(apps) for waba_id, apps in simulator(request).signup.subscriptions.items() if apps}


@router.get("/registrations")
async def registrations(request: Request) -> dict[str, dict[str, Any]]:
    """Phone number id → its latest PIN and how often it was registered."""
    return {number: asdict(r) for number, r in simulator(request).signup.registrations.items()}


@router.get("/requests")
async def requests(request: Request, step: str | None = None) -> Response:
    """The onboarding calls and dialog pages seen, oldest first (``step`` filters)."""
    log = simulator(request).signup.log
    return Response(orjson.dumps({"data": [e for e in log if step is None or e["step"] == step]}),
                    media_type="application/json")
