"""Bearer authentication of the tenant API with Aerostic API keys.

``TenantDep`` resolves ``Authorization: Bearer <key>`` to the key's principal (its tenant).
Failures answer 401 with ``WWW-Authenticate: Bearer`` (RFC 6750) and never echo the key.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ingress.api.deps import EngineDep
from tenants.api_keys import ApiKeyPrincipal, authenticate, key_prefix

bearer = HTTPBearer(auto_error=False, scheme_name="ApiKey", description="An Aerostic API key: `aer_…`")


def unauthorized(detail: str, *, invalid: bool) -> HTTPException:
    """A 401 with the challenge RFC 6750 asks for."""
    challenge = 'Bearer error="invalid_token"' if invalid else "Bearer"
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": challenge})


async def require_tenant(
    engine: EngineDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> ApiKeyPrincipal:
    """The principal of the request's API key; 401 when it is missing, unknown or revoked."""
    if credentials is None:
        raise unauthorized("missing API key: send 'Authorization: Bearer <key>'", invalid=False)
    if key_prefix(credentials.credentials) is None:  # malformed: refused without a database round trip
        raise unauthorized("invalid or revoked API key", invalid=True)
    async with engine.begin() as conn:
        principal = await authenticate(conn, credentials.credentials)
    if principal is None:
        raise unauthorized("invalid or revoked API key", invalid=True)
    return principal


TenantDep = Annotated[ApiKeyPrincipal, Depends(require_tenant)]
