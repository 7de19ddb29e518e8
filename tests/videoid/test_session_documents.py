"""The document steps of a live session: the names are confirmed on further frames before the
step ends, within the step's time and a bounded number of reads.

A scripted camera hands the session frames as a live one does (always a new one, 1/15 s apart on
the session's clock); the reads are either the real reader's on real frames or scripted
:class:`DocumentReading` objects, each costing 2.5 s of that clock as OCR does.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

import numpy as np
import pytest

from idp.errors import MRZNotFoundError
from tests.support.documents import Holder, compose, fleck, render
from tests.support.webcam import held_still, portrait_file
from videoid import document_steps
from videoid.capture import Step
from videoid.document.mrz import MRZFormat, parse
from videoid.document.reader import DocumentReading
from videoid.document_steps import CONFIRM_READS
from videoid.frames import LatestFrame
from videoid.liveness import Challenge
from videoid.outcome import document_report
from videoid.policy import TenantPolicy
from videoid.session import LiveSession

TODAY = date(2025, 6, 1)
READ_SECONDS = 2.5
ANA = Holder(surname="NOVAK", given_names="ANA", portrait=None)
CARD = compose(MRZFormat.TD1, ANA)  # the back of an identity card: the names are the third line


def with_given_name(lines: tuple[str, ...], letter: str) -> tuple[str, ...]:
    """The card's MRZ with the last letter of ANA read as ``letter``: every check digit still valid."""
    names = lines[2]
    return (lines[0], lines[1], names[:9] + letter + names[10:])


def reading(lines: tuple[str, ...]) -> DocumentReading:
    return DocumentReading.of(parse(lines), lines, today=TODAY)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Camera(LatestFrame):
    """Always a new frame: the next of ``frames``, in turn, 1/15 s after the last."""

    def __init__(self, frames: Sequence[np.ndarray], clock: Clock) -> None:
        super().__init__()
        self.shown, self.clock, self.count = list(frames), clock, 0

    async def get(self) -> tuple[np.ndarray, float]:
        self.clock.now += 1 / 15
        self.count += 1
        return self.shown[(self.count - 1) % len(self.shown)], self.clock.now


Steps = list[tuple[str, bool, dict[str, Any]]]


def live(frames: Sequence[np.ndarray], *, step_timeout: float = 60.0) -> tuple[LiveSession, Clock, Steps]:
    clock = Clock()
    steps: Steps = []

    async def on_step(name: str, passed: bool, details: dict[str, Any]) -> None:
        steps.append((name, passed, details))

    session = LiveSession(
        [Challenge.TURN_RIGHT], today=TODAY, clock=clock, step_timeout=step_timeout, on_step=on_step
    )
    session.frames = Camera(frames, clock)
    return session, clock, steps


@pytest.fixture(scope="module")
def card_back() -> np.ndarray:
    """A frame showing the back of a card (the reads are scripted; the outline is real)."""
    return held_still(render(MRZFormat.TD1, ANA).image, seed=1)


def scripted(
    monkeypatch: pytest.MonkeyPatch, clock: Clock, reads: Iterator[tuple[str, ...] | None]
) -> list[bool]:
    """The session's OCR gives ``reads`` in turn (None: no MRZ); returns whether each wanted the portrait."""
    asked: list[bool] = []

    def read_document(frame: np.ndarray, *, today: date, portrait: bool = True) -> DocumentReading:
        clock.now += READ_SECONDS
        asked.append(portrait)
        lines = next(reads)
        if lines is None:
            raise MRZNotFoundError("no machine-readable zone")
        return reading(lines)

    monkeypatch.setattr(document_steps, "read_document", read_document)
    return asked


async def test_a_misread_name_with_every_check_digit_valid_is_not_taken_alone(
    monkeypatch: pytest.MonkeyPatch, card_back: np.ndarray
) -> None:
    session, clock, steps = live([card_back])
    session.documents.needs_back = True  # as after the card's photo side
    asked = scripted(monkeypatch, clock, iter([with_given_name(CARD, "B"), CARD, CARD]))
    assert await session._document_step(Step.DOCUMENT_BACK) is None
    capture = session.capture
    assert capture.ocr_reads == 3  # the first read was valid: two more outvoted its B
    assert session.step is Step.TILT  # the card's back read: on to turning it
    assert capture.reading is not None and capture.reading.mrz.given_names == "ANA"
    assert capture.reading.mrz.lines == CARD and capture.back_frame is card_back
    assert asked == [False, False, False]  # the back has no portrait to look for
    assert steps == [
        (
            "document_back",
            True,
            {"mrz": "TD1", "valid": True, "reads": 3, "names_confirmed": True, "unconfirmed_fields": []},
        )
    ]


async def test_two_reads_that_agree_end_the_step(
    monkeypatch: pytest.MonkeyPatch, card_back: np.ndarray
) -> None:
    session, clock, steps = live([card_back])
    scripted(monkeypatch, clock, iter([CARD, CARD, with_given_name(CARD, "B")]))
    assert await session._document_step(Step.DOCUMENT_BACK) is None
    assert session.capture.ocr_reads == 2
    assert steps[0][2]["names_confirmed"] is True


