"""Electronic identities: a person's attributes and, per attribute, how and when it was verified."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from idp import audit
from idp.errors import ConflictError, NotFoundError
from idp.storage import tables
from idp.storage.database import Tx


class AttributeName(StrEnum):
    """Attribute names follow the OIDC standard claims (OIDC Core §5.1)."""

    GIVEN_NAME = "given_name"
    FAMILY_NAME = "family_name"
    EMAIL = "email"
    PHONE_NUMBER = "phone_number"
    COUNTRY = "country"
    BIRTHDATE = "birthdate"
    NATIONAL_ID = "national_id"


class EIDStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"  # by an administrator or provisioning
    BLOCKED = "blocked"  # by the person (suspected misuse)


EMAIL = re.compile(r"^[^@\s<>\"']{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,253})\.[A-Za-z]{2,63}$")
COUNTRY = re.compile(r"^[A-Z]{2}$")


def normalize_email(value: str) -> str:
    """Trimmed and lowercased; raises ``ValueError`` when it is not an address."""
    email = value.strip()
    if len(email) > 254 or not EMAIL.match(email) or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in email):
        raise ValueError(f"not an email address: {value!r}")
    return email.lower()


@dataclass(slots=True, frozen=True)
class Attribute:
    value: str
    verified_method: str | None = None
    verified_at: float | None = None
    evidence_ref: str | None = None


@dataclass(slots=True, frozen=True)
class EID:
    id: str
    tenant_id: str
    username: str
    status: str
    attributes: Mapping[str, Attribute] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0

    def value(self, name: str) -> str | None:
        attr = self.attributes.get(name)
        return attr.value if attr else None

    @property
    def active(self) -> bool:
        return self.status == EIDStatus.ACTIVE


def _validate(name: str, value: str) -> str:
    AttributeName(name)  # unknown names raise ValueError
    if name == AttributeName.EMAIL:
        normalize_email(value)
        return value.strip()
    if name == AttributeName.COUNTRY:
        value = value.strip().upper()
        if not COUNTRY.match(value):
            raise ValueError(f"country must be an ISO 3166-1 alpha-2 code, got {value!r}")
    if name == AttributeName.PHONE_NUMBER and not re.fullmatch(r"\+[1-9]\d{6,14}", value.strip()):
        raise ValueError(f"phone_number must be in E.164 form (+38640123456), got {value!r}")
    value = value.strip()
    if not value or len(value) > 500:
        raise ValueError(f"{name} must be 1-500 characters")
    return value


def create(
    tx: Tx,
    *,
    tenant_id: str,
    attributes: Mapping[str, str],
    verified: Mapping[str, Attribute] | None = None,
    username: str | None = None,
    client_ip: str | None = None,
) -> EID:
    """Create an eID. ``verified`` carries attributes with their verification record."""
    values = {name: _validate(name, v) for name, v in attributes.items()}
    for name, attr in (verified or {}).items():
        values[name] = _validate(name, attr.value)
    email = values.get(AttributeName.EMAIL)
    email_norm = normalize_email(email) if email else None
    username = (username or email_norm or "").strip()
    if not username:
        raise ValueError("an eID needs a username or an email address")
    e = tables.eids.c
    clash = tx.conn.execute(
        select(e.id).where(
            (e.tenant_id == tenant_id) & ((e.username == username) | (e.email_normalized == email_norm))
        )
    ).first()
    if clash:
        raise ConflictError("an eID with this username or email already exists in the tenant")
    eid_id = str(uuid.uuid4())
    tx.conn.execute(
        tables.eids.insert().values(
            id=eid_id,
            tenant_id=tenant_id,
            username=username,
            email_normalized=email_norm,
            status=EIDStatus.ACTIVE,
            created_at=tx.now,
            updated_at=tx.now,
        )
    )
    attrs: dict[str, Attribute] = {}
    for name, value in values.items():
        v = (verified or {}).get(name)
        attr = Attribute(value, v.verified_method, v.verified_at, v.evidence_ref) if v else Attribute(value)
        attrs[name] = attr
        tx.conn.execute(
            tables.eid_attributes.insert().values(
                eid_id=eid_id,
                name=name,
                value=value,
                verified_method=attr.verified_method,
                verified_at=attr.verified_at,
                evidence_ref=attr.evidence_ref,
                updated_at=tx.now,
            )
        )
    audit.record(
        tx,
        audit.AuditEvent(
            "eid.created",
            tenant_id=tenant_id,
            eid_id=eid_id,
            username=username,
            client_ip=client_ip,
            details={"attributes": sorted(values), "verified": sorted(verified or {})},
        ),
    )
    return EID(eid_id, tenant_id, username, EIDStatus.ACTIVE, attrs, tx.now, tx.now)


def mark_verified(tx: Tx, *, eid_id: str, name: str, method: str, evidence_ref: str | None = None) -> None:
    """Record that attribute ``name`` was verified now by ``method``."""
    result = tx.conn.execute(
        update(tables.eid_attributes)
        .where((tables.eid_attributes.c.eid_id == eid_id) & (tables.eid_attributes.c.name == name))
        .values(verified_method=method, verified_at=tx.now, evidence_ref=evidence_ref, updated_at=tx.now)
    )
    if result.rowcount != 1:
        raise NotFoundError(f"eID {eid_id} has no attribute {name!r}")
    audit.record(
        tx,
        audit.AuditEvent(
            "eid.attribute_verified", eid_id=eid_id, details={"attribute": name, "method": method}
        ),
    )


_ATTRIBUTES_OF = select(tables.eid_attributes).where(tables.eid_attributes.c.eid_id == bindparam("eid_id"))
_BY_ID = select(tables.eids).where(tables.eids.c.id == bindparam("id"))


def _load(conn: Connection, where: Any, params: dict[str, Any] | None = None) -> EID | None:
    statement = where if params is not None else select(tables.eids).where(where)
    row = conn.execute(statement, params or {}).mappings().first()
    if row is None:
        return None
    attrs = {
        r.name: Attribute(r.value, r.verified_method, r.verified_at, r.evidence_ref)
        for r in conn.execute(_ATTRIBUTES_OF, {"eid_id": row["id"]})
    }
    return EID(
        row["id"],
        row["tenant_id"],
        row["username"],
        row["status"],
        attrs,
        row["created_at"],
        row["updated_at"],
    )


def get(conn: Connection, eid_id: str) -> EID:
    found = _load(conn, _BY_ID, {"id": eid_id})
    if found is None:
        raise NotFoundError(f"no eID {eid_id!r}")
    return found


def find_by_email(conn: Connection, *, tenant_id: str, email: str) -> EID | None:
    e = tables.eids.c
    return _load(conn, (e.tenant_id == tenant_id) & (e.email_normalized == normalize_email(email)))


def set_status(tx: Tx, *, eid_id: str, status: EIDStatus, reason: str, actor: str | None = None) -> None:
    result = tx.conn.execute(
        update(tables.eids).where(tables.eids.c.id == eid_id).values(status=status, updated_at=tx.now)
    )
    if result.rowcount != 1:
        raise NotFoundError(f"no eID {eid_id!r}")
    audit.record(
        tx,
        audit.AuditEvent(
            "eid.status_changed",
            eid_id=eid_id,
            details={"status": str(status), "reason": reason, "actor": actor},
        ),
    )
