"""The simulated OAuth endpoints of Embedded Signup: the code exchange and ``debug_token``.

``GET /{v}/oauth/access_token`` turns a one-time code from the dialog (``dialog.py``) into a never-expiring
business token granting the business and WABA the user chose; ``GET /{v}/debug_token`` tells what a token
grants. Errors follow Meta's OAuth bodies: 101 bad app id, 1 bad secret, 100 with subcodes 36007 (expired),
36008 (unknown code or other redirect_uri) and 36009 (used), all HTTP 400.
https://developers.facebook.com/docs/facebook-login/guides/advanced/manual-flow#confirm
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request, Response

from metasim.calls import Call, Outcome, graph_call
from metasim.graph_errors import graph_error
from metasim.signup import CodeRefused

router = APIRouter()
WHATSAPP_SCOPES = ("whatsapp_business_management", "whatsapp_business_messaging")
SCOPES = [*WHATSAPP_SCOPES, "business_management"]
INVALIDATED = ("Error validating access token: The session has been invalidated because the user changed their "
               "password or Facebook has changed the session for security reasons.")


@router.api_route("/{version:graph_version}/oauth/access_token", methods=["GET", "POST"])
async def access_token(version: str, request: Request) -> Response:
    return await graph_call(request, "access_token", _exchange)


@router.get("/{version:graph_version}/debug_token")
async def debug_token(version: str, request: Request) -> Response:
    return await graph_call(request, "debug_token", _debug)


def _exchange(call: Call) -> Outcome:
    """Check the app, then consume the code and issue a token."""
    sim, params = call.sim, {**call.query, **(call.body if isinstance(call.body, dict) else {})}
    if params.get("client_id") != sim.config.app_id:
        return graph_error(101, "Error validating application. Invalid application ID.")
    secret = sim.config.app_secret.get_secret_value().encode()
    if not secrets.compare_digest(str(params.get("client_secret", "")).encode(), secret):
        return graph_error(1, "Error validating client secret.")
    code = str(params.get("code", ""))
    if not code:
        return graph_error(100, "Missing authorization code")
    try:
        grant = sim.signup.redeem(code, str(params["redirect_uri"]) if params.get("redirect_uri") else None)
    except CodeRefused as refused:
        return graph_error(100, refused.message, subcode=refused.subcode)
    issued = sim.issue_token(grant)
    return 200, {"access_token": issued.token, "token_type": "bearer"}


def _debug(call: Call) -> Outcome:
    """``data`` about ``input_token``, for a caller holding the app access token ``<app_id>|<app_secret>``."""
    sim = call.sim
    config = sim.config
    if not secrets.compare_digest(call.token.encode(),
                                  f"{config.app_id}|{config.app_secret.get_secret_value()}".encode()):
        return graph_error(190, "Invalid OAuth access token.")
    token = call.query.get("input_token", "")
    if not token:
        return graph_error(100, "(#100) The parameter input_token is required")
    if token not in sim.tokens:
        return 200, {"data": {"error": {"code": 190, "message": "Invalid OAuth access token."},
                              "is_valid": False, "scopes": []}}
    wabas = sorted(sim.tokens[token])
    businesses = sim.signup.businesses_of(token, sim.tokens[token])
    issued = sim.signup.issued.get(token)
    data = {"app_id": config.app_id, "type": "SYSTEM_USER", "application": config.app_name, "is_valid": True,
            "expires_at": 0, "data_access_expires_at": 0, "scopes": SCOPES,
            "granular_scopes": [*({"scope": scope, "target_ids": wabas} for scope in WHATSAPP_SCOPES),
                                {"scope": "business_management", "target_ids": businesses}]}
    if issued is not None:
        data["user_id"] = issued.user_id
    if token in sim.revoked:
        data["is_valid"] = False
        data["error"] = {"code": 190, "message": INVALIDATED, "subcode": 460}
    return 200, {"data": data}
