"""The simulated Graph endpoints a Tech Provider calls after the code exchange: discovery, webhook
subscription and number registration.

Each checks the Bearer token (190, HTTP 401) and then the token's grant: an id the simulator does not
know answers 100 (subcode 33, "Unsupported get request ..."), one it knows but the token was not granted
answers 200 "(#200) Permissions error" (HTTP 403). Registering a number makes it a sending number.
https://developers.facebook.com/docs/whatsapp/embedded-signup/onboarding-customers-as-a-tech-provider
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request, Response

from metasim.calls import Access, Call, Outcome, authorised, denied, graph_call, missing, paged
from metasim.graph_errors import error_body
from metasim.signup import Registration, Subscription, WabaEntry
from metasim.signup_models import NumberSeed

router = APIRouter()
PIN = re.compile(r"\d{6}")
NUMBER_FIELDS = frozenset({"id", "display_phone_number", "verified_name", "quality_rating", "code_verification_status",
                           "status", "platform_type", "throughput", "messaging_limit_tier", "account_mode",
                           "name_status"})


@router.get("/{version:graph_version}/me/businesses")
async def my_businesses(version: str, request: Request) -> Response:
    return await graph_call(request, "businesses", _businesses)


@router.get("/{version:graph_version}/{business_id}/owned_whatsapp_business_accounts")
async def owned_wabas(version: str, business_id: str, request: Request) -> Response:
    return await graph_call(request, "owned_wabas", lambda call: _owned_wabas(call, business_id))


@router.get("/{version:graph_version}/{waba_id}/phone_numbers")
async def phone_numbers(version: str, waba_id: str, request: Request) -> Response:
    return await graph_call(request, "phone_numbers", lambda call: _phone_numbers(call, waba_id))


@router.api_route("/{version:graph_version}/{waba_id}/subscribed_apps", methods=["GET", "POST", "DELETE"])
async def subscribed_apps(version: str, waba_id: str, request: Request) -> Response:
    method = request.method
    return await graph_call(request, "subscribed_apps", lambda call: _subscribed_apps(call, waba_id, method))


@router.post("/{version:graph_version}/{phone_number_id}/register")
async def register(version: str, phone_number_id: str, request: Request) -> Response:
    return await graph_call(request, "register", lambda call: _register(call, phone_number_id))


def _businesses(call: Call) -> Outcome:
    access = authorised(call)
    signup = call.sim.signup
    return paged([{"id": business_id, "name": signup.businesses[business_id][0].name}
                  for business_id in sorted(access.business_ids) if business_id in signup.businesses])


def _owned_wabas(call: Call, business_id: str) -> Outcome:
    access = authorised(call)
    business = call.sim.signup.businesses.get(business_id)
    if business is None:
        raise missing("get", business_id)
    if business_id not in access.business_ids:
        raise denied()
    return paged([{"id": w.id, "name": w.name, "timezone_id": w.timezone_id,
                   "message_template_namespace": w.message_template_namespace}
                  for w in business[0].wabas if w.id in access.waba_ids])


def _phone_numbers(call: Call, waba_id: str) -> Outcome:
    access = authorised(call)
    waba = _granted_waba(call, access, waba_id, "get")
    rows = [_number_row(n) for n in waba.seed.numbers]
    fields = [f.split("{")[0].strip() for f in call.query.get("fields", "").split(",") if f.strip()]
    unknown = [f for f in fields if f not in NUMBER_FIELDS]
    if unknown:
        return error_body(100, message=f"(#100) Tried accessing nonexisting field ({unknown[0]}) on node type "
                                       "(WhatsAppBusinessPhoneNumber)")
    if fields:
        rows = [{k: v for k, v in row.items() if k == "id" or k in fields} for row in rows]
    return paged(rows)


def _subscribed_apps(call: Call, waba_id: str, method: str) -> Outcome:
    access = authorised(call)
    _granted_waba(call, access, waba_id, method.lower())
    config, subscriptions = call.sim.config, call.sim.signup.subscriptions
    if method == "POST":
        body = call.body if isinstance(call.body, dict) else {}
        uri = body.get("override_callback_uri")
        subscriptions.setdefault(waba_id, {})[config.app_id] = Subscription(str(uri) if uri else None)
        return 200, {"success": True}
    if method == "DELETE":
        subscriptions.get(waba_id, {}).pop(config.app_id, None)
        return 200, {"success": True}
    data: list[dict[str, Any]] = []
    for app_id, subscription in subscriptions.get(waba_id, {}).items():
        row: dict[str, Any] = {"whatsapp_business_api_data": {
            "id": app_id, "name": config.app_name, "link": f"https://www.facebook.com/games/?app_id={app_id}"}}
        if subscription.override_callback_uri:
            row["override_callback_uri"] = subscription.override_callback_uri
        data.append(row)
    return 200, {"data": data}


def _register(call: Call, phone_number_id: str) -> Outcome:
    access = authorised(call)
    entry = call.sim.signup.numbers.get(phone_number_id)
    if entry is None:
        raise missing("post", phone_number_id)
    if entry.waba_id not in access.waba_ids:
        raise denied()
    body: dict[str, Any] = call.body if isinstance(call.body, dict) else {}
    if body.get("messaging_product") != "whatsapp":
        return error_body(100, details="The parameter messaging_product is required and must be \"whatsapp\".")
    pin = body.get("pin")
    if not isinstance(pin, str) or PIN.fullmatch(pin) is None:
        return error_body(100, details="The parameter pin is required and must be a 6-digit string.")
    registration = call.sim.signup.registrations.setdefault(phone_number_id, Registration(pin))
    registration.pin, registration.count = pin, registration.count + 1
    call.sim.connect_number(phone_number_id)
    return 200, {"success": True}


def _granted_waba(call: Call, access: Access, waba_id: str, method: str) -> WabaEntry:
    waba = call.sim.signup.wabas.get(waba_id)
    if waba is None:
        raise missing(method, waba_id)
    if waba_id not in access.waba_ids:
        raise denied()
    return waba


def _number_row(number: NumberSeed) -> dict[str, Any]:
    return {"id": number.id, "display_phone_number": number.display_phone_number,
            "verified_name": number.verified_name, "quality_rating": number.quality_rating,
            "code_verification_status": number.code_verification_status, "status": number.status,
            "platform_type": number.platform_type, "throughput": {"level": number.throughput_level},
            "messaging_limit_tier": number.messaging_limit_tier, "account_mode": "LIVE", "name_status": "APPROVED"}
