"""SCIM Groups (RFC 7643 §4.2) over the domain groups of :mod:`idp.groups`.

Members are Users of the same tenant, referenced by ``value`` (their id); ``$ref`` and
``type`` are derived. A member that is not a User of this tenant is ``invalidValue``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from idp import groups as domain
from idp.errors import NotFoundError
from idp.scim import document, patch
from idp.scim.errors import InvalidSyntaxError, InvalidValueError, ResourceNotFoundError
from idp.scim.schema import CORE_GROUP, GROUP_ATTRIBUTES
from idp.scim.users import check_version
from idp.storage.database import Tx

READ_ONLY = frozenset({"id", "meta"})


@dataclass(slots=True, frozen=True)
class GroupRecord:
    group: domain.Group

    @property
    def etag(self) -> str:
        return f'W/"{self.group.version}"'


def load(conn: Connection, *, tenant_id: str, group_id: str) -> GroupRecord:
    try:
        return GroupRecord(domain.get(conn, tenant_id=tenant_id, group_id=group_id))
    except NotFoundError as exc:
        raise ResourceNotFoundError(f"no Group {group_id!r}") from exc


def load_many(conn: Connection, *, tenant_id: str, ids: list[str]) -> list[GroupRecord]:
    return [load(conn, tenant_id=tenant_id, group_id=i) for i in ids]


def _attrs(group: domain.Group) -> dict[str, Any]:
    attrs: dict[str, Any] = {"displayname": group.display_name}
    if group.external_id:
        attrs["externalid"] = group.external_id
    if group.members:
        attrs["members"] = [{"value": m} for m in group.members]
    return attrs


def to_json(record: GroupRecord, base_url: str) -> dict[str, Any]:
    from idp.scim.users import _iso

    g = record.group
    out: dict[str, Any] = {"schemas": [CORE_GROUP], "id": g.id, "displayName": g.display_name}
    if g.external_id:
        out["externalId"] = g.external_id
    if g.members:
        out["members"] = [{"value": m, "$ref": f"{base_url}/Users/{m}", "type": "User"} for m in g.members]
    out["meta"] = {
        "resourceType": "Group",
        "created": _iso(g.created_at),
        "lastModified": _iso(g.updated_at),
        "location": f"{base_url}/Groups/{g.id}",
        "version": record.etag,
    }
    return out


def parse_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidSyntaxError("the request body must be a JSON object")
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or CORE_GROUP not in schemas or len(set(schemas)) != 1:
        raise InvalidSyntaxError(f"a Group must carry schemas [{CORE_GROUP!r}]")
    attrs = document.canonical(body, GROUP_ATTRIBUTES, skip=READ_ONLY)
    if not attrs.get("displayname"):
        raise InvalidValueError("displayName is required")
    return attrs


def _member_ids(attrs: dict[str, Any]) -> list[str]:
    out = []
    for member in attrs.get("members") or []:
        if member.get("type") not in (None, "User"):
            raise InvalidValueError(
                f"members are Users; nested groups are not supported (got {member.get('type')!r})"
            )
        value = member.get("value")
        if not value:
            raise InvalidValueError("every member needs a value (the User's id)")
        out.append(str(value))
    return out


def create(tx: Tx, *, tenant_id: str, body: Any, actor: str) -> GroupRecord:
    """POST /Groups (RFC 7644 §3.3)."""
    attrs = parse_body(body)
    try:
        group = domain.create(
            tx,
            tenant_id=tenant_id,
            display_name=attrs["displayname"],
            external_id=attrs.get("externalid"),
            members=_member_ids(attrs),
            actor=actor,
        )
    except NotFoundError as exc:
        raise InvalidValueError(f"members: {exc}") from exc
    except ValueError as exc:
        raise InvalidValueError(str(exc)) from exc
    return GroupRecord(group)


def _write(tx: Tx, *, current: GroupRecord, attrs: dict[str, Any], actor: str) -> GroupRecord:
    if not attrs.get("displayname"):
        raise InvalidValueError("displayName is required")
    try:
        group = domain.update_group(
            tx,
            tenant_id=current.group.tenant_id,
            group_id=current.group.id,
            display_name=attrs["displayname"],
            external_id=attrs.get("externalid"),
            set_external_id=True,
            members=_member_ids(attrs),
            actor=actor,
        )
    except NotFoundError as exc:
        raise InvalidValueError(f"members: {exc}") from exc
    except ValueError as exc:
        raise InvalidValueError(str(exc)) from exc
    return GroupRecord(group)


def replace(
    tx: Tx, *, tenant_id: str, group_id: str, body: Any, if_match: str | None, actor: str
) -> GroupRecord:
    """PUT /Groups/{id} (§3.5.1)."""
    current = load(tx.conn, tenant_id=tenant_id, group_id=group_id)
    check_version(current.etag, if_match)
    return _write(tx, current=current, attrs=parse_body(body), actor=actor)


def modify(
    tx: Tx, *, tenant_id: str, group_id: str, body: Any, if_match: str | None, actor: str
) -> GroupRecord:
    """PATCH /Groups/{id} (§3.5.2), Entra ID's member shapes included."""
    current = load(tx.conn, tenant_id=tenant_id, group_id=group_id)
    check_version(current.etag, if_match)
    attrs = patch.apply(
        _attrs(current.group), body, catalogue=GROUP_ATTRIBUTES, resource="Group", read_only=READ_ONLY
    )
    return _write(tx, current=current, attrs=attrs, actor=actor)


def remove(tx: Tx, *, tenant_id: str, group_id: str, if_match: str | None, actor: str) -> None:
    """DELETE /Groups/{id} (§3.6)."""
    current = load(tx.conn, tenant_id=tenant_id, group_id=group_id)
    check_version(current.etag, if_match)
    domain.delete_group(tx, tenant_id=tenant_id, group_id=group_id, actor=actor)
