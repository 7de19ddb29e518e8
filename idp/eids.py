"""Electronic identities: a person's attributes and, per attribute, how and when it was verified."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, select, update

from idp import audit, sessions, value_rules
from idp.errors import ConflictError, NotFoundError
from idp.storage import tables
from idp.storage.database import Tx
from idp.storage.prepared import Prepared, Row


class AttributeName(StrEnum):
    """Attribute names follow the OIDC standard claims (OIDC Core §5.1)."""

    GIVEN_NAME = "given_name"
    FAMILY_NAME = "family_name"
    EMAIL = "email"
    PHONE_NUMBER = "phone_number"
    COUNTRY = "country"
    BIRTHDATE = "birthdate"
    NATIONAL_ID = "national_id"
    # from an identity document read during identity proofing (videoid): ICAO Doc 9303 codes
    NATIONALITY = "nationality"  # three-letter code as printed in the MRZ
    DOCUMENT_TYPE = "document_type"  # the MRZ document code (P, ID, I<, …)
    DOCUMENT_NUMBER = "document_number"
    DOCUMENT_ISSUER = "document_issuer"  # issuing state, three letters
    DOCUMENT_EXPIRY = "document_expiry"  # ISO 8601 date


class EIDStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"  # by an administrator or provisioning
    BLOCKED = "blocked"  # by the person (suspected misuse)
    PENDING = "pending"  # onboarding from an invitation not finished yet


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
    value_rules.one_line(value, field=name)
    if name == AttributeName.BIRTHDATE:
        value_rules.birthdate(value.strip(), field=name)
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
    status: EIDStatus = EIDStatus.ACTIVE,
    record_username: bool = True,
) -> EID:
    """Create an eID. ``verified`` carries attributes with their verification record.

    ``record_username=False`` keeps the username out of the audit event (provisioned eIDs: the
    trail stays pseudonymous once the person is erased).
    """
    values = {name: _validate(name, v) for name, v in attributes.items()}
    for name, attr in (verified or {}).items():
        values[name] = _validate(name, attr.value)
    email = values.get(AttributeName.EMAIL)
    email_norm = normalize_email(email) if email else None
    if username:
        username = value_rules.single_line(username, field="username", max_length=320)
    username = username or email_norm
    if not username:
        raise ValueError("an eID needs a username or an email address")
    e = tables.eids.c
    same = func.lower(e.username) == username.lower()
    if email_norm is not None:
        same = same | (e.email_normalized == email_norm)
    clash = tx.conn.execute(select(e.id).where((e.tenant_id == tenant_id) & same)).first()
    if clash:
        raise ConflictError("an eID with this username or email already exists in the tenant")
    eid_id = str(uuid.uuid4())
    tx.conn.execute(
        tables.eids.insert().values(
            id=eid_id,
            tenant_id=tenant_id,
            username=username,
            email_normalized=email_norm,
            status=status,
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
            username=username if record_username else None,
            client_ip=client_ip,
            details={"attributes": sorted(values), "verified": sorted(verified or {}), "status": str(status)},
        ),
    )
    return EID(eid_id, tenant_id, username, status, attrs, tx.now, tx.now)


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


def set_verified(
    tx: Tx, *, eid_id: str, values: Mapping[str, str], method: str, evidence_ref: str | None
) -> None:
    """Set attributes to values that ``method`` verified now (insert or replace), one audit event."""
    a = tables.eid_attributes.c
    for name, raw in values.items():
        value = _validate(name, raw)
        row = {
            "value": value,
            "verified_method": method,
            "verified_at": tx.now,
            "evidence_ref": evidence_ref,
            "updated_at": tx.now,
        }
        done = tx.conn.execute(
            update(tables.eid_attributes).where((a.eid_id == eid_id) & (a.name == name)).values(**row)
        )
        if done.rowcount == 0:
            tx.conn.execute(tables.eid_attributes.insert().values(eid_id=eid_id, name=name, **row))
    tx.conn.execute(update(tables.eids).where(tables.eids.c.id == eid_id).values(updated_at=tx.now))
    audit.record(
        tx,
        audit.AuditEvent(
            "eid.attributes_verified",
            eid_id=eid_id,
            details={"attributes": sorted(values), "method": method, "evidence": evidence_ref},
        ),
    )


_E = tables.eids.c
_A = tables.eid_attributes.c


def with_attributes(where: Any, *extra: Any) -> Prepared:
    """An eID and its attributes in one statement (one row per attribute; one row with NULL
    attribute columns for an eID without any): one round trip to the database, not two.

    ``extra`` are more labelled columns: scalar subqueries correlated with ``eids.id`` that read
    what a sign-in step needs besides the person (the password hash, the lock), so that the step
    takes one round trip, not three. :func:`load_with` returns their values."""
    return Prepared(
        select(
            *tables.eids.c,
            _A.name.label("attribute_name"),
            _A.value.label("attribute_value"),
            _A.verified_method.label("attribute_verified_method"),
            _A.verified_at.label("attribute_verified_at"),
            _A.evidence_ref.label("attribute_evidence_ref"),
            *extra,
        )
        .select_from(tables.eids.outerjoin(tables.eid_attributes, _A.eid_id == _E.id))
        .where(where)
    )


# the eID by its id (parameter ``id``), or by tenant (``t``) and normalised email (``m``)
BY_ID = _E.id == bindparam("id")
BY_EMAIL = (_E.tenant_id == bindparam("t")) & (_E.email_normalized == bindparam("m"))
# every sign-in step reads the person: built once, run on the driver (idp.storage.prepared)
_BY_ID = with_attributes(BY_ID)


def load_with(conn: Connection, statement: Prepared, params: dict[str, Any]) -> tuple[EID, Row] | None:
    """The eID a :func:`with_attributes` statement finds, and its first row (the ``extra``
    columns are the same on every row); None when there is no such eID."""
    rows = statement.all(conn, params)
    if not rows:
        return None
    row = rows[0]
    attrs = {
        r["attribute_name"]: Attribute(
            r["attribute_value"],
            r["attribute_verified_method"],
            r["attribute_verified_at"],
            r["attribute_evidence_ref"],
        )
        for r in rows
        if r["attribute_name"] is not None
    }
    person = EID(
        row["id"],
        row["tenant_id"],
        row["username"],
        row["status"],
        attrs,
        row["created_at"],
        row["updated_at"],
    )
    return person, row


def get(conn: Connection, eid_id: str) -> EID:
    found = load_with(conn, _BY_ID, {"id": eid_id})
    if found is None:
        raise NotFoundError(f"no eID {eid_id!r}")
    return found[0]


_OWNER = Prepared(
    select(tables.eids.c.tenant_id, tables.eids.c.username).where(tables.eids.c.id == bindparam("id"))
)


def owner(conn: Connection, eid_id: str) -> tuple[str, str]:
    """``(tenant_id, username)`` of an eID, for audit events; :class:`NotFoundError` if none."""
    row = _OWNER.first(conn, {"id": eid_id})
    if row is None:
        raise NotFoundError(f"no eID {eid_id}")
    return str(row["tenant_id"]), str(row["username"])


_BY_EMAIL = with_attributes(BY_EMAIL)


def find_by_email(conn: Connection, *, tenant_id: str, email: str) -> EID | None:
    found = load_with(conn, _BY_EMAIL, {"t": tenant_id, "m": normalize_email(email)})
    return None if found is None else found[0]


def set_status(tx: Tx, *, eid_id: str, status: EIDStatus, reason: str, actor: str | None = None) -> None:
    """Change the eID's status; any status but active also ends its sessions and revokes its tokens
    at once (a suspended or blocked eID must not keep signing in elsewhere)."""
    value_rules.one_line(reason, field="reason")
    result = tx.conn.execute(
        update(tables.eids).where(tables.eids.c.id == eid_id).values(status=status, updated_at=tx.now)
    )
    if result.rowcount != 1:
        raise NotFoundError(f"no eID {eid_id!r}")
    details: dict[str, Any] = {"status": str(status), "reason": reason, "actor": actor}
    if status != EIDStatus.ACTIVE:
        ended, revoked = end_access(tx, eid_id=eid_id, reason=reason)
        details.update(sessions_ended=ended, tokens_revoked=revoked)
    audit.record(tx, audit.AuditEvent("eid.status_changed", eid_id=eid_id, details=details))


def update_profile(
    tx: Tx,
    *,
    eid_id: str,
    username: str | None = None,
    attributes: Mapping[str, str | None] | None = None,
    actor: str | None = None,
) -> list[str]:
    """Rename the eID and set (or, with None, remove) attributes; returns the names that changed.

    A changed value loses its verification record: what was verified is no longer the value.
    """
    person = get(tx.conn, eid_id)
    e = tables.eids.c
    changed: list[str] = []
    values: dict[str, Any] = {}
    if username is not None:
        username = value_rules.single_line(username, field="username", max_length=320)
    if username is not None and username != person.username:
        clash = tx.conn.execute(
            select(e.id).where(
                (e.tenant_id == person.tenant_id)
                & (func.lower(e.username) == username.lower())
                & (e.id != eid_id)
            )
        ).first()
        if clash:
            raise ConflictError("an eID with this username already exists in the tenant")
        values["username"] = username
        changed.append("username")
    a = tables.eid_attributes.c
    for name, raw in (attributes or {}).items():
        old = person.value(name)
        if raw is None:
            if old is None:
                continue
            tx.conn.execute(delete(tables.eid_attributes).where((a.eid_id == eid_id) & (a.name == name)))
            if name == AttributeName.EMAIL:
                values["email_normalized"] = None
            changed.append(name)
            continue
        value = _validate(name, raw)
        if value == old:
            continue
        if name == AttributeName.EMAIL:
            norm = normalize_email(value)
            clash = tx.conn.execute(
                select(e.id).where(
                    (e.tenant_id == person.tenant_id) & (e.email_normalized == norm) & (e.id != eid_id)
                )
            ).first()
            if clash:
                raise ConflictError("an eID with this email already exists in the tenant")
            values["email_normalized"] = norm
        if old is None:
            tx.conn.execute(
                tables.eid_attributes.insert().values(
                    eid_id=eid_id, name=name, value=value, updated_at=tx.now
                )
            )
        else:
            tx.conn.execute(
                update(tables.eid_attributes)
                .where((a.eid_id == eid_id) & (a.name == name))
                .values(
                    value=value, verified_method=None, verified_at=None, evidence_ref=None, updated_at=tx.now
                )
            )
        changed.append(name)
    if changed:
        tx.conn.execute(update(tables.eids).where(e.id == eid_id).values(updated_at=tx.now, **values))
        audit.record(
            tx,
            audit.AuditEvent(
                "eid.updated",
                tenant_id=person.tenant_id,
                eid_id=eid_id,
                details={"changed": sorted(changed), "actor": actor},
            ),
        )
    return changed


def end_access(tx: Tx, *, eid_id: str, reason: str) -> tuple[int, int]:
    """End every SSO session of the eID and revoke its unexpired tokens, now.

    Returns ``(sessions ended, tokens revoked)``.
    """
    s, t = tables.sso_sessions.c, tables.tokens.c
    sids = [r.sid for r in tx.conn.execute(select(s.sid).where((s.eid_id == eid_id) & s.ended_at.is_(None)))]
    for sid in sids:
        sessions.end(tx, sid=sid, reason=reason)
    revoked = tx.conn.execute(
        update(tables.tokens)
        .where((t.eid_id == eid_id) & t.revoked_at.is_(None) & (t.expires_at > tx.now))
        .values(revoked_at=tx.now)
    ).rowcount
    return len(sids), int(revoked or 0)


def suspend(tx: Tx, *, eid_id: str, reason: str, actor: str | None = None) -> None:
    """Suspend the eID and cut it off at once: sessions ended, tokens revoked (``set_status``)."""
    set_status(tx, eid_id=eid_id, status=EIDStatus.SUSPENDED, reason=reason, actor=actor)


def erase(tx: Tx, *, eid_id: str, reason: str, actor: str | None = None) -> None:
    """Erase the eID and everything personal it owns (GDPR Art. 17).

    The row goes and its attributes, sessions, tokens, codes, links, group memberships and
    provisioning data go with it (foreign keys cascade). The audit event names only the eID's
    random id: the trail keeps a pseudonymised record.
    """
    e = tables.eids.c
    row = tx.conn.execute(select(e.tenant_id).where(e.id == eid_id)).first()
    if row is None:
        raise NotFoundError(f"no eID {eid_id!r}")
    end_access(tx, eid_id=eid_id, reason=reason)
    tx.conn.execute(delete(tables.scim_values).where(tables.scim_values.c.owner_id == eid_id))
    tx.conn.execute(delete(tables.eids).where(e.id == eid_id))
    audit.record(
        tx,
        audit.AuditEvent(
            "eid.erased", tenant_id=row.tenant_id, eid_id=eid_id, details={"reason": reason, "actor": actor}
        ),
    )
