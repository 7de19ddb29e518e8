"""A resource server that demands step-up (RFC 9470) from tokens of this IdP.

    IDP_ISSUER=https://idp.example RS_CLIENT_ID=… RS_CLIENT_SECRET=… \
        .venv/bin/uvicorn examples.resource_server:app --port 8001

(the IdP of ``make run`` has port 8000). ``RS_CLIENT_ID`` and ``RS_CLIENT_SECRET`` are those of a
client of the tenant whose tokens it checks, since a client introspects only its own tenant's
tokens: ``idp client create --tenant demo --name "Documents API" --grant client_credentials
--scope api``.

``GET /documents/{id}/sign`` needs the advanced level within the last 10 minutes. It checks the
access token by introspection (RFC 7662: ``active``, ``acr``, ``auth_time``) and, when the login
behind the token is too weak or too old, answers 401 with

    WWW-Authenticate: Bearer error="insufficient_user_authentication",
        error_description="…", acr_values="urn:eid:loa:advanced", max_age="600"

The client then sends the person to ``/authorize`` again with those ``acr_values`` and
``max_age``; the IdP asks only for the factors the session lacks (step-up) and issues a token
whose ``acr`` satisfies the resource server.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import httpx
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

REQUIRED_ACR = (
    "urn:eid:loa:advanced",
    "http://eidas.europa.eu/LoA/substantial",
    "urn:eid:loa:qualified",
    "http://eidas.europa.eu/LoA/high",
)
MAX_AGE = 600


def step_up(description: str) -> Response:
    """RFC 9470 §3: the error, and what the client must ask the authorization server for."""
    challenge = (
        f'Bearer error="insufficient_user_authentication", error_description="{description}", '
        f'acr_values="{REQUIRED_ACR[0]}", max_age="{MAX_AGE}"'
    )
    return JSONResponse({"error": "insufficient_user_authentication"}, 401, {"WWW-Authenticate": challenge})


def build(introspect: Callable[[str], dict[str, object]]) -> Starlette:
    """The app; ``introspect(token)`` returns the RFC 7662 answer for a token."""

    async def sign(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            return JSONResponse(
                {"error": "invalid_token"}, 401, {"WWW-Authenticate": 'Bearer realm="documents"'}
            )
        info = await run_in_threadpool(introspect, header[7:].strip())  # a blocking HTTP call
        if not info.get("active"):
            return JSONResponse(
                {"error": "invalid_token"}, 401, {"WWW-Authenticate": 'Bearer error="invalid_token"'}
            )
        if info.get("acr") not in REQUIRED_ACR:
            return step_up("signing needs the advanced level")
        auth_time = info.get("auth_time")
        if not isinstance(auth_time, int | float) or time.time() - auth_time > MAX_AGE:
            return step_up("signing needs a login in the last 10 minutes")
        return JSONResponse({"document": request.path_params["doc"], "signed_by": info.get("sub")})

    return Starlette(routes=[Route("/documents/{doc}/sign", sign, methods=["GET", "POST"])])


def _introspection() -> Callable[[str], dict[str, object]]:
    issuer = os.environ["IDP_ISSUER"]
    auth = (os.environ["RS_CLIENT_ID"], os.environ["RS_CLIENT_SECRET"])

    def introspect(token: str) -> dict[str, object]:
        answer = httpx.post(f"{issuer}/introspect", data={"token": token}, auth=auth, timeout=5)
        answer.raise_for_status()
        body: dict[str, object] = answer.json()
        return body

    return introspect


app = build(_introspection()) if "IDP_ISSUER" in os.environ else None
