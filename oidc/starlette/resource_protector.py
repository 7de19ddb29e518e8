"""Bearer tokens on resource requests (RFC 6750 §2.1) and step-up challenges (RFC 9470 §3)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse


def bearer_token(request: Request) -> str | None:
    """The access token of an ``Authorization: Bearer`` header, or None."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def insufficient_user_authentication(
    *, acr_values: str | None = None, max_age: int | None = None, description: str
) -> JSONResponse:
    """The 401 a resource server sends when the token's authentication is too weak or too old."""
    params = ['error="insufficient_user_authentication"', f'error_description="{description}"']
    if acr_values:
        params.append(f'acr_values="{acr_values}"')
    if max_age is not None:
        params.append(f'max_age="{max_age}"')
    return JSONResponse(
        {"error": "insufficient_user_authentication", "error_description": description},
        status_code=401,
        headers={"WWW-Authenticate": "Bearer " + ", ".join(params)},
    )