async def test_reads_that_disagree_until_the_timeout_end_with_the_vote_marked_unconfirmed(
    monkeypatch: pytest.MonkeyPatch, card_back: np.ndarray
) -> None:
    session, clock, steps = live([card_back], step_timeout=6.0)
    scripted(monkeypatch, clock, iter([with_given_name(CARD, c) for c in "BACDE"]))
    # the step passes: the agent sees what was not confirmed
    assert await session._document_step(Step.DOCUMENT_BACK) is None
    capture = session.capture
    assert capture.ocr_reads == 3 and clock.now > 6.0  # three reads fit in the step's 6 s
    assert capture.reading is not None and capture.reading.mrz.valid
    assert capture.reading.mrz.given_names == "ANB"  # B, A and C once each: the first valid read's
    assert capture.consensus is not None and capture.consensus.unconfirmed == ("names",)
    name, passed, details = steps[0]
    assert (name, passed) == ("document_back", True)
    assert (details["reads"], details["names_confirmed"], details["unconfirmed_fields"]) == (
        3,
        False,
        ["names"],
    )
    report = document_report(capture.reading, today=TODAY, policy=TenantPolicy(), consensus=capture.consensus)
    assert (report["reads"], report["names_confirmed"], report["unconfirmed_fields"]) == (3, False, ["names"])
    assert report["valid"] and report["given_names"] == "ANB"


async def test_the_confirming_reads_are_bounded(
    monkeypatch: pytest.MonkeyPatch, card_back: np.ndarray
) -> None:
    session, clock, steps = live([card_back])
    scripted(monkeypatch, clock, iter([with_given_name(CARD, c) for c in "BACDEFGH"]))
    assert await session._document_step(Step.DOCUMENT_BACK) is None
    assert session.capture.ocr_reads == 1 + CONFIRM_READS and clock.now < 60.0
    assert steps[0][2]["names_confirmed"] is False and steps[0][2]["reads"] == 1 + CONFIRM_READS


async def test_frames_without_an_mrz_count_against_the_bound(
    monkeypatch: pytest.MonkeyPatch, card_back: np.ndarray
) -> None:
    session, clock, steps = live([card_back])
    scripted(monkeypatch, clock, iter([CARD, *[None] * 10]))
    assert await session._document_step(Step.DOCUMENT_BACK) is None
    assert session.capture.ocr_reads == 1 + CONFIRM_READS
    assert steps[0][2]["reads"] == 1 and steps[0][2]["unconfirmed_fields"] == [
        "document_code",
        "issuing_state",
        "sex",
        "nationality",
        "names",
    ]


async def test_the_check_digit_fields_come_from_the_valid_read(
    monkeypatch: pytest.MonkeyPatch, card_back: np.ndarray
) -> None:
    birth = CARD[1]
    birth_misread = (CARD[0], birth[:1] + "6" + birth[2:], CARD[2])  # 85 read as 86
    assert not parse(birth_misread).valid
    session, clock, steps = live([card_back])
    scripted(monkeypatch, clock, iter([birth_misread, CARD, CARD]))
    assert await session._document_step(Step.DOCUMENT_BACK) is None
    capture = session.capture
    assert capture.reading is not None and capture.reading.mrz.valid
    assert capture.reading.birth_date == date(1985, 3, 14)
    # the misread date's read is of the same document (its number validates): it confirms the names
    assert capture.ocr_reads == 2 and steps[0][2]["names_confirmed"] is True


@pytest.fixture(scope="module")
def passport_frames(tmp_path_factory: pytest.TempPathFactory) -> list[np.ndarray]:
    """Ana Novak's passport held up: a fleck of dirt on the last letter of ANA in the first
    frame, clean in the next two."""
    holder = Holder(
        surname="NOVAK", given_names="ANA", portrait=portrait_file(tmp_path_factory.mktemp("face"))
    )
    passport = render(MRZFormat.TD3, holder)
    return [held_still(fleck(passport, line=0, column=14), seed=1)] + [
        held_still(passport.image, seed=seed) for seed in (2, 3)
    ]


async def test_the_front_page_is_read_again_until_a_real_misread_is_outvoted(
    passport_frames: list[np.ndarray],
) -> None:
    session, _clock, steps = live(passport_frames)
    assert await session._document_step(Step.DOCUMENT_FRONT) is None
    capture = session.capture
    assert capture.front_frame is passport_frames[0] and capture.portrait is not None
    assert session.step is Step.TILT  # a passport has no back to read
    assert capture.ocr_reads == 3
    assert capture.reading is not None and capture.reading.mrz.valid
    assert (capture.reading.mrz.surname, capture.reading.mrz.given_names) == ("NOVAK", "ANA")
    assert capture.reading.mrz.lines == compose(MRZFormat.TD3, ANA)
    name, passed, details = steps[0]
    assert (name, passed, details["mrz"], details["portrait"]) == ("document_front", True, "TD3", True)
    assert (details["reads"], details["names_confirmed"], details["unconfirmed_fields"]) == (3, True, [])
    first = session.documents.reads[0][0].mrz
    assert first.valid and first.given_names != "ANA"  # the fleck did make the first read wrong


async def test_the_page_is_told_while_further_reads_confirm_the_document(
    monkeypatch: pytest.MonkeyPatch, card_back: np.ndarray
) -> None:
    """The person holds the document a few seconds longer than one read takes: the status the page
    polls says so while the confirming reads run, and not before or after."""
    session, clock, _steps = live([card_back])
    seen: list[bool] = []
    reads = iter([None, with_given_name(CARD, "B"), CARD, CARD])

    def read_document(frame: np.ndarray, *, today: date, portrait: bool = True) -> DocumentReading:
        seen.append(session.status()["confirming_document"])
        clock.now += READ_SECONDS
        lines = next(reads)
        if lines is None:
            raise MRZNotFoundError("no machine-readable zone")
        return reading(lines)

    monkeypatch.setattr(document_steps, "read_document", read_document)
    assert session.status()["confirming_document"] is False
    assert await session._document_step(Step.DOCUMENT_BACK) is None
    # no MRZ yet, then the first valid read: not confirming; the two reads after it: confirming
    assert seen == [False, False, True, True]
    assert session.status()["confirming_document"] is False
