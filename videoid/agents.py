"""The agent console's domain: who is an agent, the queue, what an agent may open, their decision.

An agent is an eID of the tenant in the group its video identification policy names
(``agent_group``, default ``videoid-agents``; groups come from SCIM, :mod:`idp.groups`). The web
layer also requires an advanced login (ETSI TS 119 461 §9.2.3.4: an operator authenticates
with at least two factors) and steps the agent up when the session is weaker.

Agents do not choose whom they review: :func:`take_next` hands them the session already assigned
to them, else a random running agent-led session no agent conducts yet
(:func:`videoid.review.next_led_for`: they watch the person live, :func:`conducted`, and decide
once its checks are done), else a random waiting session (:func:`videoid.review.next_for`). They
open only the
session assigned to them, never one of their own eID, and each view is audited with the
session id as the transaction id. An approval needs the whole :data:`CHECKLIST`; a rejection
needs a :class:`Reason` (``other`` with a free-text note).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, select

from idp import audit, groups
from idp.errors import NotFoundError, VideoIdError
from idp.storage import tables
from idp.storage.database import Tx
from videoid import evidence, policy, records, review
from videoid.policy import Mode
from videoid.records import Session, Status

APPROVED = "approved"
MAX_NOTE = 1000
QUEUE_LIMIT = 200


class Reason(StrEnum):
    """Why an agent rejects a session (the reason code kept with the decision)."""

    DOCUMENT_FORGED = "document_forged"
    DOCUMENT_EXPIRED = "document_expired"
    FACE_MISMATCH = "face_mismatch"
    LIVENESS_DOUBT = "liveness_doubt"
    PERSON_COERCED = "person_coerced"
    OTHER = "other"


# the states of a session that runs (the person is in it), before its review
RUNNING = (Status.CONSENTED, Status.CAPTURING, Status.AWAITING_CODE)
# what an agent confirms before approving (issue 4, item 6)
CHECKLIST = ("security_features_seen", "document_number_read_out", "sms_code_matched")
# the stills an agent sees, by the name in /agent/sessions/{id}/stills/{name}
STILLS = (evidence.Kind.FACE, evidence.Kind.DOCUMENT_FRONT, evidence.Kind.DOCUMENT_BACK)


def is_agent(conn: Connection, *, tenant_id: str, eid_id: str) -> bool:
    """Whether the eID is in the tenant's agent group (display names compared without case)."""
    wanted = policy.load(conn, tenant_id).agent_group.casefold()
    return any(name.casefold() == wanted for name in groups.names_of(conn, eid_id))


@dataclass(slots=True, frozen=True)
class Waiting:
    """A queued session as the queue shows it: no name, so that nobody looks for a person."""

    id: str
    mode: Mode
    queued_at: float
    votes: int
    assigned: bool  # an agent reviews it (an assignment that has lapsed does not count)
    mine: bool  # assigned to the agent looking, lapsed or not (nobody else has taken it)
    own: bool
    voted: bool


def waiting(conn: Connection, *, tenant_id: str, agent_eid_id: str) -> list[Waiting]:
    """The tenant's sessions awaiting review, oldest first."""
    c = tables.videoid_sessions.c
    rows = conn.execute(
        select(c.id, c.eid_id, c.mode, c.review, c.finished_at, c.created_at)
        .where((c.tenant_id == tenant_id) & (c.status == str(Status.AWAITING_REVIEW)))
        .order_by(c.finished_at, c.created_at, c.id)
        .limit(QUEUE_LIMIT)
    ).all()
    out = []
    now = time.time()
    for r in rows:
        rev: Mapping[str, Any] = r.review or {}
        votes = rev.get("votes", [])
        out.append(
            Waiting(
                id=r.id,
                mode=Mode(r.mode),
                queued_at=r.finished_at or r.created_at,
                votes=len(votes),
                assigned=review.holder(rev, now=now) is not None,
                mine=rev.get("assigned_to") == agent_eid_id,
                own=r.eid_id == agent_eid_id,
                voted=any(v.get("agent") == agent_eid_id for v in votes),
            )
        )
    return out


