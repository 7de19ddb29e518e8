"""Agents and reviewed sessions for the agent console tests.

A reviewed session is built through the same domain functions a live session ends with
(:mod:`videoid.records`, :func:`videoid.evidence.store_for`, :func:`videoid.review.queue`), with real
JPEG stills from the shared test data and a report shaped as :func:`videoid.outcome.report`
writes it; the live capture that produces them is tested in ``test_session_e2e.py``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import cv2

from idp import eids, groups, sessions
from idp.storage.database import Tx
from levels_of_assurance.ladder import AMR, Level, acr_for
from levels_of_assurance.policy import Factor, Method
from tests.support.server import ServedApp
from videoid import evidence, policy, records, review
from videoid.policy import Mode, TenantPolicy
from videoid.records import Session, Status

TESTDATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "testdata"
FACE = TESTDATA / "faces" / "obama" / "1.jpg"
DOCUMENT_FRONT = TESTDATA / "documents" / "100_pass-hrv.jpg"
DOCUMENT_NUMBER = "007007007"


def report(session_id: str, *, given: str, family: str) -> dict[str, object]:
    return {
        "session": session_id,
        "mode": "reviewed",
        "liveness": {
            "verdict": "passed",
            "reason": None,
            "message": None,
            "challenges": ["turn_left", "blink"],
            "passed": ["turn_left", "blink"],
            "restarts": 0,
            "motion": 0.21,
            "identity_distance": 0.31,
        },
        "document": {
            "format": "TD3",
            "document_code": "P",
            "issuing_state": "HRV",
            "surname": family.upper(),
            "given_names": given.upper(),
            "document_number": DOCUMENT_NUMBER,
            "nationality": "HRV",
            "birth_date": "1985-03-14",
            "sex": "F",
            "expiry_date": "2031-09-30",
            "expired": False,
            "checks": [
                {"name": "document_number", "valid": True},
                {"name": "birth_date", "valid": True},
                {"name": "expiry_date", "valid": True},
                {"name": "composite", "valid": True},
            ],
            "valid": True,
            "problems": [],
            "portrait": True,
            "reads": 2,
            "names_confirmed": True,
            "unconfirmed_fields": [],
        },
        "face": {"distance": 0.4123, "threshold": 0.55, "portrait": True},
        "tilt": {"change": 0.3, "passed": True},
        "sms": {"matched": True},
        "name_matches": True,
        "recording": {"sha256": "0" * 64, "bytes": 1, "kept": False},
        "failed_step": None,
        "failure": None,
        "automated": {"approved": True, "reasons": []},
    }


RECORDING = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(range(256)) * 4


def _jpeg(path: Path) -> bytes:
    image = cv2.imread(str(path))
    assert image is not None, path
    return evidence.jpeg(image)


def _with(
    found: dict[str, Any], recording: dict[str, Any] | None, document: dict[str, Any] | None
) -> dict[str, Any]:
    if recording:
        found["recording"] = {**found["recording"], **recording}
    if document:
        found["document"] = {**found["document"], **document}
    return found


def reviewed_session(
    served: ServedApp,
    person: eids.EID,
    *,
    mode: Mode = Mode.REVIEWED,
    second_agent: bool = False,
    agent_group: str = policy.AGENT_GROUP,
    recording: dict[str, Any] | None = None,
    document: dict[str, Any] | None = None,
) -> Session:
    """A session of ``person`` that finished its automated checks and waits for an agent;
    ``recording`` and ``document`` add to what its report says of the recording and the document."""
    secret = served.settings.secret_key
    tenant_policy = TenantPolicy(mode=mode, second_agent_for_rejection=second_agent, agent_group=agent_group)
    face, front = _jpeg(FACE), _jpeg(DOCUMENT_FRONT)

    def unit(tx: Tx) -> Session:
        policy.save(tx, tenant_id=person.tenant_id, policy=tenant_policy)
        session = records.create(
            tx,
            tenant_id=person.tenant_id,
            eid_id=person.id,
            browser="b" * 32,
            request_id=None,
            mode=mode,
            challenges=["turn_left", "blink"],
            retention_seconds=tenant_policy.retention_seconds,
            client_ip=None,
        )
        records.consent(tx, session.id, client_ip=None)
        records.transition(tx, session.id, Status.CAPTURING, event_type="videoid.capture_started")
        records.transition(tx, session.id, Status.AWAITING_CODE, event_type="videoid.code_step")
        given, family = person.value("given_name") or "Ana", person.value("family_name") or "Novak"
        for kind, media_type, data in (
            (evidence.Kind.FACE, "image/jpeg", face),
            (evidence.Kind.DOCUMENT_FRONT, "image/jpeg", front),
            # a recording as the session keeps it (sealed like the rest; the bytes open an MP4)
            (evidence.Kind.RECORDING, "video/mp4", RECORDING),
            (
                evidence.Kind.REPORT,
                "application/json",
                evidence.report_bytes(
                    _with(report(session.id, given=given, family=family), recording, document)
                ),
            ),
        ):
            evidence.store_for(tx, session, secret=secret, kind=kind, media_type=media_type, data=data)
        return review.queue(tx, session.id, scores={"face_distance": 0.4123}, reasons=[])

    return served.write(unit)


def make_agents(
    served: ServedApp, tenant_id: str, *people: eids.EID, group: str = policy.AGENT_GROUP
) -> None:
    """Put ``people`` in the tenant's agent group (created as SCIM would)."""
    served.write(
        lambda tx: groups.create(tx, tenant_id=tenant_id, display_name=group, members=[p.id for p in people])
    )


def session_cookie(served: ServedApp, person: eids.EID, *, level: Level = Level.ADVANCED) -> str:
    """The cookie of a new SSO session of ``person`` at ``level`` (advanced: password + app code;
    basic: an email link)."""
    now = time.time()
    if level is Level.ADVANCED:
        amr, method = [AMR.PWD, "otp", AMR.MFA], "password+totp"
        factors = [Factor(Method.PASSWORD, (AMR.PWD,), now), Factor(Method.TOTP, ("otp",), now)]
    else:
        amr, method = ["email"], "email_link"
        factors = [Factor(Method.EMAIL_LINK, ("email",), now)]

    def unit(tx: Tx) -> sessions.Issued:
        return sessions.authenticate(
            tx,
            previous=None,
            tenant_id=person.tenant_id,
            eid_id=person.id,
            username=person.username,
            acr=acr_for(level),
            amr=amr,
            ttl=3600,
            client_ip=None,
            method=method,
            factors=factors,
        )

    return served.write(unit).cookie_value


def session_of(served: ServedApp, session_id: str) -> Session:
    return served.run(served.state.db.read(lambda conn: records.get(conn, session_id)))
