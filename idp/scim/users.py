"""SCIM Users (RFC 7643 §4.1, enterprise extension §4.3) as the eIDs of one tenant.

What an eID holds is the source of truth for what it holds: ``userName`` (the username),
``active`` (the status), ``name.givenName``/``name.familyName`` (``given_name``/``family_name``),
the primary (else the work, else the first) email (``email``) and the mobile number in E.164
form (``phone_number``). Everything else a client sends is kept in ``scim_users.document`` and
flattened into ``scim_values`` for filters. A changed attribute loses its verification record.

``active=false`` suspends the eID and at once ends its SSO sessions and revokes its tokens;
DELETE erases it (:func:`idp.eids.erase`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, delete, insert, select, update

from idp import audit, eids
from idp import groups as domain_groups
from idp.errors import ConflictError, NotFoundError
from idp.scim import document, patch
from idp.scim.errors import (
    InvalidSyntaxError,
    InvalidValueError,
    PreconditionFailedError,
    ResourceNotFoundError,
    UniquenessError,
)
from idp.scim.schema import CORE_USER, ENTERPRISE, USER_ATTRIBUTES, USER_MODEL
from idp.storage import tables
from idp.storage.database import Tx

READ_ONLY = frozenset({"id", "meta", "groups"})
# attributes that live in the eids row, not in the document
ROW_KEYS = frozenset({"username", "active"})
# a client removed `active` (PATCH remove): it is not reported until set again; the eID's
# status stays what it was
UNASSIGNED_ACTIVE = "_active_unassigned"
E164 = re.compile(r"^\+[1-9]\d{6,14}$")


@dataclass(slots=True)
class UserRecord:
    eid: eids.EID
    attrs: dict[str, Any]  # catalogue-keyed, eID values overlaid
    version: int
    groups: list[tuple[str, str]] = field(default_factory=list)

    @property
    def etag(self) -> str:
        return f'W/"{self.version}.{int(self.eid.updated_at * 1000)}"'


def _overlay(person: eids.EID, doc: dict[str, Any]) -> dict[str, Any]:
    attrs = {k: v for k, v in doc.items() if k not in ROW_KEYS and not k.startswith("_")}
    attrs["username"] = person.username
    if not doc.get(UNASSIGNED_ACTIVE):
        attrs["active"] = person.active
    name = dict(attrs.get("name") or {})
    for sub, attr in (("givenName", "given_name"), ("familyName", "family_name")):
        if person.value(attr):
            name[sub] = person.value(attr)
        else:
            name.pop(sub, None)
    attrs["name"] = name or None
    email = person.value("email")
    emails = list(attrs.get("emails") or [])
    if email and not any(str(e.get("value", "")).lower() == email.lower() for e in emails):
        emails.insert(0, {"value": email, "type": "work", "primary": True})
    attrs["emails"] = emails or None
    phone = person.value("phone_number")
    phones = list(attrs.get("phonenumbers") or [])
    if phone and not any(_e164(p.get("value")) == phone for p in phones):
        phones.insert(0, {"value": phone, "type": "mobile"})
    attrs["phonenumbers"] = phones or None
    return {k: v for k, v in attrs.items() if v is not None}


def load_many(conn: Connection, *, tenant_id: str, ids: Sequence[str]) -> list[UserRecord]:
    """The Users ``ids`` of the tenant, in the order given (missing ones left out)."""
    if not ids:
        return []
    e, a, s = tables.eids.c, tables.eid_attributes.c, tables.scim_users.c
    rows = {
        r["id"]: r
        for r in conn.execute(
            select(tables.eids).where(e.id.in_(list(ids)) & (e.tenant_id == tenant_id))
        ).mappings()
    }
    attrs: dict[str, dict[str, eids.Attribute]] = {}
    for r in conn.execute(select(tables.eid_attributes).where(a.eid_id.in_(list(rows)))):
        attrs.setdefault(r.eid_id, {})[r.name] = eids.Attribute(
            r.value, r.verified_method, r.verified_at, r.evidence_ref
        )
    docs = {
        r.eid_id: (r.document or {}, r.version)
        for r in conn.execute(select(s.eid_id, s.document, s.version).where(s.eid_id.in_(list(rows))))
    }
    memberships = domain_groups.groups_of(conn, list(rows))
    out = []
    for eid_id in ids:
        row = rows.get(eid_id)
        if row is None:
            continue
        person = eids.EID(
            row["id"],
            row["tenant_id"],
            row["username"],
            row["status"],
            attrs.get(eid_id, {}),
            row["created_at"],
            row["updated_at"],
        )
        doc, version = docs.get(eid_id, ({}, 0))
        out.append(UserRecord(person, _overlay(person, doc), version, memberships.get(eid_id, [])))
    return out


def load(conn: Connection, *, tenant_id: str, eid_id: str) -> UserRecord:
    found = load_many(conn, tenant_id=tenant_id, ids=[eid_id])
    if not found:
        raise ResourceNotFoundError(f"no User {eid_id!r}")
    return found[0]


def to_json(record: UserRecord, base_url: str) -> dict[str, Any]:
    """The full SCIM representation (attribute selection is the web layer's)."""
    body = document.to_json(record.attrs, USER_ATTRIBUTES)
    schemas = [CORE_USER] + ([ENTERPRISE] if ENTERPRISE in body else [])
    groups = [
        {"value": gid, "$ref": f"{base_url}/Groups/{gid}", "display": name, "type": "direct"}
        for gid, name in record.groups
    ]
    out: dict[str, Any] = {"schemas": schemas, "id": record.eid.id, **body}
    if groups:
        out["groups"] = groups
    out["meta"] = {
        "resourceType": "User",
        "created": _iso(record.eid.created_at),
        "lastModified": _iso(record.eid.updated_at),
        "location": f"{base_url}/Users/{record.eid.id}",
        "version": record.etag,
    }
    return out


def _iso(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _e164(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    compact = re.sub(r"[\s().-]", "", value.removeprefix("tel:"))
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    return compact if E164.match(compact) else None


def _pick(items: list[dict[str, Any]] | None, kind: str) -> dict[str, Any] | None:
    """The email that is the eID's (primary, else work, else first); the mobile number."""
    items = items or []
    wanted = "work" if kind == "email" else "mobile"
    for item in items:
        if item.get("primary") is True and (kind == "email" or item.get("type") == wanted):
            return item
    for item in items:
        if item.get("type") == wanted:
            return item
    return items[0] if items and kind == "email" else None


def _eid_values(attrs: dict[str, Any]) -> dict[str, str | None]:
    """The eID attributes that ``attrs`` determine."""
    name = attrs.get("name") or {}
    email = _pick(attrs.get("emails"), "email")
    mobile = _pick(attrs.get("phonenumbers"), "phone")
    return {
        "given_name": name.get("givenName"),
        "family_name": name.get("familyName"),
        "email": str(email["value"]) if email and email.get("value") else None,
        "phone_number": _e164(mobile.get("value")) if mobile else None,
    }


def parse_body(body: Any) -> dict[str, Any]:
    """A User from a POST/PUT body: canonical attributes, checked against scim2-models' User."""
    if not isinstance(body, dict):
        raise InvalidSyntaxError("the request body must be a JSON object")
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or CORE_USER not in schemas:
        raise InvalidSyntaxError(f"a User must carry schemas including {CORE_USER!r}")
    unknown = [s for s in schemas if s not in (CORE_USER, ENTERPRISE)]
    if unknown:
        raise InvalidSyntaxError(f"unknown schema {unknown[0]!r}")
    attrs = document.canonical(body, USER_ATTRIBUTES, skip=READ_ONLY | {"password"})
    validate(attrs)
    if not attrs.get("username"):
        raise InvalidValueError("userName is required")
    return attrs


def validate(attrs: dict[str, Any]) -> None:
    payload = {"schemas": [CORE_USER, ENTERPRISE], **document.to_json(attrs, USER_ATTRIBUTES)}
    try:
        USER_MODEL.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidValueError(f"{where}: {first['msg']}") from exc


def _index(tx: Tx, *, tenant_id: str, eid_id: str, attrs: dict[str, Any]) -> None:
    v = tables.scim_values
    tx.conn.execute(delete(v).where(v.c.owner_id == eid_id))
    rows = [
        {
            "owner_id": eid_id,
            "attr": attr,
            "item": item,
            "sub": sub,
            "tenant_id": tenant_id,
            "value": value,
            "value_ci": value.lower(),
        }
        for attr, item, sub, value in document.index_rows(
            {k: val for k, val in attrs.items() if k not in ROW_KEYS}, USER_ATTRIBUTES
        )
    ]
    if rows:
        tx.conn.execute(insert(v), rows)


def _store(tx: Tx, *, tenant_id: str, eid_id: str, attrs: dict[str, Any], version: int) -> None:
    doc = {k: v for k, v in attrs.items() if k not in ROW_KEYS}
    if "active" not in attrs:
        doc[UNASSIGNED_ACTIVE] = True
    s = tables.scim_users
    if version == 1:
        tx.conn.execute(
            insert(s).values(
                eid_id=eid_id,
                tenant_id=tenant_id,
                external_id=attrs.get("externalid"),
                document=doc,
                version=1,
            )
        )
    else:
        done = tx.conn.execute(
            update(s)
            .where(s.c.eid_id == eid_id)
            .values(external_id=attrs.get("externalid"), document=doc, version=version)
        ).rowcount
        if not done:
            tx.conn.execute(
                insert(s).values(
                    eid_id=eid_id,
                    tenant_id=tenant_id,
                    external_id=attrs.get("externalid"),
                    document=doc,
                    version=version,
                )
            )
    _index(tx, tenant_id=tenant_id, eid_id=eid_id, attrs=attrs)


def create(tx: Tx, *, tenant_id: str, body: Any, actor: str) -> UserRecord:
    """POST /Users (RFC 7644 §3.3)."""
    attrs = parse_body(body)
    attrs.setdefault("active", True)
    values = {k: v for k, v in _eid_values(attrs).items() if v is not None}
    try:
        person = eids.create(
            tx, tenant_id=tenant_id, attributes=values, username=attrs["username"], record_username=False
        )
    except ConflictError as exc:
        raise UniquenessError(str(exc)) from exc
    except ValueError as exc:
        raise InvalidValueError(str(exc)) from exc
    if attrs.get("active") is False:
        eids.suspend(tx, eid_id=person.id, reason="provisioning", actor=actor)
    _store(tx, tenant_id=tenant_id, eid_id=person.id, attrs=attrs, version=1)
    audit.record(
        tx,
        audit.AuditEvent(
            "scim.user_created",
            tenant_id=tenant_id,
            eid_id=person.id,
            details={"actor": actor, "attributes": sorted(attrs)},
        ),
    )
    return load(tx.conn, tenant_id=tenant_id, eid_id=person.id)


def check_version(record_etag: str, if_match: str | None) -> None:
    """``If-Match`` (RFC 7644 §3.14, RFC 7232 §3.1): 412 when no listed tag is current."""
    if if_match is None:
        return
    tags = [t.strip() for t in if_match.split(",")]
    if "*" in tags:
        return
    weak = record_etag.removeprefix("W/")
    if not any(t.removeprefix("W/") == weak for t in tags):
        raise PreconditionFailedError(f"the resource has version {record_etag}, not {if_match}")


def _apply(tx: Tx, *, current: UserRecord, attrs: dict[str, Any], actor: str, event: str) -> UserRecord:
    validate(attrs)
    if not attrs.get("username"):
        raise InvalidValueError("userName is required")
    person = current.eid
    try:
        changed = eids.update_profile(
            tx, eid_id=person.id, username=attrs["username"], attributes=_eid_values(attrs), actor=actor
        )
    except ConflictError as exc:
        raise UniquenessError(str(exc)) from exc
    except ValueError as exc:
        raise InvalidValueError(str(exc)) from exc
    active = attrs.get("active")  # absent: unchanged
    if active is False and person.status == eids.EIDStatus.ACTIVE:
        eids.suspend(tx, eid_id=person.id, reason="provisioning", actor=actor)
    elif active is True and person.status == eids.EIDStatus.SUSPENDED:
        eids.set_status(
            tx, eid_id=person.id, status=eids.EIDStatus.ACTIVE, reason="provisioning", actor=actor
        )
    tx.conn.execute(update(tables.eids).where(tables.eids.c.id == person.id).values(updated_at=tx.now))
    _store(tx, tenant_id=person.tenant_id, eid_id=person.id, attrs=attrs, version=current.version + 1)
    audit.record(
        tx,
        audit.AuditEvent(
            event,
            tenant_id=person.tenant_id,
            eid_id=person.id,
            details={"actor": actor, "eid_attributes_changed": sorted(changed)},
        ),
    )
    return load(tx.conn, tenant_id=person.tenant_id, eid_id=person.id)


def replace(
    tx: Tx, *, tenant_id: str, eid_id: str, body: Any, if_match: str | None, actor: str
) -> UserRecord:
    """PUT /Users/{id} (§3.5.1): the body replaces every attribute a client may write."""
    current = load(tx.conn, tenant_id=tenant_id, eid_id=eid_id)
    check_version(current.etag, if_match)
    attrs = parse_body(body)
    attrs.setdefault("active", current.eid.active)  # absent from a PUT: unchanged
    return _apply(tx, current=current, attrs=attrs, actor=actor, event="scim.user_replaced")


def modify(tx: Tx, *, tenant_id: str, eid_id: str, body: Any, if_match: str | None, actor: str) -> UserRecord:
    """PATCH /Users/{id} (§3.5.2)."""
    current = load(tx.conn, tenant_id=tenant_id, eid_id=eid_id)
    check_version(current.etag, if_match)
    attrs = patch.apply(current.attrs, body, catalogue=USER_ATTRIBUTES, resource="User", read_only=READ_ONLY)
    return _apply(tx, current=current, attrs=attrs, actor=actor, event="scim.user_patched")


def remove(tx: Tx, *, tenant_id: str, eid_id: str, if_match: str | None, actor: str) -> None:
    """DELETE /Users/{id} (§3.6): the eID and its personal data are erased."""
    current = load(tx.conn, tenant_id=tenant_id, eid_id=eid_id)
    check_version(current.etag, if_match)
    try:
        eids.erase(tx, eid_id=eid_id, reason="provisioning", actor=actor)
    except NotFoundError as exc:
        raise ResourceNotFoundError(str(exc)) from exc