def running_led(conn: Connection, *, tenant_id: str) -> list[Session]:
    """The tenant's agent-led sessions still running (before their review), oldest first."""
    c = tables.videoid_sessions.c
    running = [str(s) for s in RUNNING]
    ids = conn.execute(
        select(c.id)
        .where((c.tenant_id == tenant_id) & (c.mode == str(Mode.AGENT_LED)) & c.status.in_(running))
        .order_by(c.created_at)
        .limit(QUEUE_LIMIT)
    ).scalars()
    return [records.get(conn, i) for i in list(ids)]


def assigned_to(conn: Connection, *, tenant_id: str, agent_eid_id: str) -> Session | None:
    """The session waiting for this agent's decision, if any."""
    for entry in waiting(conn, tenant_id=tenant_id, agent_eid_id=agent_eid_id):
        if entry.mine:
            return records.get(conn, entry.id)
    return None


def conducting(conn: Connection, *, tenant_id: str, agent_eid_id: str) -> Session | None:
    """The running agent-led session this agent conducts, if any."""
    for session in running_led(conn, tenant_id=tenant_id):
        if session.review.get("assigned_to") == agent_eid_id:
            return session
    return None


def take_next(tx: Tx, *, tenant_id: str, agent_eid_id: str, client_ip: str | None) -> Session | None:
    """The session already assigned to the agent (running, then waiting), else a random running
    agent-led one, else a random waiting one (None: nothing for this agent)."""
    for mine in (
        conducting(tx.conn, tenant_id=tenant_id, agent_eid_id=agent_eid_id),
        assigned_to(tx.conn, tenant_id=tenant_id, agent_eid_id=agent_eid_id),
        review.next_led_for(tx, tenant_id=tenant_id, agent_eid_id=agent_eid_id),
    ):
        if mine is not None:
            return mine
    return review.next_for(tx, tenant_id=tenant_id, agent_eid_id=agent_eid_id)


def opened(conn: Connection, *, session_id: str, tenant_id: str, agent_eid_id: str) -> Session:
    """The session if this agent may see it now (``NotFoundError`` outside their tenant;
    ``VideoIdError`` ``own_session``, ``wrong_state`` or ``not_assigned`` otherwise)."""
    session = records.get(conn, session_id)
    if session.tenant_id != tenant_id:
        raise NotFoundError(f"no video identification session {session_id!r}")
    if session.eid_id == agent_eid_id:
        raise VideoIdError("own_session", "an agent cannot review a session of their own eID")
    if session.status is not Status.AWAITING_REVIEW:
        raise VideoIdError("wrong_state", f"the session is {session.status}, not awaiting review")
    if session.review.get("assigned_to") != agent_eid_id:
        raise VideoIdError("not_assigned", "this session is not assigned to this agent")
    return session


def release(tx: Tx, *, session_id: str, tenant_id: str, agent_eid_id: str, client_ip: str | None) -> Session:
    """The agent gives the session assigned to them back to the queue (:func:`videoid.review.release`)."""
    opened(tx.conn, session_id=session_id, tenant_id=tenant_id, agent_eid_id=agent_eid_id)
    return review.release(tx, session_id=session_id, agent_eid_id=agent_eid_id, client_ip=client_ip)


def conducted(conn: Connection, *, session_id: str, tenant_id: str, agent_eid_id: str) -> Session:
    """The running agent-led session if this agent conducts it: whose live video they may watch
    (``NotFoundError`` outside their tenant; ``VideoIdError`` ``own_session``, ``not_assigned``,
    or ``not_live`` once it no longer runs)."""
    session = records.get(conn, session_id)
    if session.tenant_id != tenant_id:
        raise NotFoundError(f"no video identification session {session_id!r}")
    if session.eid_id == agent_eid_id:
        raise VideoIdError("own_session", "an agent cannot watch a session of their own eID")
    if session.mode is not Mode.AGENT_LED or session.review.get("assigned_to") != agent_eid_id:
        raise VideoIdError("not_assigned", "this session is not conducted by this agent")
    if session.status not in RUNNING:
        raise VideoIdError("not_live", f"the session is {session.status}: it no longer runs")
    return session


