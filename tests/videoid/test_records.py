"""Sessions, sealed evidence, retention, proofing and agent review on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from typing import Any

import cv2
import numpy as np
import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import select, update

from idp import audit, eids, proofing, retention
from idp.errors import ConflictError, NotFoundError, VideoIdError
from idp.storage import tables
from idp.storage.database import Database, Tx
from tests.support.factors import events, person
from videoid import evidence, outcome, policy, records, review
from videoid.policy import Mode, TenantPolicy
from videoid.records import Status

SECRET = "evidence-secret-" + "y" * 32
DOCUMENT = {
    "given_names": "ANA",
    "surname": "NOVAK",
    "nationality": "SVN",
    "document_code": "P",
    "document_number": "PA1234567",
    "issuing_state": "SVN",
    "birth_date": "1985-03-14",
    "expiry_date": "2031-09-30",
}


async def new_session(
    db: Database, *, mode: Mode = Mode.AUTOMATED, retention_days: int = 1825
) -> records.Session:
    someone = await person(db)
    await db.write(
        lambda tx: policy.save(
            tx, tenant_id=someone.tenant_id, policy=TenantPolicy(mode=mode, retention_days=retention_days)
        )
    )
    return await db.write(
        lambda tx: records.create(
            tx,
            tenant_id=someone.tenant_id,
            eid_id=someone.id,
            browser="b" * 32,
            request_id=None,
            mode=mode,
            challenges=["turn_left", "blink"],
            retention_seconds=retention_days * 86400.0,
            client_ip="203.0.113.5",
        )
    )


def jpeg() -> bytes:
    image = np.zeros((48, 64, 3), np.uint8)
    cv2.circle(image, (32, 24), 10, (255, 255, 255), -1)
    return evidence.jpeg(image)


async def test_the_state_machine_refuses_skipped_steps(db: Database) -> None:
    session = await new_session(db)
    assert (
        session.status is Status.CREATED and session.belongs_to("b" * 32) and not session.belongs_to("x" * 32)
    )
    with pytest.raises(ConflictError, match="created; it cannot become capturing"):
        await db.write(lambda tx: records.transition(tx, session.id, Status.CAPTURING, event_type="x"))
    consented = await db.write(lambda tx: records.consent(tx, session.id, client_ip=None))
    assert consented.status is Status.CONSENTED and consented.consent_at is not None
    with pytest.raises(ConflictError):
        await db.write(lambda tx: records.consent(tx, session.id, client_ip=None))
    await db.write(lambda tx: records.step(tx, session.id, "liveness", passed=False, reason="static_face"))
    loaded = await db.read(lambda conn: records.get(conn, session.id))
    assert loaded.steps["liveness"]["passed"] is False and loaded.steps["liveness"]["reason"] == "static_face"
    trail = await db.read(lambda conn: audit.export_transaction(conn, session.id))
    assert [e["event_type"] for e in trail] == [
        "videoid.session_started",
        "videoid.consent_given",
        "videoid.step_failed",
    ]
    assert all(e["transaction_name"] == "videoid" and e["eid_id"] == session.eid_id for e in trail)
    with pytest.raises(NotFoundError):
        await db.read(lambda conn: records.get(conn, "nope"))


async def test_evidence_is_sealed_at_rest_and_bound_to_its_row(db: Database) -> None:
    session = await new_session(db)
    picture = jpeg()
    assert picture.startswith(b"\xff\xd8\xff")

    def store(tx: Tx, kind: evidence.Kind, data: bytes) -> str:
        return evidence.store_for(tx, session, secret=SECRET, kind=kind, media_type="image/jpeg", data=data)

    face = await db.write(lambda tx: store(tx, evidence.Kind.FACE, picture))
    report = await db.write(
        lambda tx: store(tx, evidence.Kind.REPORT, evidence.report_bytes({"document": DOCUMENT}))
    )
    rows = await db.read(
        lambda conn: conn.execute(
            select(tables.videoid_evidence).where(tables.videoid_evidence.c.session_id == session.id)
        ).all()
    )
    assert len(rows) == 2
    for row in rows:
        assert b"\xff\xd8\xff" not in row.sealed and b"NOVAK" not in row.sealed  # no plaintext at rest
    opened = await db.read(lambda conn: evidence.load(conn, secret=SECRET, item_id=face))
    assert opened.data == picture and opened.kind is evidence.Kind.FACE
    assert await db.read(lambda conn: evidence.report_of(conn, secret=SECRET, session_id=session.id)) == {
        "document": DOCUMENT
    }
    with pytest.raises(InvalidTag):  # another instance secret does not open it
        await db.read(lambda conn: evidence.load(conn, secret="z" * 48, item_id=face))
    # a sealed item copied into another row does not open there
    sealed_face = next(r.sealed for r in rows if r.id == face)
    await db.write(
        lambda tx: tx.conn.execute(
            update(tables.videoid_evidence)
            .where(tables.videoid_evidence.c.id == report)
            .values(sealed=sealed_face)
        )
    )
    with pytest.raises(InvalidTag):
        await db.read(lambda conn: evidence.load(conn, secret=SECRET, item_id=report))
    stored = [
        e
        for e in await db.read(lambda conn: audit.export_transaction(conn, session.id))
        if e["event_type"] == "videoid.evidence_stored"
    ]
    assert {e["details"]["sha256"] for e in stored} == {r.sha256 for r in rows}


async def test_retention_deletes_expired_evidence_and_says_so(db: Database) -> None:
    kept = await new_session(db)
    expired = await new_session(db, retention_days=1)
    for s in (kept, expired):
        await db.write(
            lambda tx, s=s: evidence.store_for(
                tx, s, secret=SECRET, kind=evidence.Kind.FACE, media_type="image/jpeg", data=jpeg()
            )
        )
    # the expired session's retention ended yesterday
    await db.write(
        lambda tx: tx.conn.execute(
            update(tables.videoid_evidence)
            .where(tables.videoid_evidence.c.session_id == expired.id)
            .values(expires_at=time.time() - 86400)
        )
    )
    purged = await db.write(retention.purge_expired)
    assert purged.videoid_evidence >= 1

    def count(conn: Any, session_id: str) -> int:
        e = tables.videoid_evidence.c
        return len(conn.execute(select(e.id).where(e.session_id == session_id)).all())

    assert await db.read(lambda conn: count(conn, expired.id)) == 0
    assert await db.read(lambda conn: count(conn, kept.id)) == 1
    deleted = [
        e
        for e in await db.read(lambda conn: audit.export_transaction(conn, expired.id))
        if e["event_type"] == "videoid.evidence_deleted"
    ]
    assert len(deleted) == 1 and deleted[0]["details"] == {
        "reason": "retention_ended",
        "kinds": ["face"],
        "items": 1,
    }


async def test_an_approval_proofs_the_eid_and_verifies_its_attributes(db: Database) -> None:
    session = await new_session(db)
    assert not await db.read(lambda conn: proofing.is_proofed(conn, session.eid_id))
    await db.write(lambda tx: outcome.approve(tx, await_session(tx, session.id), document=DOCUMENT))
    proofed = await db.read(lambda conn: eids.get(conn, session.eid_id))
    assert await db.read(lambda conn: proofing.is_proofed(conn, session.eid_id))
    record = await db.read(lambda conn: proofing.current(conn, session.eid_id))
    assert record is not None and (record.method, record.level, record.evidence_id) == (
        "videoid",
        "urn:eid:loa:qualified",
        session.id,
    )
    assert proofed.attributes["family_name"].value == "Novak"  # the eID's spelling, matched by the MRZ
    assert proofed.attributes["nationality"].value == "SVN"
    assert all(
        proofed.attributes[n].verified_method == "videoid"
        and proofed.attributes[n].evidence_ref == session.id
        for n in ("given_name", "family_name", "birthdate", "document_number", "document_expiry")
    )
    await db.write(lambda tx: proofing.revoke(tx, eid_id=session.eid_id, reason="document reported stolen"))
    assert not await db.read(lambda conn: proofing.is_proofed(conn, session.eid_id))
    revoked = await db.read(lambda conn: eids.get(conn, session.eid_id))
    assert revoked.attributes["family_name"].value == "Novak"  # kept, but vouched for no more
    assert all(attr.verified_method != "videoid" for attr in revoked.attributes.values())


def await_session(tx: Tx, session_id: str) -> records.Session:
    return records.get(tx.conn, session_id)


async def reviewed(db: Database, *, second_agent: bool = False) -> tuple[records.Session, str, str]:
    session = await new_session(db, mode=Mode.REVIEWED)
    if second_agent:
        await db.write(
            lambda tx: policy.save(
                tx,
                tenant_id=session.tenant_id,
                policy=TenantPolicy(mode=Mode.REVIEWED, second_agent_for_rejection=True),
            )
        )

    def to_review(tx: Tx) -> records.Session:
        records.consent(tx, session.id, client_ip=None)
        records.transition(tx, session.id, Status.CAPTURING, event_type="videoid.capture_started")
        records.transition(tx, session.id, Status.AWAITING_CODE, event_type="videoid.code_step")
        evidence.store_for(
            tx,
            session,
            secret=SECRET,
            kind=evidence.Kind.REPORT,
            media_type="application/json",
            data=evidence.report_bytes({"document": DOCUMENT}),
        )
        return review.queue(tx, session.id, scores={"face_distance": 0.4}, reasons=[])

    queued = await db.write(to_review)
    agents = []
    for _ in range(2):
        agents.append(
            await db.write(
                lambda tx: (
                    eids.create(
                        tx,
                        tenant_id=session.tenant_id,
                        attributes={"email": f"agent{time.monotonic_ns()}@example.com"},
                    ).id
                )
            )
        )
    return queued, agents[0], agents[1]


async def test_an_agent_approves_a_reviewed_session(db: Database) -> None:
    session, agent, _ = await reviewed(db)
    assert session.status is Status.AWAITING_REVIEW
    with pytest.raises(VideoIdError) as own:
        await db.write(lambda tx: review.assign(tx, session_id=session.id, agent_eid_id=session.eid_id))
    assert own.value.code == "own_session"
    with pytest.raises(VideoIdError) as unassigned:
        await db.write(
            lambda tx: review.decide(
                tx, session_id=session.id, agent_eid_id=agent, approve=True, reason="ok", secret=SECRET
            )
        )
    assert unassigned.value.code == "not_assigned"
    picked = await db.write(lambda tx: review.next_for(tx, tenant_id=session.tenant_id, agent_eid_id=agent))
    assert picked is not None and picked.id == session.id and picked.review["assigned_to"] == agent
    done = await db.write(
        lambda tx: review.decide(
            tx, session_id=session.id, agent_eid_id=agent, approve=True, reason="all_checks_ok", secret=SECRET
        )
    )
    assert done.status is Status.APPROVED and done.decision == "approved"
    assert await db.read(lambda conn: proofing.is_proofed(conn, session.eid_id))
    items = await db.read(lambda conn: evidence.items_of(conn, secret=SECRET, session_id=session.id))
    decision = next(i for i in items if i.kind is evidence.Kind.AGENT_DECISION)
    assert json.loads(decision.data)["agent"] == agent


async def test_a_rejection_can_need_a_second_agent(db: Database) -> None:
    session, first, second = await reviewed(db, second_agent=True)

    async def reject(agent: str) -> records.Session:
        def unit(tx: Tx) -> records.Session:  # one transaction: a refused decision leaves no assignment
            review.assign(tx, session_id=session.id, agent_eid_id=agent)
            return review.decide(
                tx,
                session_id=session.id,
                agent_eid_id=agent,
                approve=False,
                reason="document_doubtful",
                secret=SECRET,
            )

        return await db.write(unit)

    once = await reject(first)
    assert once.status is Status.AWAITING_REVIEW  # one vote is not enough
    assert (
        await db.write(lambda tx: review.next_for(tx, tenant_id=session.tenant_id, agent_eid_id=first))
        is None
    )
    with pytest.raises(VideoIdError) as again:
        await reject(first)
    assert again.value.code == "same_agent"
    twice = await reject(second)
    assert twice.status is Status.REJECTED and twice.reasons == ("document_doubtful",)
    assert not await db.read(lambda conn: proofing.is_proofed(conn, session.eid_id))


async def test_an_assignment_is_held_until_it_lapses_or_is_given_back(db: Database) -> None:
    session, first, second = await reviewed(db)
    await db.write(lambda tx: review.assign(tx, session_id=session.id, agent_eid_id=first))
    with pytest.raises(VideoIdError) as held:
        await db.write(lambda tx: review.assign(tx, session_id=session.id, agent_eid_id=second))
    assert held.value.code == "not_assigned"
    assert (
        await db.write(lambda tx: review.next_for(tx, tenant_id=session.tenant_id, agent_eid_id=second))
        is None
    )
    with pytest.raises(VideoIdError) as not_theirs:
        await db.write(lambda tx: review.release(tx, session_id=session.id, agent_eid_id=second))
    assert not_theirs.value.code == "not_assigned"
    back = await db.write(lambda tx: review.release(tx, session_id=session.id, agent_eid_id=first))
    assert back.review["assigned_to"] is None and back.status is Status.AWAITING_REVIEW
    taken = await db.write(lambda tx: review.next_for(tx, tenant_id=session.tenant_id, agent_eid_id=second))
    assert taken is not None and taken.review["assigned_to"] == second
    # left undecided past ASSIGNMENT_SECONDS: the next agent who asks gets it
    stale = {**taken.review, "assigned_at": time.time() - review.ASSIGNMENT_SECONDS - 1}
    c = tables.videoid_sessions.c
    await db.write(
        lambda tx: tx.conn.execute(
            update(tables.videoid_sessions).where(c.id == session.id).values(review=stale)
        )
    )
    again = await db.write(lambda tx: review.next_for(tx, tenant_id=session.tenant_id, agent_eid_id=first))
    assert again is not None and again.review["assigned_to"] == first
    trail = await events(db, "videoid.review_", tenant_id=session.tenant_id)
    kinds = [(e["event_type"], e["details"]) for e in trail]
    assert kinds == [
        ("videoid.review_assigned", {"agent": first}),
        ("videoid.review_released", {"agent": first}),
        ("videoid.review_assigned", {"agent": second}),
        ("videoid.review_assigned", {"agent": first, "lapsed": second}),
    ]


async def new_agent(db: Database, tenant_id: str) -> str:
    email = f"agent{time.monotonic_ns()}@example.com"
    return (await db.write(lambda tx: eids.create(tx, tenant_id=tenant_id, attributes={"email": email}))).id


async def test_a_running_agent_led_session_goes_to_one_agent_and_then_waits_for_them(db: Database) -> None:
    session = await new_session(db, mode=Mode.AGENT_LED)
    first, second = await new_agent(db, session.tenant_id), await new_agent(db, session.tenant_id)

    async def next_led(agent: str) -> records.Session | None:
        return await db.write(
            lambda tx: review.next_led_for(tx, tenant_id=session.tenant_id, agent_eid_id=agent)
        )

    await db.write(lambda tx: records.consent(tx, session.id, client_ip=None))
    assert await next_led(first) is None  # consented, but no video yet: nothing to watch
    await db.write(
        lambda tx: records.transition(tx, session.id, Status.CAPTURING, event_type="videoid.capture_started")
    )
    assert await next_led(session.eid_id) is None  # never one's own
    with pytest.raises(VideoIdError) as own:
        await db.write(lambda tx: review.conduct(tx, session_id=session.id, agent_eid_id=session.eid_id))
    assert own.value.code == "own_session"
    taken = await next_led(first)
    assert taken is not None and taken.id == session.id and taken.review["assigned_to"] == first
    assert await next_led(second) is None  # one agent conducts it
    with pytest.raises(VideoIdError) as taken_already:
        await db.write(lambda tx: review.conduct(tx, session_id=session.id, agent_eid_id=second))
    assert taken_already.value.code == "not_assigned"
    # its checks queue it for review: it stays with the agent who conducted it
    queued = await db.write(lambda tx: review.queue(tx, session.id, scores={}, reasons=[]))
    assert queued.status is Status.AWAITING_REVIEW and queued.review["assigned_to"] == first
    assert (
        await db.write(lambda tx: review.next_for(tx, tenant_id=session.tenant_id, agent_eid_id=second))
        is None
    )
    with pytest.raises(VideoIdError) as over:
        await db.write(lambda tx: review.conduct(tx, session_id=session.id, agent_eid_id=first))
    assert over.value.code == "wrong_state"
    assigned = await events(db, "videoid.review_assigned", tenant_id=session.tenant_id)
    assert [e["details"] for e in assigned] == [{"agent": first, "live": True}]


async def test_a_reviewed_session_is_never_conducted_live(db: Database) -> None:
    session = await new_session(db, mode=Mode.REVIEWED)
    agent = await new_agent(db, session.tenant_id)
    await db.write(lambda tx: records.consent(tx, session.id, client_ip=None))
    await db.write(
        lambda tx: records.transition(tx, session.id, Status.CAPTURING, event_type="videoid.capture_started")
    )
    assert (
        await db.write(lambda tx: review.next_led_for(tx, tenant_id=session.tenant_id, agent_eid_id=agent))
        is None
    )
    with pytest.raises(VideoIdError) as refused:
        await db.write(lambda tx: review.conduct(tx, session_id=session.id, agent_eid_id=agent))
    assert refused.value.code == "wrong_state"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"mode": "manual"}, "mode must be one of"),
        ({"retention_days": 0}, "retention_days"),
        ({"retention_days": True}, "retention_days"),
        ({"accepted_types": "P"}, "accepted_types"),
        ({"accepted_countries": ["SLOV"]}, "accepted_countries"),
        ({"keep_recording": "yes"}, "keep_recording"),
        ({"colour": "red"}, "unknown videoid policy keys"),
    ],
)
def test_a_wrong_tenant_policy_is_refused(document: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        policy.from_json(document)


def test_the_tenant_policy_round_trips() -> None:
    p = TenantPolicy(mode=Mode.AGENT_LED, accepted_types=frozenset({"P", "ID"}), retention_days=30)
    assert policy.from_json(p.to_json()) == p
    assert policy.from_json(None) == policy.DEFAULT and policy.DEFAULT.retention_days == 1825
