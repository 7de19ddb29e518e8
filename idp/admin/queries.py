"""Read-side queries the administration API pages through: one tenant's eIDs, groups, invitations."""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from idp import eids, groups, invitations
from idp.storage import tables


def eid_page(conn: Connection, *, tenant_id: str, offset: int, limit: int) -> tuple[list[eids.EID], int]:
    """A page of the tenant's eIDs in a stable order (creation time, then id), and the total."""
    e = tables.eids.c
    total = conn.execute(select(func.count()).select_from(tables.eids).where(e.tenant_id == tenant_id))
    ids = conn.execute(
        select(e.id).where(e.tenant_id == tenant_id).order_by(e.created_at, e.id).offset(offset).limit(limit)
    )
    return [eids.get(conn, r.id) for r in ids], int(total.scalar_one())


def eid_of_tenant(conn: Connection, *, tenant_id: str, eid_id: str) -> eids.EID | None:
    e = tables.eids.c
    found = conn.execute(select(e.id).where((e.id == eid_id) & (e.tenant_id == tenant_id))).first()
    return eids.get(conn, eid_id) if found else None


def group_list(conn: Connection, *, tenant_id: str) -> list[groups.Group]:
    g = tables.groups.c
    rows = conn.execute(
        select(g.id).where(g.tenant_id == tenant_id).order_by(g.display_name, g.id).limit(10_000)
    )
    return [groups.get(conn, tenant_id=tenant_id, group_id=r.id) for r in rows]


def invitation_page(
    conn: Connection, *, tenant_id: str, offset: int, limit: int
) -> tuple[list[tuple[invitations.Invitation, float | None]], int]:
    """A page of the tenant's invitations, newest first, each with its revocation time."""
    i = tables.invitations.c
    total = conn.execute(select(func.count()).select_from(tables.invitations).where(i.tenant_id == tenant_id))
    rows = conn.execute(
        select(tables.invitations)
        .where(i.tenant_id == tenant_id)
        .order_by(i.created_at.desc(), i.id)
        .offset(offset)
        .limit(limit)
    ).mappings()
    return [(invitations.from_row(r), r["revoked_at"]) for r in rows], int(total.scalar_one())


def invitation_of_tenant(
    conn: Connection, *, tenant_id: str, invitation_id: str
) -> tuple[invitations.Invitation, float | None] | None:
    i = tables.invitations.c
    row = (
        conn.execute(select(tables.invitations).where((i.id == invitation_id) & (i.tenant_id == tenant_id)))
        .mappings()
        .first()
    )
    return (invitations.from_row(row), row["revoked_at"]) if row else None
