"""The automated decision, name matching and the tilt check (no I/O)."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from idp.errors import SettingsError
from idp.settings import load_settings
from tests.support.documents import render
from tests.support.webcam import document_frame
from videoid import tilt
from videoid.decision import Checks, ReasonCode, decide, names_match, normalise_name
from videoid.document.mrz import MRZFormat

GOOD = Checks(
    liveness_passed=True,
    mrz_read=True,
    mrz_valid=True,
    expired=False,
    accepted=True,
    portrait_found=True,
    face_distance=0.41,
    tilt_passed=True,
    sms_matched=True,
    name_matches=True,
)


def test_every_check_holding_approves() -> None:
    assert decide(GOOD).approved and decide(GOOD).reasons == ()


@pytest.mark.parametrize(
    ("change", "reasons"),
    [
        ({"liveness_passed": False}, [ReasonCode.LIVENESS_FAILED]),
        ({"mrz_valid": False}, [ReasonCode.MRZ_INVALID]),
        ({"expired": True}, [ReasonCode.DOCUMENT_EXPIRED]),
        ({"expired": None}, [ReasonCode.DOCUMENT_EXPIRED]),  # an unreadable expiry is not "not expired"
        ({"accepted": False}, [ReasonCode.DOCUMENT_NOT_ACCEPTED]),
        ({"face_distance": 0.5601}, [ReasonCode.FACE_MISMATCH]),
        ({"face_distance": None}, [ReasonCode.NO_FACE_STILL]),
        ({"portrait_found": False}, [ReasonCode.NO_PORTRAIT]),
        ({"tilt_passed": False}, [ReasonCode.TILT_NOT_SEEN]),
        ({"sms_matched": False}, [ReasonCode.SMS_CODE_NOT_MATCHED]),
        ({"name_matches": False}, [ReasonCode.NAME_MISMATCH]),
        ({"mrz_read": False, "mrz_valid": False, "name_matches": False}, [ReasonCode.DOCUMENT_NOT_READ]),
    ],
)
def test_each_failed_check_rejects_with_its_reason(
    change: dict[str, object], reasons: list[ReasonCode]
) -> None:
    outcome = decide(dataclasses.replace(GOOD, **change))  # type: ignore[arg-type]
    assert not outcome.approved and list(outcome.reasons) == reasons


def test_the_threshold_is_inclusive() -> None:
    assert decide(dataclasses.replace(GOOD, face_distance=0.56)).approved


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("Čučnik-Šušteršič", ("CUCNIK", "SUSTERSIC")),
        ("Đurđević", ("DURDEVIC",)),
        ("  ana  marija ", ("ANA", "MARIJA")),
        ("Müller", ("MULLER",)),
        ("Groß", ("GROSS",)),
        ("ANA<<MARIJA", ("ANA", "MARIJA")),
        ("", ()),
    ],
)
def test_names_are_folded_as_the_mrz_prints_them(name: str, words: tuple[str, ...]) -> None:
    assert normalise_name(name) == words


@pytest.mark.parametrize(
    ("surname", "given", "family", "eid_given", "expected"),
    [
        ("NOVAK", "ANA MARIJA", "Novak", "Ana", True),  # the eID has the first given name only
        ("NOVAK", "ANA", "Novak", "Ana Marija", True),  # the MRZ truncated the given names
        ("DURDEVIC", "ZELJKO", "Đurđević", "Željko", True),
        ("NOVAK", "ANA", "Novak", "Marija", False),
        ("NOVAKOVA", "ANA", "Novak", "Ana", False),
        ("NOVAK", "ANA", None, "Ana", False),
        ("", "ANA", "", "Ana", False),
    ],
)
def test_mrz_names_against_the_eid(
    surname: str, given: str, family: str | None, eid_given: str, expected: bool
) -> None:
    assert (
        names_match(mrz_surname=surname, mrz_given=given, family_name=family, given_names=[eid_given])
        is expected
    )


def test_a_tilted_document_changes_its_outline_and_a_flat_one_does_not() -> None:
    document = render(MRZFormat.TD1).image
    tilted, flat = tilt.TiltCheck(), tilt.TiltCheck()
    for i in range(12):
        angle = np.sin(i / 2)
        tilted.add(tilt.find_quad(cv2.cvtColor(document_frame(document, tilt=angle), cv2.COLOR_BGR2GRAY)))
        # slid and scaled in the picture plane, as a photo on a screen moves: no perspective change
        frame = np.roll(document_frame(document), 3 * i, axis=1)
        flat.add(tilt.find_quad(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)))
    assert tilted.passed and tilted.change > 0.2
    assert flat.seen == 12 and not flat.passed and flat.change < 0.05
    assert tilt.find_quad(np.full((480, 640), 40, np.uint8)) is None  # nothing held up


def test_ice_servers_come_from_the_settings() -> None:
    settings = load_settings(
        env={
            "IDP_VIDEOID_ICE_SERVERS": '[{"urls": "stun:stun.example.org:3478"},'
            ' {"urls": ["turn:turn.example.org"], "username": "u", "credential": "c"}]'
        }
    )
    assert settings.videoid_ice_servers[1]["username"] == "u"
    assert load_settings(env={}).videoid_ice_servers == ()
    for wrong in (
        "{}",
        "[1]",
        '[{"urls": "http://x"}]',
        '[{"urls": "turn:x"}]',
        "not json",
        '[{"url": "stun:x"}]',
    ):
        with pytest.raises(SettingsError, match="IDP_VIDEOID_ICE_SERVERS"):
            load_settings(env={"IDP_VIDEOID_ICE_SERVERS": wrong})
