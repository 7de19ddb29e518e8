"""Identity proofing records of eIDs: how a person's identity was proven, at which level, and when.

A record names the method (``videoid``: video identification, ETSI TS 119 461), the level of
assurance the proofing supports (the acr of the qualified level), the time, and the evidence id
(the video identification session whose sealed evidence backs it). The LoA policy asks only
whether an eID has a record that is not revoked (:func:`is_proofed`):
``levels_of_assurance.policy.level_of(..., identity_proofed=True)`` makes an advanced login
qualified.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, select, update

from idp import audit, eids
from idp.storage import tables
from idp.storage.database import Tx
from idp.storage.prepared import Prepared

VIDEOID = "videoid"


@dataclass(slots=True, frozen=True)
class Proofing:
    evidence_id: str
    eid_id: str
    method: str
    level: str
    proofed_at: float


def record(tx: Tx, *, eid_id: str, method: str, level: str, evidence_id: str) -> Proofing:
    """Mark ``eid_id`` as proofed by ``method`` now, backed by ``evidence_id``."""
    tx.conn.execute(
        tables.eid_proofings.insert().values(
            id=evidence_id, eid_id=eid_id, method=method, level=level, proofed_at=tx.now, revoked_at=None
        )
    )
    tenant_id, username = eids.owner(tx.conn, eid_id)
    audit.record(
        tx,
        audit.AuditEvent(
            "eid.proofed",
            tenant_id=tenant_id,
            eid_id=eid_id,
            username=username,
            transaction_id=evidence_id,
            details={"method": method, "level": level, "evidence": evidence_id},
            process_state="proofed",
        ),
    )
    return Proofing(evidence_id, eid_id, method, level, tx.now)


def revoke(tx: Tx, *, eid_id: str, reason: str) -> int:
    """Withdraw every proofing of ``eid_id`` (a document reported stolen, a wrong decision).

    The attributes the proofing verified stay as they are but lose their verification record
    (method ``videoid``), so ``verified_claims`` no longer vouches for them.
    """
    p = tables.eid_proofings.c
    a = tables.eid_attributes.c
    tx.conn.execute(
        update(tables.eid_attributes)
        .where((a.eid_id == eid_id) & (a.verified_method == "videoid"))
        .values(verified_method=None, verified_at=None, evidence_ref=None, updated_at=tx.now)
    )
    count = tx.conn.execute(
        update(tables.eid_proofings)
        .where((p.eid_id == eid_id) & p.revoked_at.is_(None))
        .values(revoked_at=tx.now)
    ).rowcount
    if count:
        tenant_id, username = eids.owner(tx.conn, eid_id)
        audit.record(
            tx,
            audit.AuditEvent(
                "eid.proofing_revoked",
                tenant_id=tenant_id,
                eid_id=eid_id,
                username=username,
                details={"reason": reason, "records": count},
            ),
        )
    return int(count)


_P = tables.eid_proofings.c
# every login that reaches its level asks (qualified = advanced + proofed): built once
_CURRENT = Prepared(
    select(tables.eid_proofings)
    .where((_P.eid_id == bindparam("eid_id")) & _P.revoked_at.is_(None))
    .order_by(_P.proofed_at.desc())
    .limit(1)
)


def current(conn: Connection, eid_id: str) -> Proofing | None:
    """The newest proofing of ``eid_id`` that is not revoked."""
    row = _CURRENT.first(conn, {"eid_id": eid_id})
    if row is None:
        return None
    return Proofing(row["id"], row["eid_id"], row["method"], row["level"], row["proofed_at"])


def is_proofed(conn: Connection, eid_id: str | None) -> bool:
    return eid_id is not None and current(conn, eid_id) is not None


# a proofing of the eID an idp.eids.with_attributes statement reads that is not revoked, NULL when
# there is none (what is_proofed asks): the sign-in steps read it with the person
PROOFING_OF_EID = (
    select(_P.id).where((_P.eid_id == tables.eids.c.id) & _P.revoked_at.is_(None)).limit(1).scalar_subquery()
)
