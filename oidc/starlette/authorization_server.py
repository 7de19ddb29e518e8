"""Turning the provider's framework-neutral responses into Starlette responses."""

from __future__ import annotations

import json

from starlette.responses import Response

from oidc.server import OAuthResponse

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_COMPACT = json.JSONEncoder(separators=(",", ":"))  # built once, not per json.dumps call


def to_response(result: OAuthResponse) -> Response:
    """JSON bodies as ``application/json`` with no-store (RFC 6749 §5.1); redirects as they are."""
    headers = dict(result.headers)
    body = result.body
    if isinstance(body, dict | list):
        payload = _COMPACT.encode(body).encode()
        headers.setdefault("Content-Type", "application/json")
    else:
        payload = (body or "").encode() if isinstance(body, str) else bytes(body or b"")
    for name, value in NO_STORE.items():
        headers.setdefault(name, value)
    return Response(payload, status_code=result.status, headers=headers)
