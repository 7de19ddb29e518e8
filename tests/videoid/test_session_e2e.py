"""A whole video identification through the served app, with an aiortc client as the webcam.

The client streams the speaker shot of the test clip, then a rendered passport whose portrait is a
still of the same speaker, then tilts it; it reads back the SMS code. The challenge sequence is
fixed to what the clip does (right, then left) through the service's challenge source.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import av
from sqlalchemy import select

from idp import audit, eids, proofing
from idp.storage import tables
from tests.support.server import ServedApp
from tests.support.videoid_client import advanced_person, identify, last_sms, signed_in, start_session
from tests.support.webcam import Performer
from videoid import evidence, records
from videoid.document.mrz import MRZFormat


def trail(served: ServedApp, session_id: str) -> list[dict[str, object]]:
    return served.run(served.state.db.read(lambda conn: audit.export_transaction(conn, session_id)))


async def test_a_live_person_with_their_passport_is_proofed(
    videoid_app: ServedApp, performer_dir: Path
) -> None:
    served = videoid_app
    person = advanced_person(served)
    async with signed_in(served, person) as browser:
        session_id, csrf = await start_session(browser)
        run = await identify(served, browser, Performer(performer_dir), session_id=session_id, csrf=csrf)
        assert run.final["status"] == "approved", run.final
        assert run.final["decision"] == "approved"
        assert next(s["step"] for s in run.statuses if "step" in s) in ("face", "liveness")
        seen = {s.get("step") for s in run.statuses}
        assert {"liveness", "document_front", "tilt"} <= seen, seen
        result = await browser.get(run.final["result_url"])
        assert 'data-outcome="approved"' in result.text
        # the code came in the language of the page (English here), signed with the tenant's name
        assert re.fullmatch(
            r"\d{6} is your .+ video identification code\. Do not share it with anyone\.", last_sms(served)
        ), last_sms(served)

    def load(conn: object) -> tuple[records.Session, eids.EID, proofing.Proofing | None]:
        return (
            records.get(conn, session_id),  # type: ignore[arg-type]
            eids.get(conn, person.id),  # type: ignore[arg-type]
            proofing.current(conn, person.id),  # type: ignore[arg-type]
        )

    session, proofed, record = served.run(served.state.db.read(load))
    assert session.status is records.Status.APPROVED and session.reasons == ()
    assert session.scores["face_distance"] <= 0.56
    assert record is not None and record.method == "videoid" and record.evidence_id == session_id
    assert record.level == "urn:eid:loa:qualified"
    for name, value in {
        "given_name": "Ana",
        "family_name": "Novak",
        "birthdate": "1985-03-14",
        "nationality": "UTO",
        "document_number": "PA1234567",
        "document_type": "P",
        "document_issuer": "UTO",
        "document_expiry": "2031-09-30",
    }.items():
        attribute = proofed.attributes[name]
        assert (attribute.value, attribute.verified_method, attribute.evidence_ref) == (
            value,
            "videoid",
            session_id,
        )

    events = [e["event_type"] for e in trail(served, session_id)]
    for expected in (
        "videoid.session_started",
        "videoid.consent_given",
        "videoid.capture_started",
        "videoid.step_passed",
        "videoid.code_step",
        "videoid.evidence_stored",
        "eid.proofed",
        "videoid.decision",
    ):
        assert expected in events, (expected, events)
    assert events.index("videoid.consent_given") < events.index("videoid.capture_started")
    steps = [
        e["details"]["step"] for e in trail(served, session_id) if e["event_type"] == "videoid.step_passed"
    ]  # type: ignore[index]
    assert steps == ["liveness", "document_front", "tilt"]

    # the evidence is sealed at rest: no JPEG or MP4 bytes in the stored rows, all of it opens
    # (the plaintext's own bytes are looked for: a three-byte magic number turns up in a megabyte
    # of ciphertext by chance, about once in sixteen recordings)
    rows = served.run(
        served.state.db.read(
            lambda conn: conn.execute(
                select(tables.videoid_evidence).where(tables.videoid_evidence.c.session_id == session_id)
            ).all()
        )
    )
    kinds = sorted(r.kind for r in rows)
    assert kinds == ["document_front", "face", "recording", "report"], kinds
    secret = served.settings.secret_key
    items = served.run(
        served.state.db.read(lambda conn: evidence.items_of(conn, secret=secret, session_id=session_id))
    )
    by_kind = {i.kind: i for i in items}
    for row in rows:
        plain = by_kind[evidence.Kind(row.kind)].data
        for start in (0, len(plain) // 2, max(0, len(plain) - 32)):
            assert plain[start : start + 32] not in row.sealed, (row.kind, start)
    assert by_kind[evidence.Kind.FACE].data.startswith(b"\xff\xd8\xff")
    assert by_kind[evidence.Kind.DOCUMENT_FRONT].data.startswith(b"\xff\xd8\xff")
    assert by_kind[evidence.Kind.RECORDING].data[4:8] == b"ftyp"
    report = served.run(
        served.state.db.read(lambda conn: evidence.report_of(conn, secret=secret, session_id=session_id))
    )
    assert report is not None
    assert report["document"]["valid"] and report["document"]["surname"] == "NOVAK"
    # the names (no check digit covers them) were confirmed by at least two reads, not taken from one
    assert report["document"]["names_confirmed"] and report["document"]["reads"] >= 2, report["document"]
    assert report["document"]["unconfirmed_fields"] == []
    assert report["liveness"]["passed"] == ["turn_right", "turn_left"]
    assert report["recording"]["sha256"] == by_kind[evidence.Kind.RECORDING].sha256
    # an automated session declines the sound the client offered: nobody would listen to it
    assert report["recording"]["audio"] is False
    with av.open(io.BytesIO(by_kind[evidence.Kind.RECORDING].data)) as container:
        assert [stream.type for stream in container.streams] == ["video"]
    assert report["sms"] == {"matched": True}
    assert not list((served.settings.var_dir / "videoid").glob("*.mp4"))  # plaintext recording gone
    assert served.run(served.state.db.read(audit.verify)).events > 0


async def test_a_live_person_with_their_identity_card_is_proofed_from_both_sides(
    videoid_app: ServedApp, performer_dir: Path
) -> None:
    """A TD1 card: the photo side shows no MRZ, so the session asks for the back, reads the MRZ
    there, and matches the face against the front's photo."""
    served = videoid_app
    person = advanced_person(served)
    async with signed_in(served, person) as browser:
        session_id, csrf = await start_session(browser)
        card = Performer(performer_dir, fmt=MRZFormat.TD1)
        run = await identify(served, browser, card, session_id=session_id, csrf=csrf, microphone=False)
        assert run.final["status"] == "approved", run.final
        seen = {s.get("step") for s in run.statuses}
        assert {"document_front", "document_back", "tilt"} <= seen, seen
    record = served.run(served.state.db.read(lambda conn: proofing.current(conn, person.id)))  # type: ignore[arg-type]
    assert record is not None and record.evidence_id == session_id


async def test_a_photo_held_to_the_camera_is_rejected(videoid_app: ServedApp, performer_dir: Path) -> None:
    served = videoid_app
    person = advanced_person(served)
    performer = Performer(performer_dir, mode="photo")
    async with signed_in(served, person) as browser:
        session_id, csrf = await start_session(browser)
        run = await identify(served, browser, performer, session_id=session_id, csrf=csrf, timeout=60)
    assert run.final["status"] == "rejected", run.final
    assert "liveness_failed" in run.final["reasons"]
    assert "document_front" not in {s.get("step") for s in run.statuses}
    events = trail(served, session_id)
    failed = [e for e in events if e["event_type"] == "videoid.step_failed"]
    assert failed and failed[0]["details"]["step"] == "liveness"  # type: ignore[index]
    assert failed[0]["details"]["reason"] in ("replayed_frames", "static_face")  # type: ignore[index]
    assert served.run(served.state.db.read(lambda conn: proofing.current(conn, person.id))) is None
