"""Agent review of sessions in the reviewed and agent-led modes (the console's domain functions).

- :func:`queue` puts a session that finished its automated checks in ``awaiting_review``;
- :func:`assign` gives it to an agent (:func:`next_for` picks one at random from the tenant's
  queue: no agent chooses whom they review);
- :func:`decide` records the agent's approval or rejection with a reason code;
- :func:`conduct` gives a running agent-led session to an agent (:func:`next_led_for` picks one
  at random), who watches it live; the assignment stays when the session is queued, so it
  waits for the agent who conducted it.

An assignment is not for ever: the agent can give the session back (:func:`release`), and one left
undecided for :data:`ASSIGNMENT_SECONDS` lapses, so that :func:`next_for` gives it to another
agent (the first one keeps it until then).

An agent never reviews a session of their own eID. When the tenant's policy says so
(``second_agent_for_rejection``), a first rejection only records the agent's vote and returns
the session to the queue; a second agent, another one, makes it final. An approval applies
:func:`videoid.outcome.approve` (the eID proofed, its attributes verified).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update

from idp import audit
from idp.errors import VideoIdError
from idp.storage import tables
from idp.storage.database import Tx
from videoid import evidence, outcome, policy, records
from videoid.policy import Mode
from videoid.records import Session, Status

# the agent-led sessions an agent is given while they run: the person's video is on its way
CONDUCTED = frozenset({Status.CAPTURING})
# an assignment undecided this long lapses: an agent who closed the page holds no session up
ASSIGNMENT_SECONDS = 30 * 60


def holder(review: Mapping[str, Any], *, now: float) -> str | None:
    """The agent a waiting session is assigned to, unless the assignment has lapsed."""
    agent = review.get("assigned_to")
    if not agent or now - float(review.get("assigned_at") or 0.0) >= ASSIGNMENT_SECONDS:
        return None
    return str(agent)


def queue(tx: Tx, session_id: str, *, scores: dict[str, Any], reasons: list[str]) -> Session:
    """Hand a session to the agents, with the automated result as their starting point. The agent
    who conducted an agent-led session keeps it, and their time to decide starts now."""
    session = records.transition(
        tx,
        session_id,
        Status.AWAITING_REVIEW,
        event_type="videoid.queued_for_review",
        values={"scores": scores, "reasons": reasons},
        recommendation="approve" if not reasons else "reject",
        reasons=reasons,
    )
    if not session.review.get("assigned_to"):
        return session
    _set_review(tx, session, {**session.review, "assigned_at": tx.now})
    return records.get(tx.conn, session_id)


def _own(session: Session, agent_eid_id: str) -> None:
    if session.eid_id == agent_eid_id:
        raise VideoIdError("own_session", "an agent cannot review a session of their own eID")


def _set_review(tx: Tx, session: Session, review: dict[str, Any]) -> None:
    c = tables.videoid_sessions.c
    tx.conn.execute(
        update(tables.videoid_sessions).where(c.id == session.id).values(review=review, updated_at=tx.now)
    )


def assign(tx: Tx, *, session_id: str, agent_eid_id: str) -> Session:
    """Give a waiting session to the agent: one nobody holds, or whose assignment has lapsed."""
    session = records.get(tx.conn, session_id, lock=True)
    if session.status is not Status.AWAITING_REVIEW:
        raise VideoIdError("wrong_state", f"the session is {session.status}, not awaiting review")
    _own(session, agent_eid_id)
    review = dict(session.review)
    if holder(review, now=tx.now) not in (None, agent_eid_id):
        raise VideoIdError("not_assigned", "another agent reviews this session")
    lapsed = review.get("assigned_to") if review.get("assigned_to") not in (None, agent_eid_id) else None
    review["assigned_to"], review["assigned_at"] = agent_eid_id, tx.now
    _set_review(tx, session, review)
    details = {"agent": agent_eid_id} if lapsed is None else {"agent": agent_eid_id, "lapsed": lapsed}
    audit.record(tx, records.event(session, "videoid.review_assigned", **details))
    return records.get(tx.conn, session_id)


def release(tx: Tx, *, session_id: str, agent_eid_id: str, client_ip: str | None = None) -> Session:
    """The agent gives a waiting session assigned to them back to the queue, undecided."""
    session = records.get(tx.conn, session_id, lock=True)
    if session.status is not Status.AWAITING_REVIEW:
        raise VideoIdError("wrong_state", f"the session is {session.status}, not awaiting review")
    review = dict(session.review)
    if review.get("assigned_to") != agent_eid_id:
        raise VideoIdError("not_assigned", "this session is not assigned to this agent")
    review["assigned_to"], review["assigned_at"] = None, None
    _set_review(tx, session, review)
    audit.record(
        tx, records.event(session, "videoid.review_released", client_ip=client_ip, agent=agent_eid_id)
    )
    return records.get(tx.conn, session_id)


def next_for(tx: Tx, *, tenant_id: str, agent_eid_id: str) -> Session | None:
    """A random unassigned session of the tenant's queue that the agent may review, assigned to them."""
    c = tables.videoid_sessions.c
    rows = tx.conn.execute(
        select(c.id, c.eid_id, c.review).where(
            (c.tenant_id == tenant_id)
            & (c.status == str(Status.AWAITING_REVIEW))
            & (c.eid_id != agent_eid_id)
        )
    ).all()
    free = [r for r in rows if holder(r.review or {}, now=tx.now) is None]
    open_ = [r for r in free if agent_eid_id not in {v["agent"] for v in (r.review or {}).get("votes", [])}]
    while open_:
        row = open_.pop(secrets.randbelow(len(open_)))
        try:
            return assign(tx, session_id=row.id, agent_eid_id=agent_eid_id)
        except VideoIdError as exc:  # another agent took it since the rows were read
            if exc.code not in ("not_assigned", "wrong_state"):
                raise
    return None


