"""What a finished capture amounts to: the checks, the report kept as evidence, and an approval.

:func:`checks_of` turns a capture (:class:`videoid.capture.Capture`) into the decision's inputs;
:func:`report` is the JSON kept (sealed) as the session's report; :func:`approve` marks the eID
proofed and its name, birth date, nationality and document data verified by ``videoid``, with the
session id as the evidence reference (used by the automated decision and by an agent's approval).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from idp import eids, proofing
from idp.storage.database import Tx
from levels_of_assurance.ladder import Level, acr_for
from videoid.capture import Capture
from videoid.decision import Checks, Outcome, names_match
from videoid.document.consensus import Combined, combine
from videoid.document.reader import DocumentReading, check_document
from videoid.faces import MATCH_THRESHOLD
from videoid.policy import TenantPolicy
from videoid.records import Session

METHOD = proofing.VIDEOID


def _iso(d: date | None) -> str | None:
    return None if d is None else d.isoformat()


def document_report(
    reading: DocumentReading, *, today: date, policy: TenantPolicy, consensus: Combined | None = None
) -> dict[str, Any]:
    """The document part of the report, with how many reads the MRZ was voted over (``consensus``;
    the one reading alone without it) and which fields without a check digit they did not confirm."""
    mrz = reading.mrz
    consensus = consensus or combine([reading])
    assert consensus is not None
    problems = check_document(
        reading,
        today=today,
        accepted_countries=policy.accepted_countries,
        accepted_types=policy.accepted_types,
    )
    return {
        "format": str(mrz.format),
        "document_code": mrz.document_code.rstrip("<"),
        "issuing_state": mrz.issuing_state,
        "surname": mrz.surname,
        "given_names": mrz.given_names,
        "document_number": mrz.document_number,
        "nationality": mrz.nationality,
        "birth_date": _iso(reading.birth_date),
        "sex": mrz.sex,
        "expiry_date": _iso(reading.expiry_date),
        "expired": reading.expired,
        "checks": [{"name": c.name, "valid": c.valid} for c in mrz.checks],
        "valid": mrz.valid,
        "problems": [str(p.code) for p in problems],
        "portrait": reading.portrait is not None,
        "reads": consensus.reads,
        "names_confirmed": consensus.names_confirmed,
        "unconfirmed_fields": list(consensus.unconfirmed),
    }


def checks_of(
    capture: Capture, *, person: eids.EID, today: date, policy: TenantPolicy, sms_matched: bool
) -> tuple[Checks, dict[str, Any] | None]:
    """The decision's inputs, and the document part of the report (None when nothing was read)."""
    liveness = capture.liveness
    document = None
    accepted = expired_known = False
    expired: bool | None = None
    matches = False
    if capture.reading is not None:
        document = document_report(capture.reading, today=today, policy=policy, consensus=capture.consensus)
        problems = set(document["problems"])
        accepted = not problems & {"document_type_not_accepted", "issuing_country_not_accepted"}
        expired_known = capture.reading.expiry_date is not None
        expired = capture.reading.expired if expired_known else None
        matches = names_match(
            mrz_surname=capture.reading.mrz.surname,
            mrz_given=capture.reading.mrz.given_names,
            family_name=person.value("family_name"),
            given_names=[person.value("given_name")],
        )
    checks = Checks(
        liveness_passed=liveness is not None and str(liveness.verdict) == "passed",
        mrz_read=capture.reading is not None,
        mrz_valid=capture.reading is not None and capture.reading.mrz.valid,
        expired=expired,
        accepted=accepted,
        portrait_found=capture.portrait is not None,
        face_distance=capture.face_distance,
        tilt_passed=capture.tilt_passed,
        sms_matched=sms_matched,
        name_matches=matches,
    )
    return checks, document


def report(
    session: Session,
    capture: Capture,
    *,
    checks: Checks,
    document: Mapping[str, Any] | None,
    outcome: Outcome,
    recording: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The session's report: what was checked and found, for the evidence and for an agent."""
    live = capture.liveness
    return {
        "session": session.id,
        "mode": str(session.mode),
        "liveness": None
        if live is None
        else {
            "verdict": str(live.verdict),
            "reason": None if live.reason is None else str(live.reason),
            "message": live.message,
            "challenges": [str(c) for c in live.challenges],
            "passed": [str(c) for c in live.passed],
            "restarts": live.restarts,
            "motion": round(live.motion, 4),
            "identity_distance": None if live.identity_distance is None else round(live.identity_distance, 4),
        },
        "document": None if document is None else dict(document),
        "face": {
            "distance": None if capture.face_distance is None else round(capture.face_distance, 4),
            "threshold": MATCH_THRESHOLD,
            "portrait": capture.portrait is not None,
        },
        "tilt": {"change": round(capture.tilt_change, 4), "passed": capture.tilt_passed},
        "sms": {"matched": checks.sms_matched},
        "name_matches": checks.name_matches,
        "recording": None if recording is None else dict(recording),
        "failed_step": None if capture.failed is None else str(capture.failed),
        "failure": capture.failure,
        "automated": {"approved": outcome.approved, "reasons": [str(r) for r in outcome.reasons]},
    }


def verified_values(person: eids.EID, document: Mapping[str, Any]) -> dict[str, str]:
    """The attributes an approval verifies: the eID's names (the MRZ matched them) and the
    document's data as read."""
    values = {
        "given_name": person.value("given_name") or document["given_names"].title(),
        "family_name": person.value("family_name") or document["surname"].title(),
        "nationality": document["nationality"],
        "document_type": document["document_code"],
        "document_number": document["document_number"],
        "document_issuer": document["issuing_state"],
    }
    if document.get("birth_date"):
        values["birthdate"] = document["birth_date"]
    if document.get("expiry_date"):
        values["document_expiry"] = document["expiry_date"]
    return {k: v for k, v in values.items() if v}


def approve(tx: Tx, session: Session, *, document: Mapping[str, Any]) -> None:
    """Mark the eID proofed (qualified level) and its attributes verified by this session."""
    person = eids.get(tx.conn, session.eid_id)
    eids.set_verified(
        tx, eid_id=person.id, values=verified_values(person, document), method=METHOD, evidence_ref=session.id
    )
    proofing.record(
        tx, eid_id=person.id, method=METHOD, level=acr_for(Level.QUALIFIED), evidence_id=session.id
    )
