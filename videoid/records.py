"""Video identification sessions as stored: the state machine of one session, each change audited.

```
created ─consent─▶ consented ─offer─▶ capturing ─▶ awaiting_code ─▶ approved | rejected
                                         │                     └─▶ awaiting_review ─agent▶ approved | rejected
                                         └────(failed step)────▶ rejected (or awaiting_review)
any state before a decision ──(abandoned / expired)──▶ abandoned
```

Every event goes to the audit trail with the session id as transaction id (``idp audit export
--transaction ID`` gives the whole session). Units of work here take a :class:`Tx`; the live
parts of a session (frames, WebRTC) are in :mod:`videoid.session` and :mod:`videoid.webrtc`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, select, update

from idp import audit, secrets
from idp.errors import ConflictError, NotFoundError
from idp.storage import tables
from idp.storage.database import Tx
from videoid.policy import Mode

SESSION_ID_BYTES = 24
TRANSACTION_NAME = "videoid"


class Status(StrEnum):
    CREATED = "created"
    CONSENTED = "consented"
    CAPTURING = "capturing"
    AWAITING_CODE = "awaiting_code"
    AWAITING_REVIEW = "awaiting_review"
    APPROVED = "approved"
    REJECTED = "rejected"
    ABANDONED = "abandoned"

    @property
    def final(self) -> bool:
        return self in (Status.APPROVED, Status.REJECTED, Status.ABANDONED)


_NEXT: dict[Status, frozenset[Status]] = {
    Status.CREATED: frozenset({Status.CONSENTED, Status.ABANDONED}),
    Status.CONSENTED: frozenset({Status.CAPTURING, Status.ABANDONED}),
    Status.CAPTURING: frozenset(
        {Status.AWAITING_CODE, Status.REJECTED, Status.AWAITING_REVIEW, Status.ABANDONED}
    ),
    Status.AWAITING_CODE: frozenset(
        {Status.APPROVED, Status.REJECTED, Status.AWAITING_REVIEW, Status.ABANDONED}
    ),
    Status.AWAITING_REVIEW: frozenset({Status.APPROVED, Status.REJECTED}),
}


@dataclass(slots=True, frozen=True)
class Session:
    id: str
    tenant_id: str
    eid_id: str
    browser_digest: str
    request_id: str | None
    mode: Mode
    status: Status
    challenges: tuple[str, ...]
    steps: Mapping[str, Any] = field(default_factory=dict)
    scores: Mapping[str, Any] = field(default_factory=dict)
    decision: str | None = None
    reasons: tuple[str, ...] = ()
    review: Mapping[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    consent_at: float | None = None
    finished_at: float | None = None
    expires_at: float = 0.0

    def belongs_to(self, browser: str | None) -> bool:
        return browser is not None and secrets.matches(browser, self.browser_digest)


def _from_row(row: Any) -> Session:
    return Session(
        id=row["id"],
        tenant_id=row["tenant_id"],
        eid_id=row["eid_id"],
        browser_digest=row["browser_digest"],
        request_id=row["request_id"],
        mode=Mode(row["mode"]),
        status=Status(row["status"]),
        challenges=tuple(row["challenges"] or ()),
        steps=dict(row["steps"] or {}),
        scores=dict(row["scores"] or {}),
        decision=row["decision"],
        reasons=tuple(row["reasons"] or ()),
        review=dict(row["review"] or {}),
        created_at=row["created_at"],
        consent_at=row["consent_at"],
        finished_at=row["finished_at"],
        expires_at=row["expires_at"],
    )


def get(conn: Connection, session_id: str, *, lock: bool = False) -> Session:
    query = select(tables.videoid_sessions).where(tables.videoid_sessions.c.id == session_id)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).mappings().first()
    if row is None:
        raise NotFoundError(f"no video identification session {session_id!r}")
    return _from_row(row)


def event(
    session: Session,
    event_type: str,
    *,
    success: bool = True,
    client_ip: str | None = None,
    state: str | None = None,
    **details: Any,
) -> audit.AuditEvent:
    return audit.AuditEvent(
        event_type,
        success=success,
        tenant_id=session.tenant_id,
        eid_id=session.eid_id,
        transaction_id=session.id,
        transaction_name=TRANSACTION_NAME,
        details=details,
        process_state=state or str(session.status),
        client_ip=client_ip,
    )


def create(
    tx: Tx,
    *,
    tenant_id: str,
    eid_id: str,
    browser: str,
    request_id: str | None,
    mode: Mode,
    challenges: Sequence[str],
    retention_seconds: float,
    client_ip: str | None,
) -> Session:
    """A new session for ``eid_id`` in this browser; audited as ``videoid.session_started``."""
    session_id = secrets.new_secret(SESSION_ID_BYTES)
    row: dict[str, Any] = {
        "id": session_id,
        "tenant_id": tenant_id,
        "eid_id": eid_id,
        "browser_digest": secrets.digest(browser),
        "request_id": request_id,
        "mode": str(mode),
        "status": str(Status.CREATED),
        "challenges": [str(c) for c in challenges],
        "steps": {},
        "scores": {},
        "decision": None,
        "reasons": [],
        "review": {},
        "created_at": tx.now,
        "updated_at": tx.now,
        "consent_at": None,
        "finished_at": None,
        "expires_at": tx.now + retention_seconds,
    }
    tx.conn.execute(tables.videoid_sessions.insert().values(**row))
    session = _from_row(row)
    audit.record(
        tx,
        event(session, "videoid.session_started", client_ip=client_ip, mode=str(mode), request_id=request_id),
    )
    return session


def transition(
    tx: Tx,
    session_id: str,
    to: Status,
    *,
    event_type: str,
    success: bool = True,
    client_ip: str | None = None,
    values: Mapping[str, Any] | None = None,
    **details: Any,
) -> Session:
    """Move a session to ``to`` if the state machine allows it (``ConflictError`` otherwise)."""
    current = get(tx.conn, session_id, lock=True)
    if to not in _NEXT.get(current.status, frozenset()):
        raise ConflictError(f"the session is {current.status}; it cannot become {to}")
    c = tables.videoid_sessions.c
    changes: dict[str, Any] = {"status": str(to), "updated_at": tx.now, **(values or {})}
    if to.final or to is Status.AWAITING_REVIEW:
        changes.setdefault("finished_at", tx.now)
    done = tx.conn.execute(
        update(tables.videoid_sessions)
        .where((c.id == session_id) & (c.status == str(current.status)))
        .values(**changes)
    )
    if done.rowcount != 1:
        raise ConflictError("the session changed meanwhile; try again")
    updated = get(tx.conn, session_id)
    audit.record(tx, event(updated, event_type, success=success, client_ip=client_ip, **details))
    return updated


def consent(tx: Tx, session_id: str, *, client_ip: str | None) -> Session:
    """Consent to recording and biometric processing (GDPR Art. 9(2)(a)), recorded with its time."""
    return transition(
        tx,
        session_id,
        Status.CONSENTED,
        event_type="videoid.consent_given",
        client_ip=client_ip,
        values={"consent_at": tx.now},
        consent=["recording", "biometric_processing"],
    )


def step(tx: Tx, session_id: str, name: str, *, passed: bool, **details: Any) -> None:
    """Record one step's outcome (``videoid.step_passed`` / ``videoid.step_failed``)."""
    current = get(tx.conn, session_id, lock=True)
    steps = dict(current.steps)
    steps[name] = {"passed": passed, "at": tx.now, **details}
    c = tables.videoid_sessions.c
    tx.conn.execute(
        update(tables.videoid_sessions).where(c.id == session_id).values(steps=steps, updated_at=tx.now)
    )
    kind = "videoid.step_passed" if passed else "videoid.step_failed"
    audit.record(tx, event(current, kind, success=passed, step=name, **details))


def set_scores(tx: Tx, session_id: str, scores: Mapping[str, Any]) -> None:
    c = tables.videoid_sessions.c
    tx.conn.execute(
        update(tables.videoid_sessions)
        .where(c.id == session_id)
        .values(scores=dict(scores), updated_at=tx.now)
    )


def open_session_of(conn: Connection, *, eid_id: str) -> Session | None:
    """The eID's newest session that has not reached a decision, if any."""
    c = tables.videoid_sessions.c
    open_states = [str(s) for s in Status if not s.final and s is not Status.AWAITING_REVIEW]
    row = (
        conn.execute(
            select(tables.videoid_sessions)
            .where((c.eid_id == eid_id) & c.status.in_(open_states))
            .order_by(c.created_at.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    return None if row is None else _from_row(row)
