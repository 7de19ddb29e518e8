"""Tenants: the customer organisations whose users and relying apps live in this IdP."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select, update

from idp import audit, value_rules
from idp.errors import ConflictError, NotFoundError
from idp.storage import tables
from idp.storage.database import Tx

STATUSES = ("active", "suspended")
UNKNOWN_USERS = ("refuse", "create")  # what a portal's login token for an unknown person does
COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}){1,2}$")


@dataclass(slots=True, frozen=True)
class Tenant:
    id: str
    slug: str
    name: str
    branding: Mapping[str, Any] = field(default_factory=dict)
    status: str = "active"
    login_token_unknown_users: str = "refuse"

    @property
    def shown_name(self) -> str:
        """The name its pages and messages show: the branding's, else the tenant's own."""
        name = self.branding.get("name")
        return name.strip() if isinstance(name, str) and name.strip() else self.name

    def shown_branding(self) -> dict[str, Any]:
        """The branding its pages and messages show, named as :attr:`shown_name` says."""
        return {**self.branding, "name": self.shown_name}


def _from_row(row: Any) -> Tenant:
    return Tenant(
        id=row["id"],
        slug=row["slug"],
        name=row["name"],
        branding=row["branding"] or {},
        status=row["status"],
        login_token_unknown_users=row["login_token_unknown_users"],
    )


def validate_branding(branding: Mapping[str, Any]) -> dict[str, Any]:
    allowed = {"name", "logo_url", "primary_color", "invitation_text", "sms_name"}
    unknown = set(branding) - allowed
    if unknown:
        raise ValueError(f"unknown branding keys {sorted(unknown)}; expected {sorted(allowed)}")
    colour = branding.get("primary_color")
    if colour is not None and not COLOUR.match(str(colour)):
        raise ValueError(f"primary_color must be #rgb or #rrggbb, got {colour!r}")
    name = branding.get("name")
    if name is not None:
        if not isinstance(name, str) or not 0 < len(name) <= 200:
            raise value_rules.ValueRuleError("must be 1-200 characters of text", field="branding.name")
        value_rules.one_line(name, field="branding.name")
    logo = branding.get("logo_url")
    if logo is not None:
        if not isinstance(logo, str) or len(logo) > 2000:
            raise value_rules.ValueRuleError(
                "must be a URL of at most 2000 characters", field="branding.logo_url"
            )
        value_rules.logo_url(logo, field="branding.logo_url")
    for key, limit in (("invitation_text", 600), ("sms_name", 20)):
        value = branding.get(key)
        if value is not None and (
            not isinstance(value, str) or not 0 < len(value) <= limit or not value.isprintable()
        ):
            raise ValueError(f"{key} must be 1 to {limit} printable characters")
    return dict(branding)


def _name(name: str) -> str:
    return value_rules.single_line(name, field="name", subject="tenant name", max_length=200)


def create(tx: Tx, *, slug: str, name: str, branding: Mapping[str, Any] | None = None) -> Tenant:
    """A new tenant. Its slug may not look like a tenant id: :func:`get` finds either."""
    value_rules.slug(slug, field="slug", subject="tenant slug")
    name = _name(name)
    exists = tx.conn.execute(select(tables.tenants.c.id).where(tables.tenants.c.slug == slug)).first()
    if exists:
        raise ConflictError(f"a tenant with slug {slug!r} already exists")
    tenant = Tenant(id=str(uuid.uuid4()), slug=slug, name=name, branding=validate_branding(branding or {}))
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


def update_tenant(
    tx: Tx,
    *,
    tenant_id: str,
    name: str | None = None,
    branding: Mapping[str, Any] | None = None,
    status: str | None = None,
    login_token_unknown_users: str | None = None,
    actor: str | None = None,
) -> Tenant:
    """Change what is given (None leaves it); audited as ``tenant.updated`` with the changed names."""
    current = get(tx.conn, tenant_id)
    values: dict[str, Any] = {}
    if name is not None:
        values["name"] = _name(name)
    if branding is not None:
        values["branding"] = validate_branding(branding)
    if status is not None:
        if status not in STATUSES:
            raise ValueError(f"tenant status must be one of {', '.join(STATUSES)}, got {status!r}")
        values["status"] = status
    if login_token_unknown_users is not None:
        if login_token_unknown_users not in UNKNOWN_USERS:
            raise ValueError(f"login_token_unknown_users must be one of {', '.join(UNKNOWN_USERS)}")
        values["login_token_unknown_users"] = login_token_unknown_users
    if values:
        tx.conn.execute(update(tables.tenants).where(tables.tenants.c.id == current.id).values(**values))
        audit.record(
            tx,
            audit.AuditEvent(
                "tenant.updated", tenant_id=current.id, details={"changed": sorted(values), "actor": actor}
            ),
        )
    return get(tx.conn, current.id)
