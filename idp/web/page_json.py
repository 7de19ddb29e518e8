"""The JSON endpoints that page scripts call (``fetch``): their CSRF header, body and errors.

A page puts its CSRF token in ``X-CSRF-Token``; a body is a JSON object of at most
:data:`MAX_BODY` bytes; an error is ``{"error": code, "error_description": text}`` with
``Cache-Control: no-store``.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from idp.web import browser

MAX_BODY = 80 * 1024


def error(status: int, code: str, description: str, **extra: Any) -> JSONResponse:
    return JSONResponse(
        {"error": code, "error_description": description, **extra},
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


def csrf_refused(request: Request) -> Response | None:
    """A 403 unless the request carries this browser's CSRF token in ``X-CSRF-Token``."""
    if not browser.csrf_ok(request, request.headers.get("x-csrf-token")):
        return error(403, "csrf", "missing or wrong X-CSRF-Token header")
    return None


async def body(request: Request) -> dict[str, Any] | Response:
    """The request's JSON object, or the 400 that says what is wrong with it."""
    if "application/json" not in request.headers.get("content-type", ""):
        return error(400, "invalid_request", "expected a JSON body (Content-Type: application/json)")
    raw = await request.body()
    if len(raw) > MAX_BODY:
        return error(400, "invalid_request", f"the body is larger than {MAX_BODY} bytes")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return error(400, "invalid_request", "the body is not valid JSON")
    if not isinstance(data, dict):
        return error(400, "invalid_request", "expected a JSON object")
    return data
