"""Who calls the administration API: an OAuth access token (RFC 6750) from ``client_credentials``.

The token must be live and carry the ``admin`` scope: its client administers its own tenant. A
token with ``admin:platform`` administers every tenant and may create tenants. Tokens issued to a
person (authorization code) never administer anything, whatever their scope.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from idp import secrets
from idp.clients import ADMIN_SCOPE, PLATFORM_SCOPE
from idp.errors import IdPError
from idp.storage import tables


class AdminAuthError(IdPError):
    """No usable admin credential (401) or one without the needed scope (403)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(slots=True, frozen=True)
class Principal:
    client_id: str
    tenant_id: str
    platform: bool

    @property
    def actor(self) -> str:
        return f"admin-api:{self.client_id}"

    def may_administer(self, tenant_id: str) -> bool:
        return self.platform or tenant_id == self.tenant_id


_TOKEN = (
    select(
        tables.tokens.c.kind,
        tables.tokens.c.scope,
        tables.tokens.c.eid_id,
        tables.tokens.c.expires_at,
        tables.tokens.c.revoked_at,
        tables.clients.c.client_id,
        tables.clients.c.tenant_id,
        tables.clients.c.active,
        tables.clients.c.scopes,
        tables.tenants.c.status,
    )
    .join(tables.clients, tables.clients.c.client_id == tables.tokens.c.client_id)
    .join(tables.tenants, tables.tenants.c.id == tables.clients.c.tenant_id)
)


def authenticate(conn: Connection, bearer: str | None, *, now: float) -> Principal:
    """The principal behind ``Authorization: Bearer …``; :class:`AdminAuthError` otherwise."""
    if not bearer:
        raise AdminAuthError(401, "invalid_token", "an access token is required (Authorization: Bearer …)")
    if len(bearer) > 512:
        raise AdminAuthError(401, "invalid_token", "the access token is unknown, expired or revoked")
    row = conn.execute(_TOKEN.where(tables.tokens.c.digest == secrets.token_key(bearer))).first()
    if (
        row is None
        or row.kind != "access"
        or row.revoked_at is not None
        or row.expires_at <= now
        or not row.active
        or row.status != "active"
    ):
        raise AdminAuthError(401, "invalid_token", "the access token is unknown, expired or revoked")
    granted = set(row.scope.split())
    # the scope must still be granted to the client: taking it away ends its tokens' power at once
    allowed = set(row.scopes or ())
    if row.eid_id is not None or not ({ADMIN_SCOPE, PLATFORM_SCOPE} & granted & allowed):
        raise AdminAuthError(403, "insufficient_scope", "the access token lacks the admin scope")
    return Principal(row.client_id, row.tenant_id, PLATFORM_SCOPE in granted & allowed)
