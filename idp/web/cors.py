"""CORS for the endpoints that a relying app's own page calls with ``fetch`` (the Fetch standard's
CORS protocol).

A single-page app is a public client: it exchanges its code at ``/token`` (with PKCE), refreshes
and revokes its tokens, and reads ``/userinfo``, all from scripts on its own origin. Without CORS
headers the browser keeps every answer from the script, and refuses the request outright where a
preflight is needed (a JSON or Authorization request). So:

* **discovery and the JWKS** are public documents: any origin may read them (``*``), as OIDC
  Discovery 1.0 §4 recommends;
* **token, userinfo and revocation** answer an origin that is the origin of a registered
  redirect URI of an active client of this instance, as Keycloak's "+" web origins do: the app
  that receives the code on a page of an origin may call these endpoints from it. Preflights
  (``OPTIONS`` with ``Access-Control-Request-Method``) are answered here, with 204 for such an
  origin and 403 otherwise; answers carry the origin back with ``Vary: Origin``.

No credentials are ever allowed (``Access-Control-Allow-Credentials`` is never sent): these
endpoints take the client's own credentials or a bearer token, never the session cookie. The
introspection endpoint is for resource servers, and ``/authorize`` is a navigation, not a fetch:
neither gets CORS headers. The origins are read from the clients at most every :attr:`WebOrigins.ttl`
seconds, as the client registry caches clients.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlalchemy import Connection, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from idp.storage import tables
from idp.storage.database import Database

PUBLIC_DOCUMENTS = frozenset(
    {
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",  # RFC 8414
        "/.well-known/jwks.json",
    }
)
# what a browser app calls, and with which methods
APP_ENDPOINTS = {"/token": b"POST", "/userinfo": b"GET, POST", "/revoke": b"POST"}
ALLOWED_HEADERS = b"authorization, content-type"
# a browser script may read these of an answer besides the CORS-safelisted ones: the reason of a
# bearer token's refusal (RFC 6750 §3) and how long to wait after a 429
EXPOSED_HEADERS = b"www-authenticate, retry-after"
PREFLIGHT_MAX_AGE = b"600"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(uri: str) -> str | None:
    """The origin of an http(s) URI as a browser serialises it (``https://app.example:8443``, the
    default port left out), or None (a native app's custom scheme, or not a URI)."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != _DEFAULT_PORTS[parts.scheme] else "")


@dataclass
class WebOrigins:
    """The origins of the redirect URIs of the instance's active clients, read again after ``ttl``
    seconds, or after ``miss_ttl`` for an origin not among them (an app registered just now works
    within seconds; unknown origins cost at most one read per ``miss_ttl``)."""

    db: Database
    ttl: float = 30.0
    miss_ttl: float = 2.0
    _origins: frozenset[str] = frozenset()
    _read_at: float = field(default=-math.inf)

    async def allows(self, origin: str) -> bool:
        now = time.monotonic()
        age = now - self._read_at
        if age >= self.ttl or (origin not in self._origins and age >= self.miss_ttl):
            self._origins = await self.db.read(_active_origins)
            self._read_at = now
        return origin in self._origins


def _active_origins(conn: Connection) -> frozenset[str]:
    c = tables.clients.c
    rows = conn.execute(select(c.redirect_uris).where(c.active.is_(True)))
    found = {origin_of(uri) for (uris,) in rows for uri in (uris or ()) if isinstance(uri, str)}
    return frozenset(o for o in found if o)


class CorsMiddleware:
    """The CORS protocol for :data:`PUBLIC_DOCUMENTS` and :data:`APP_ENDPOINTS` (module docstring);
    every other request passes untouched."""

    def __init__(self, app: ASGIApp, *, origins: WebOrigins) -> None:
        self.app = app
        self.origins = origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path") if scope["type"] == "http" else None
        methods = APP_ENDPOINTS.get(path) if path else None
        public = path in PUBLIC_DOCUMENTS
        origin = _header(scope, b"origin") if methods or public else None
        if origin is None:
            await self.app(scope, receive, send)
            return
        preflight = scope["method"] == "OPTIONS" and _header(scope, b"access-control-request-method")
        allowed = public or await self.origins.allows(origin.decode("latin-1"))
        if preflight:
            await _answer_preflight(send, origin if allowed else None, public, methods or b"GET")
            return
        if not allowed:
            await self.app(scope, receive, send)
            return
        added = [(b"access-control-allow-origin", b"*" if public else origin)]
        if not public:
            added += [(b"vary", b"origin"), (b"access-control-expose-headers", EXPOSED_HEADERS)]

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *added]}
            await send(message)

        await self.app(scope, receive, send_with_cors)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def _answer_preflight(send: Send, origin: bytes | None, public: bool, methods: bytes) -> None:
    if origin is None:  # no CORS headers: the browser refuses the request it asked about
        headers = [(b"content-length", b"0"), (b"vary", b"origin")]
        await send({"type": "http.response.start", "status": 403, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    headers = [
        (b"access-control-allow-origin", b"*" if public else origin),
        (b"access-control-allow-methods", methods),
        (b"access-control-allow-headers", ALLOWED_HEADERS),
        (b"access-control-max-age", PREFLIGHT_MAX_AGE),
        (b"vary", b"origin"),
        (b"content-length", b"0"),
    ]
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
