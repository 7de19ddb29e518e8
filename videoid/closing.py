"""The end of a video identification: the decision, the sealed evidence, the outcome.

:func:`conclude` is one unit of work: it decides on the capture (:mod:`videoid.outcome`,
:mod:`videoid.decision`), seals the evidence (the face and document stills, the recording when the
tenant keeps it, the report) and either records the automated decision, approving the identity
on success, or queues the session for an agent's review. :func:`take_recording` reads the
recording to seal and deletes its plaintext file, off the event loop.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from idp import eids
from idp.storage.database import Tx
from videoid import decision, evidence, outcome, policy, records, review
from videoid.capture import Capture
from videoid.records import Session, Status
from videoid.webrtc import Recording

MAX_RECORDING = 256 * 1024 * 1024


def take_recording(recording: Recording | None) -> bytes | None:
    """The recording's bytes (to seal) unless too large; the plaintext file is deleted."""
    if recording is None:
        return None
    try:
        if recording.size <= MAX_RECORDING:
            return recording.path.read_bytes()
        return None
    finally:
        recording.path.unlink(missing_ok=True)


def conclude(
    tx: Tx,
    session_id: str,
    capture: Capture,
    *,
    secret: str,
    today: date,
    sms_matched: bool,
    recording: Recording | None,
    recording_data: bytes | None,
) -> Session:
    """Decide session ``session_id`` on ``capture`` and store its evidence and outcome."""
    current = records.get(tx.conn, session_id, lock=True)
    tenant_policy = policy.load(tx.conn, current.tenant_id)
    person = eids.get(tx.conn, current.eid_id)
    checks, document = outcome.checks_of(
        capture, person=person, today=today, policy=tenant_policy, sms_matched=sms_matched
    )
    result = decision.decide(checks)
    kept = recording_data is not None and tenant_policy.keep_recording
    rec = (
        None
        if recording is None
        else {
            "sha256": recording.sha256,
            "bytes": recording.size,
            "kept": kept,
            "audio": recording.audio,
            "agent_voice": recording.agent_voice,
        }
    )
    report = outcome.report(current, capture, checks=checks, document=document, outcome=result, recording=rec)
    _store_evidence(tx, current, capture, report, recording_data if kept else None, secret=secret)
    scores = {
        "face_distance": report["face"]["distance"],
        "liveness_motion": (report["liveness"] or {}).get("motion"),
        "tilt_change": report["tilt"]["change"],
        "mrz_valid": checks.mrz_valid,
        "names_confirmed": None if document is None else document["names_confirmed"],
    }
    reasons = [str(r) for r in result.reasons]
    if current.mode is not policy.Mode.AUTOMATED:
        return review.queue(tx, current.id, scores=scores, reasons=reasons)
    if result.approved:
        assert document is not None
        outcome.approve(tx, current, document=document)
    return records.transition(
        tx,
        current.id,
        Status.APPROVED if result.approved else Status.REJECTED,
        event_type="videoid.decision",
        success=result.approved,
        values={
            "decision": "approved" if result.approved else "rejected",
            "reasons": reasons,
            "scores": scores,
        },
        decided_by="automated",
        reasons=reasons,
    )


def _store_evidence(
    tx: Tx,
    session: Session,
    capture: Capture,
    report: dict[str, Any],
    recording: bytes | None,
    *,
    secret: str,
) -> None:
    def put(kind: evidence.Kind, media_type: str, data: bytes) -> None:
        evidence.store_for(tx, session, secret=secret, kind=kind, media_type=media_type, data=data)

    if capture.still is not None:
        put(evidence.Kind.FACE, "image/jpeg", evidence.jpeg(capture.still.frame))
    if capture.front_frame is not None:
        put(evidence.Kind.DOCUMENT_FRONT, "image/jpeg", evidence.jpeg(capture.front_frame))
    if capture.back_frame is not None:
        put(evidence.Kind.DOCUMENT_BACK, "image/jpeg", evidence.jpeg(capture.back_frame))
    if recording is not None:
        put(evidence.Kind.RECORDING, "video/mp4", recording)
    put(evidence.Kind.REPORT, "application/json", evidence.report_bytes(report))
