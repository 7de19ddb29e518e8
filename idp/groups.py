"""Groups of a tenant's eIDs. A group is a role released to relying apps (the ``groups`` claim).

Domain functions for SCIM provisioning and the tenant administration API alike: every change
writes its audit event in the caller's transaction. Members are eIDs of the group's own tenant.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, delete, func, insert, select, update

from idp import audit, value_rules
from idp.errors import NotFoundError
from idp.storage import tables
from idp.storage.database import Tx

MAX_NAME = 256
MAX_EXTERNAL_ID = 320


@dataclass(slots=True, frozen=True)
class Group:
    id: str
    tenant_id: str
    display_name: str
    external_id: str | None
    version: int
    created_at: float
    updated_at: float
    members: tuple[str, ...] = ()


def _name(display_name: str) -> str:
    return value_rules.single_line(
        display_name, field="display_name", subject="a group's displayName", max_length=MAX_NAME
    )


def _external_id(external_id: str | None) -> str | None:
    """The provisioning client's own id for the group, kept as given: one line, 1-320 characters."""
    if external_id is None:
        return None
    value_rules.one_line(external_id, field="external_id")
    if not 0 < len(external_id) <= MAX_EXTERNAL_ID:
        raise value_rules.ValueRuleError(f"must be 1-{MAX_EXTERNAL_ID} characters", field="external_id")
    return external_id


def _check_members(conn: Connection, tenant_id: str, members: Iterable[str]) -> list[str]:
    wanted = list(dict.fromkeys(members))
    if not wanted:
        return []
    e = tables.eids.c
    found = {r.id for r in conn.execute(select(e.id).where((e.tenant_id == tenant_id) & e.id.in_(wanted)))}
    missing = [m for m in wanted if m not in found]
    if missing:
        # the same answer for "no such eID" and "an eID of another tenant": nothing leaks
        raise NotFoundError(f"no eID {missing[0]!r} in this tenant")
    return wanted


def create(
    tx: Tx,
    *,
    tenant_id: str,
    display_name: str,
    external_id: str | None = None,
    members: Sequence[str] = (),
    actor: str | None = None,
) -> Group:
    """Create a group; ``members`` are eID ids of the same tenant."""
    name = _name(display_name)
    external_id = _external_id(external_id)
    member_ids = _check_members(tx.conn, tenant_id, members)
    group_id = str(uuid.uuid4())
    tx.conn.execute(
        tables.groups.insert().values(
            id=group_id,
            tenant_id=tenant_id,
            display_name=name,
            external_id=external_id,
            version=1,
            created_at=tx.now,
            updated_at=tx.now,
        )
    )
    if member_ids:
        tx.conn.execute(
            insert(tables.group_members), [{"group_id": group_id, "eid_id": m} for m in member_ids]
        )
    audit.record(
        tx,
        audit.AuditEvent(
            "group.created",
            tenant_id=tenant_id,
            details={"group_id": group_id, "members": len(member_ids), "actor": actor},
        ),
    )
    return Group(group_id, tenant_id, name, external_id, 1, tx.now, tx.now, tuple(member_ids))


def get(conn: Connection, *, tenant_id: str, group_id: str) -> Group:
    """The group with its members; a group of another tenant is not found."""
    g = tables.groups.c
    row = (
        conn.execute(select(tables.groups).where((g.id == group_id) & (g.tenant_id == tenant_id)))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFoundError(f"no group {group_id!r}")
    members = members_of(conn, [group_id]).get(group_id, ())
    return Group(
        row["id"],
        row["tenant_id"],
        row["display_name"],
        row["external_id"],
        row["version"],
        row["created_at"],
        row["updated_at"],
        members,
    )


def members_of(conn: Connection, group_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Member eID ids per group, in a stable order."""
    if not group_ids:
        return {}
    m = tables.group_members.c
    out: dict[str, list[str]] = {}
    rows = conn.execute(
        select(m.group_id, m.eid_id).where(m.group_id.in_(list(group_ids))).order_by(m.group_id, m.eid_id)
    )
    for r in rows:
        out.setdefault(r.group_id, []).append(r.eid_id)
    return {k: tuple(v) for k, v in out.items()}


def groups_of(conn: Connection, eid_ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    """``(group id, displayName)`` of every group each eID belongs to."""
    if not eid_ids:
        return {}
    m, g = tables.group_members.c, tables.groups.c
    rows = conn.execute(
        select(m.eid_id, g.id, g.display_name)
        .join(tables.groups, g.id == m.group_id)
        .where(m.eid_id.in_(list(eid_ids)))
        .order_by(g.display_name, g.id)
    )
    out: dict[str, list[tuple[str, str]]] = {}
    for r in rows:
        out.setdefault(r.eid_id, []).append((r.id, r.display_name))
    return out


def names_of(conn: Connection, eid_id: str) -> list[str]:
    """The displayNames of the eID's groups: the values of its ``groups`` claim."""
    return [name for _id, name in groups_of(conn, [eid_id]).get(eid_id, [])]


def update_group(
    tx: Tx,
    *,
    tenant_id: str,
    group_id: str,
    display_name: str | None = None,
    external_id: str | None = None,
    set_external_id: bool = False,
    members: Sequence[str] | None = None,
    add: Sequence[str] = (),
    remove: Sequence[str] = (),
    actor: str | None = None,
) -> Group:
    """Rename, replace (``members``) or change (``add``/``remove``) the membership; bumps the version."""
    current = get(tx.conn, tenant_id=tenant_id, group_id=group_id)
    values: dict[str, object] = {"version": current.version + 1, "updated_at": tx.now}
    if display_name is not None:
        values["display_name"] = _name(display_name)
    if set_external_id:
        values["external_id"] = _external_id(external_id)
    have = list(current.members)
    if members is not None:
        have = _check_members(tx.conn, tenant_id, members)
    if add:
        have += [m for m in _check_members(tx.conn, tenant_id, add) if m not in have]
    if remove:
        gone = set(remove)
        have = [m for m in have if m not in gone]
    m = tables.group_members.c
    if set(have) != set(current.members):
        drop = [x for x in current.members if x not in set(have)]
        new = [x for x in have if x not in set(current.members)]
        if drop:
            tx.conn.execute(delete(tables.group_members).where((m.group_id == group_id) & m.eid_id.in_(drop)))
        if new:
            tx.conn.execute(insert(tables.group_members), [{"group_id": group_id, "eid_id": x} for x in new])
    tx.conn.execute(update(tables.groups).where(tables.groups.c.id == group_id).values(**values))
    audit.record(
        tx,
        audit.AuditEvent(
            "group.updated",
            tenant_id=tenant_id,
            details={
                "group_id": group_id,
                "renamed": display_name is not None and values["display_name"] != current.display_name,
                "members": len(have),
                "actor": actor,
            },
        ),
    )
    return get(tx.conn, tenant_id=tenant_id, group_id=group_id)


def delete_group(tx: Tx, *, tenant_id: str, group_id: str, actor: str | None = None) -> None:
    g = tables.groups.c
    result = tx.conn.execute(delete(tables.groups).where((g.id == group_id) & (g.tenant_id == tenant_id)))
    if result.rowcount != 1:
        raise NotFoundError(f"no group {group_id!r}")
    audit.record(
        tx,
        audit.AuditEvent(
            "group.deleted", tenant_id=tenant_id, details={"group_id": group_id, "actor": actor}
        ),
    )


def count(conn: Connection, *, tenant_id: str) -> int:
    return int(
        conn.execute(
            select(func.count()).select_from(tables.groups).where(tables.groups.c.tenant_id == tenant_id)
        ).scalar_one()
    )
