"""The evidence of a video identification, sealed at rest and deleted when its retention ends.

Each item (a face still, the document's front and back, the session's report with the MRZ data,
scores, challenge results, the agent's decision and the recording's SHA-256, and the recording
itself when the tenant keeps it) is one row of ``videoid_evidence``: AES-256-GCM under a key
derived from the instance secret (:func:`idp.secrets.seal`, purpose ``videoid-evidence``), with
the session id, the item id and its kind bound as associated data, so a sealed item moved to
another row or session does not open. ``sha256`` is the digest of the plaintext, recorded in
the audit trail when the item is stored, so an item can be shown to be the one captured.

Items carry their own ``expires_at`` (the tenant's retention); :func:`purge_expired` runs in the
hourly retention job (:mod:`idp.retention`) and writes one audit event per session.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import cv2
import numpy as np
from sqlalchemy import Connection, delete, select

from idp import audit, secrets
from idp.errors import NotFoundError
from idp.storage import tables
from idp.storage.database import Tx
from videoid.records import Session

PURPOSE = b"videoid-evidence"
JPEG_QUALITY = 90


class Kind(StrEnum):
    FACE = "face"
    DOCUMENT_FRONT = "document_front"
    DOCUMENT_BACK = "document_back"
    REPORT = "report"
    RECORDING = "recording"
    AGENT_DECISION = "agent_decision"


@dataclass(slots=True, frozen=True)
class Item:
    id: str
    session_id: str
    kind: Kind
    media_type: str
    data: bytes
    sha256: str
    created_at: float
    expires_at: float


def jpeg(image: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("the image could not be encoded as JPEG")
    return bytes(buffer)


def report_bytes(report: Mapping[str, Any]) -> bytes:
    return json.dumps(report, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _aad(session_id: str, item_id: str, kind: str) -> bytes:
    return f"{session_id}\n{item_id}\n{kind}".encode()


def store(
    tx: Tx,
    *,
    secret: str,
    session_id: str,
    tenant_id: str,
    eid_id: str | None,
    kind: Kind,
    media_type: str,
    data: bytes,
    expires_at: float,
) -> str:
    """Seal and store one item; returns its id. The audit event carries the plaintext's digest."""
    item_id = str(uuid.uuid4())
    digest = hashlib.sha256(data).hexdigest()
    tx.conn.execute(
        tables.videoid_evidence.insert().values(
            id=item_id,
            session_id=session_id,
            tenant_id=tenant_id,
            kind=str(kind),
            media_type=media_type,
            sealed=secrets.seal(
                secret, data, purpose=PURPOSE, associated_data=_aad(session_id, item_id, kind)
            ),
            sha256=digest,
            created_at=tx.now,
            expires_at=expires_at,
        )
    )
    audit.record(
        tx,
        audit.AuditEvent(
            "videoid.evidence_stored",
            tenant_id=tenant_id,
            eid_id=eid_id,
            transaction_id=session_id,
            transaction_name="videoid",
            details={"item": item_id, "kind": str(kind), "sha256": digest, "bytes": len(data)},
        ),
    )
    return item_id


def store_for(tx: Tx, session: Session, *, secret: str, kind: Kind, media_type: str, data: bytes) -> str:
    """:func:`store` one item of ``session``, kept as long as the session's retention says."""
    return store(
        tx,
        secret=secret,
        session_id=session.id,
        tenant_id=session.tenant_id,
        eid_id=session.eid_id,
        kind=kind,
        media_type=media_type,
        data=data,
        expires_at=session.expires_at,
    )


def load(conn: Connection, *, secret: str, item_id: str) -> Item:
    """One item, opened; ``NotFoundError`` when gone (expired and deleted, or never stored)."""
    row = conn.execute(select(tables.videoid_evidence).where(tables.videoid_evidence.c.id == item_id)).first()
    if row is None:
        raise NotFoundError(f"no evidence item {item_id!r}")
    data = secrets.unseal(
        secret, row.sealed, purpose=PURPOSE, associated_data=_aad(row.session_id, row.id, row.kind)
    )
    return Item(
        row.id,
        row.session_id,
        Kind(row.kind),
        row.media_type,
        data,
        row.sha256,
        row.created_at,
        row.expires_at,
    )


def items_of(conn: Connection, *, secret: str, session_id: str) -> list[Item]:
    e = tables.videoid_evidence.c
    ids = conn.execute(
        select(e.id).where(e.session_id == session_id).order_by(e.created_at, e.kind)
    ).scalars()
    return [load(conn, secret=secret, item_id=i) for i in list(ids)]


def report_of(conn: Connection, *, secret: str, session_id: str) -> dict[str, Any] | None:
    """The session's report (JSON), or None when there is none (any more)."""
    e = tables.videoid_evidence.c
    item_id = conn.execute(
        select(e.id).where((e.session_id == session_id) & (e.kind == str(Kind.REPORT)))
    ).scalar()
    if item_id is None:
        return None
    loaded: dict[str, Any] = json.loads(load(conn, secret=secret, item_id=item_id).data)
    return loaded


def purge_expired(tx: Tx) -> int:
    """Delete every item past its retention; one ``videoid.evidence_deleted`` event per session."""
    e = tables.videoid_evidence.c
    rows = tx.conn.execute(
        select(e.session_id, e.tenant_id, e.kind).where(e.expires_at < tx.now).order_by(e.session_id)
    ).all()
    if not rows:
        return 0
    tx.conn.execute(delete(tables.videoid_evidence).where(e.expires_at < tx.now))
    sessions: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        sessions.setdefault((row.session_id, row.tenant_id), []).append(row.kind)
    for (session_id, tenant_id), kinds in sessions.items():
        audit.record(
            tx,
            audit.AuditEvent(
                "videoid.evidence_deleted",
                tenant_id=tenant_id,
                transaction_id=session_id,
                transaction_name="videoid",
                details={"reason": "retention_ended", "kinds": sorted(kinds), "items": len(kinds)},
            ),
        )
    return len(rows)