def conduct(tx: Tx, *, session_id: str, agent_eid_id: str) -> Session:
    session = records.get(tx.conn, session_id, lock=True)
    if session.mode is not Mode.AGENT_LED or session.status not in CONDUCTED:
        raise VideoIdError("wrong_state", f"the session is a {session.mode} one, {session.status}: not live")
    _own(session, agent_eid_id)
    review = dict(session.review)
    if review.get("assigned_to") not in (None, agent_eid_id):
        raise VideoIdError("not_assigned", "another agent conducts this session")
    review["assigned_to"], review["assigned_at"] = agent_eid_id, tx.now
    _set_review(tx, session, review)
    audit.record(tx, records.event(session, "videoid.review_assigned", agent=agent_eid_id, live=True))
    return records.get(tx.conn, session_id)


def next_led_for(tx: Tx, *, tenant_id: str, agent_eid_id: str) -> Session | None:
    """A random running agent-led session of the tenant that no agent conducts yet (never the
    agent's own), assigned to the agent; None when there is none."""
    c = tables.videoid_sessions.c
    rows = tx.conn.execute(
        select(c.id, c.review).where(
            (c.tenant_id == tenant_id)
            & (c.mode == str(Mode.AGENT_LED))
            & c.status.in_([str(s) for s in CONDUCTED])
            & (c.eid_id != agent_eid_id)
        )
    ).all()
    free = [r for r in rows if not (r.review or {}).get("assigned_to")]
    if not free:
        return None
    return conduct(tx, session_id=free[secrets.randbelow(len(free))].id, agent_eid_id=agent_eid_id)


def decide(
    tx: Tx,
    *,
    session_id: str,
    agent_eid_id: str,
    approve: bool,
    reason: str,
    secret: str,
    checklist: Mapping[str, bool] | None = None,
    note: str | None = None,
    client_ip: str | None = None,
) -> Session:
    """An agent's decision on a session assigned to them (module docstring for the rules).

    ``checklist`` (what the agent confirmed) and ``note`` (their free text) are kept with the vote
    in the sealed evidence; the audit trail gets the checklist, not the free text."""
    session = records.get(tx.conn, session_id, lock=True)
    if session.status is not Status.AWAITING_REVIEW:
        raise VideoIdError("wrong_state", f"the session is {session.status}, not awaiting review")
    _own(session, agent_eid_id)
    review = dict(session.review)
    if review.get("assigned_to") != agent_eid_id:
        raise VideoIdError("not_assigned", "this session is not assigned to this agent")
    if not reason or len(reason) > 64:
        raise VideoIdError("invalid_reason", "a reason code of 1-64 characters is required")
    votes = list(review.get("votes", []))
    if any(v["agent"] == agent_eid_id for v in votes):
        raise VideoIdError("same_agent", "this agent has already decided this session")
    vote: dict[str, Any] = {"agent": agent_eid_id, "approve": approve, "reason": reason, "at": tx.now}
    if checklist is not None:
        vote["checklist"] = dict(checklist)
    if note:
        vote["note"] = note
    votes.append(vote)
    seen: dict[str, Any] = {"checklist": dict(checklist)} if checklist is not None else {}
    review.update(votes=votes, assigned_to=None)
    _set_review(tx, session, review)
    needs_second = policy.load(tx.conn, session.tenant_id).second_agent_for_rejection
    rejections = {v["agent"] for v in votes if not v["approve"]}
    if not approve and needs_second and len(rejections) < 2:
        audit.record(
            tx,
            records.event(
                session,
                "videoid.review_vote",
                client_ip=client_ip,
                agent=agent_eid_id,
                approve=False,
                reason=reason,
                **seen,
            ),
        )
        return records.get(tx.conn, session_id)
    evidence.store_for(
        tx,
        session,
        secret=secret,
        kind=evidence.Kind.AGENT_DECISION,
        media_type="application/json",
        data=evidence.report_bytes(votes[-1]),
    )
    if approve:
        report = evidence.report_of(tx.conn, secret=secret, session_id=session_id)
        if report is None or not report.get("document"):
            raise VideoIdError("wrong_state", "the session's report is missing: nothing to approve")
        outcome.approve(tx, session, document=report["document"])
    return records.transition(
        tx,
        session_id,
        Status.APPROVED if approve else Status.REJECTED,
        event_type="videoid.decision",
        values={"decision": "approved" if approve else "rejected", "reasons": [] if approve else [reason]},
        client_ip=client_ip,
        decided_by="agent",
        agents=[v["agent"] for v in votes],
        reason=reason,
        **seen,
    )