def watched(tx: Tx, session: Session, *, agent_eid_id: str, client_ip: str | None) -> None:
    """Audit that the agent started watching the person's live video."""
    audit.record(tx, records.event(session, "videoid.live_watched", client_ip=client_ip, agent=agent_eid_id))


def viewed(tx: Tx, session: Session, *, agent_eid_id: str, item: str, client_ip: str | None) -> None:
    """Audit that the agent saw ``item`` (``review`` for the page, or a still's name)."""
    audit.record(
        tx,
        records.event(session, "videoid.review_viewed", client_ip=client_ip, agent=agent_eid_id, item=item),
    )


def still(conn: Connection, *, secret: str, session_id: str, kind: evidence.Kind) -> evidence.Item | None:
    """The newest still of ``kind`` of the session, opened; None when there is none (any more)."""
    e = tables.videoid_evidence.c
    item_id = conn.execute(
        select(e.id)
        .where((e.session_id == session_id) & (e.kind == str(kind)))
        .order_by(e.created_at.desc())
        .limit(1)
    ).scalar()
    return None if item_id is None else evidence.load(conn, secret=secret, item_id=item_id)


def recording_kept(conn: Connection, *, session_id: str) -> bool:
    """Whether the session's recording is in its evidence (a tenant may keep only its hash)."""
    e = tables.videoid_evidence.c
    kept = conn.execute(
        select(e.id).where((e.session_id == session_id) & (e.kind == str(evidence.Kind.RECORDING))).limit(1)
    ).first()
    return kept is not None


def media_of(conn: Connection, *, session_id: str) -> list[str]:
    """The names of the stills the session has, and ``recording`` when its recording is kept."""
    names = stills_of(conn, session_id=session_id)
    return [*names, str(evidence.Kind.RECORDING)] if recording_kept(conn, session_id=session_id) else names


def stills_of(conn: Connection, *, session_id: str) -> list[str]:
    """The names of the stills the session has."""
    e = tables.videoid_evidence.c
    kinds = set(conn.execute(select(e.kind).where(e.session_id == session_id)).scalars())
    return [str(k) for k in STILLS if str(k) in kinds]


@dataclass(slots=True, frozen=True)
class Verdict:
    """An agent's decision as submitted, validated by :func:`verdict`."""

    approve: bool
    reason: str
    checklist: Mapping[str, bool]
    note: str | None


def verdict(*, approve: bool, checklist: Mapping[str, bool], reason: str | None, note: str | None) -> Verdict:
    """Check a decision before it is applied: an approval with every checklist item confirmed,
    a rejection with a known reason code (``other`` needs a note)."""
    seen = {item: bool(checklist.get(item)) for item in CHECKLIST}
    text = (note or "").strip() or None
    if text is not None and len(text) > MAX_NOTE:
        raise VideoIdError("invalid_note", f"the note is longer than {MAX_NOTE} characters")
    if approve:
        missing = [item for item, ok in seen.items() if not ok]
        if missing:
            raise VideoIdError("checklist_incomplete", f"an approval needs every check confirmed: {missing}")
        return Verdict(True, APPROVED, seen, text)
    try:
        code = Reason(reason or "")
    except ValueError:
        raise VideoIdError(
            "invalid_reason", f"a rejection needs one of {[str(r) for r in Reason]}, got {reason!r}"
        ) from None
    if code is Reason.OTHER and text is None:
        raise VideoIdError("note_required", "a rejection for another reason needs a note saying which")
    return Verdict(False, str(code), seen, text)


def decide(
    tx: Tx,
    *,
    session_id: str,
    tenant_id: str,
    agent_eid_id: str,
    decision: Verdict,
    secret: str,
    client_ip: str | None,
) -> Session:
    """Apply an agent's validated decision (:func:`videoid.review.decide` for the rules)."""
    opened(tx.conn, session_id=session_id, tenant_id=tenant_id, agent_eid_id=agent_eid_id)
    return review.decide(
        tx,
        session_id=session_id,
        agent_eid_id=agent_eid_id,
        approve=decision.approve,
        reason=decision.reason,
        secret=secret,
        checklist=decision.checklist,
        note=decision.note,
        client_ip=client_ip,
    )
