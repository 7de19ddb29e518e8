"""Per-tenant SCIM bearer tokens (RFC 6750): random, shown once, stored as SHA-256 digests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import Connection, select, update

from idp import audit, secrets, value_rules
from idp.errors import NotFoundError
from idp.storage import tables
from idp.storage.database import Tx

PREFIX = "scim_"


@dataclass(slots=True, frozen=True)
class ScimToken:
    id: str
    tenant_id: str
    name: str
    created_at: float
    revoked_at: float | None


@dataclass(slots=True, frozen=True)
class NewToken:
    token: ScimToken
    secret: str  # the bearer value; only its digest is stored


def create(tx: Tx, *, tenant_id: str, name: str) -> NewToken:
    """Mint a token for ``tenant_id``; its value is returned once and never stored."""
    name = value_rules.single_line(name, field="name", subject="a SCIM token name", max_length=200)
    secret = PREFIX + secrets.new_secret()
    token = ScimToken(str(uuid.uuid4()), tenant_id, name, tx.now, None)
    tx.conn.execute(
        tables.scim_tokens.insert().values(
            id=token.id, tenant_id=tenant_id, name=name, digest=secrets.digest(secret), created_at=tx.now
        )
    )
    audit.record(
        tx,
        audit.AuditEvent(
            "scim.token_created", tenant_id=tenant_id, details={"token_id": token.id, "name": name}
        ),
    )
    return NewToken(token, secret)


def revoke(tx: Tx, *, token_id: str) -> ScimToken:
    """Revoke a token at once; revoking a revoked token is a no-op."""
    t = tables.scim_tokens.c
    row = tx.conn.execute(select(tables.scim_tokens).where(t.id == token_id)).mappings().first()
    if row is None:
        raise NotFoundError(f"no SCIM token {token_id!r}")
    if row["revoked_at"] is None:
        tx.conn.execute(update(tables.scim_tokens).where(t.id == token_id).values(revoked_at=tx.now))
        audit.record(
            tx,
            audit.AuditEvent(
                "scim.token_revoked", tenant_id=row["tenant_id"], details={"token_id": token_id}
            ),
        )
        return _from_row({**row, "revoked_at": tx.now})
    return _from_row(row)


def list_for(conn: Connection, *, tenant_id: str | None = None) -> list[ScimToken]:
    t = tables.scim_tokens.c
    query = select(tables.scim_tokens).order_by(t.created_at, t.id)
    if tenant_id is not None:
        query = query.where(t.tenant_id == tenant_id)
    return [_from_row(r) for r in conn.execute(query).mappings()]


_BY_DIGEST = (
    select(tables.scim_tokens.c.id, tables.scim_tokens.c.tenant_id, tables.tenants.c.status)
    .join(tables.tenants, tables.tenants.c.id == tables.scim_tokens.c.tenant_id)
    .where(tables.scim_tokens.c.revoked_at.is_(None))
)


def authenticate(conn: Connection, bearer: str) -> ScimToken | None:
    """The live token whose value is ``bearer``, or None (unknown, revoked, or tenant not active)."""
    if not bearer.startswith(PREFIX) or len(bearer) > 128:
        return None
    row = conn.execute(_BY_DIGEST.where(tables.scim_tokens.c.digest == secrets.digest(bearer))).first()
    if row is None or row.status != "active":
        return None
    return ScimToken(row.id, row.tenant_id, "", 0.0, None)


def _from_row(row: object) -> ScimToken:
    r = dict(row)  # type: ignore[call-overload]
    return ScimToken(r["id"], r["tenant_id"], r["name"], r["created_at"], r["revoked_at"])
