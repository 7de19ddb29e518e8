"""Tenants: the customer organisations whose users and relying apps live in this IdP."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from idp import audit
from idp.errors import ConflictError, NotFoundError
from idp.storage import tables
from idp.storage.database import Tx

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}){1,2}$")


@dataclass(slots=True, frozen=True)
class Tenant:
    id: str
    slug: str
    name: str
    branding: Mapping[str, Any] = field(default_factory=dict)
    status: str = "active"


def _from_row(row: Any) -> Tenant:
    return Tenant(
        id=row["id"], slug=row["slug"], name=row["name"], branding=row["branding"] or {}, status=row["status"]
    )


def validate_branding(branding: Mapping[str, Any]) -> dict[str, Any]:
    allowed = {"name", "logo_url", "primary_color"}
    unknown = set(branding) - allowed
    if unknown:
        raise ValueError(f"unknown branding keys {sorted(unknown)}; expected {sorted(allowed)}")
    colour = branding.get("primary_color")
    if colour is not None and not COLOUR.match(str(colour)):
        raise ValueError(f"primary_color must be #rgb or #rrggbb, got {colour!r}")
    logo = branding.get("logo_url")
    if logo is not None and not str(logo).startswith(("https://", "/")):
        raise ValueError("logo_url must be an https:// URL or a path on this server")
    return dict(branding)


def create(tx: Tx, *, slug: str, name: str, branding: Mapping[str, Any] | None = None) -> Tenant:
    if not SLUG.match(slug):
        raise ValueError(f"tenant slug must be lowercase letters, digits and dashes, got {slug!r}")
    if not name.strip():
        raise ValueError("tenant name must not be empty")
    exists = tx.conn.execute(select(tables.tenants.c.id).where(tables.tenants.c.slug == slug)).first()
    if exists:
        raise ConflictError(f"a tenant with slug {slug!r} already exists")
    tenant = Tenant(
        id=str(uuid.uuid4()), slug=slug, name=name.strip(), branding=validate_branding(branding or {})
    )
    tx.conn.execute(
        tables.tenants.insert().values(
            id=tenant.id,
            slug=slug,
            name=tenant.name,
            branding=dict(tenant.branding),
            status="active",
            created_at=tx.now,
        )
    )
    audit.record(tx, audit.AuditEvent("tenant.created", tenant_id=tenant.id, details={"slug": slug}))
    return tenant


def get(conn: Connection, ref: str) -> Tenant:
    """A tenant by id or slug."""
    t = tables.tenants.c
    row = conn.execute(select(tables.tenants).where((t.id == ref) | (t.slug == ref))).mappings().first()
    if row is None:
        raise NotFoundError(f"no tenant {ref!r}")
    return _from_row(row)


def list_all(conn: Connection) -> list[Tenant]:
    rows = conn.execute(select(tables.tenants).order_by(tables.tenants.c.slug)).mappings()
    return [_from_row(r) for r in rows]
