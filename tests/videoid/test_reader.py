"""Reading real specimens and synthetic documents end to end: locate, OCR, correction, portrait."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import cv2
import dlib
import numpy as np
import pytest

from idp.cli import main
from idp.errors import DocumentError, MRZNotFoundError, NotAnImageError
from tests.support.documents import FACES, Holder, render
from videoid.document.mrz import MRZFormat
from videoid.document.portrait import choose_face
from videoid.document.reader import (
    ProblemCode,
    check_document,
    load_image,
    load_image_file,
    read_document,
    read_document_async,
)

DOCUMENTS = Path(__file__).resolve().parents[2] / ".." / "shared" / "testdata" / "documents"
TODAY = date(2025, 6, 1)

SPECIMENS = {
    "100_id-si.jpg": {
        "lines": (
            "I<SI<09999100180706966505468<<",
            "6606079F0807276SI<<<<<<<<<<<<0",
            "VZOREC<<TINA<<<<<<<<<<<<<<<<<<",
        ),
        "format": MRZFormat.TD1,
        "document_code": "I",
        "issuing_state": "SI",
        "surname": "VZOREC",
        "given_names": "TINA",
        "document_number": "099991001",
        "nationality": "SI",
        "birth": date(1966, 6, 7),
        "sex": "F",
        "expiry": date(2008, 7, 27),
        "optional_data": "0706966505468",
        "portrait": False,
    },
    "100_pass-hrv.jpg": {
        "lines": (
            "P<HRVSPECIMEN<<SPECIMEN<<<<<<<<<<<<<<<<<<<<<",
            "0070070071HRV8212258F1407019<<<<<<<<<<<<<<06",
        ),
        "format": MRZFormat.TD3,
        "document_code": "P",
        "issuing_state": "HRV",
        "surname": "SPECIMEN",
        "given_names": "SPECIMEN",
        "document_number": "007007007",
        "nationality": "HRV",
        "birth": date(1982, 12, 25),
        "sex": "F",
        "expiry": date(2014, 7, 1),
        "optional_data": "",
        "portrait": True,
    },
    "53_id-d.jpg": {
        "lines": (
            "IDD<<T220001293<<<<<<<<<<<<<<<",
            "6408125<2010315D<<<<<<<<<<<<<4",
            "MUSTERMANN<<ERIKA<<<<<<<<<<<<<",
        ),
        "format": MRZFormat.TD1,
        "document_code": "ID",
        "issuing_state": "D",
        "surname": "MUSTERMANN",
        "given_names": "ERIKA",
        "document_number": "T22000129",
        "nationality": "D",
        "birth": date(1964, 8, 12),
        "sex": "X",
        "expiry": date(2020, 10, 31),
        "optional_data": "",
        "portrait": False,
    },
    "100_pass-uto.jpg": {
        "lines": (
            "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
            "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
        ),
        "format": MRZFormat.TD3,
        "document_code": "P",
        "issuing_state": "UTO",
        "surname": "ERIKSSON",
        "given_names": "ANNA MARIA",
        "document_number": "L898902C3",
        "nationality": "UTO",
        "birth": date(1974, 8, 12),
        "sex": "F",
        "expiry": date(2012, 4, 15),
        "optional_data": "ZE184226B",
        "portrait": True,
    },
}


@pytest.mark.parametrize("name", sorted(SPECIMENS))
def test_specimen_reads_exactly_with_every_check_digit_valid(name: str) -> None:
    truth = SPECIMENS[name]
    reading = read_document(load_image_file(DOCUMENTS / name), today=TODAY)
    mrz = reading.mrz
    assert mrz.lines == truth["lines"]
    assert all(c.valid for c in mrz.checks), [c for c in mrz.checks if not c.valid]
    assert mrz.format is truth["format"]
    assert mrz.document_code == truth["document_code"]
    assert mrz.issuing_state == truth["issuing_state"]
    assert (mrz.surname, mrz.given_names) == (truth["surname"], truth["given_names"])
    assert mrz.document_number == truth["document_number"]
    assert mrz.nationality == truth["nationality"]
    assert (reading.birth_date, mrz.sex, reading.expiry_date) == (
        truth["birth"],
        truth["sex"],
        truth["expiry"],
    )
    assert mrz.optional_data == truth["optional_data"]
    assert reading.expired  # every specimen has expired by 2025
    assert (reading.portrait is not None) is truth["portrait"]


def test_specimen_read_from_a_rotated_photo() -> None:
    image = load_image_file(DOCUMENTS / "100_pass-uto.jpg")
    h, w = image.shape[:2]
    canvas = cv2.copyMakeBorder(image, 80, 80, 80, 80, cv2.BORDER_CONSTANT, value=(90, 80, 70))
    rotation = cv2.getRotationMatrix2D((canvas.shape[1] / 2, canvas.shape[0] / 2), 4.0, 1.0)
    tilted = cv2.warpAffine(canvas, rotation, (canvas.shape[1], canvas.shape[0]), borderValue=(90, 80, 70))
    reading = read_document(tilted, today=TODAY)
    assert reading.mrz.lines == SPECIMENS["100_pass-uto.jpg"]["lines"]
    assert (h, w) == image.shape[:2]


@pytest.mark.parametrize(
    ("fmt", "holder"),
    [
        (MRZFormat.TD3, Holder()),
        (MRZFormat.TD1, Holder()),
        (
            MRZFormat.TD1,
            Holder(
                surname="HARINGTON",
                given_names="KIT",
                document_number="X0B81S2Z6",
                issuing_state="GBR",
                nationality="GBR",
                sex="M",
                birth=date(1986, 12, 26),
                expiry=date(2029, 1, 8),
                optional_data="OS0G8",
                portrait=FACES / "kit_harington" / "1.jpg",
            ),
        ),
        (
            MRZFormat.TD3,
            Holder(
                surname="BIDEN",
                given_names="JOSEPH ROBINETTE",
                document_number="A01234567",
                issuing_state="USA",
                nationality="USA",
                sex="M",
                birth=date(1942, 11, 20),
                optional_data="123456789",
                portrait=FACES / "biden" / "1.jpg",
            ),
        ),
    ],
)
def test_synthetic_document_reads_back_exactly_and_has_its_portrait(fmt: MRZFormat, holder: Holder) -> None:
    document = render(fmt, holder)
    reading = read_document(document.image, today=TODAY)
    assert reading.mrz.lines == document.lines
    assert reading.mrz.valid
    assert reading.mrz.surname == holder.surname
    assert reading.birth_date == holder.birth
    assert reading.expiry_date == holder.expiry
    assert not reading.expired
    assert reading.portrait is not None and document.portrait_box is not None
    px, py, pw, ph = document.portrait_box
    x, y, w, h = reading.portrait.box
    centre = (x + w / 2, y + h / 2)
    assert px <= centre[0] <= px + pw and py <= centre[1] <= py + ph
    assert check_document(reading, today=TODAY, accepted_countries=None, accepted_types=None) == []


def test_synthetic_document_without_portrait_has_none() -> None:
    document = render(MRZFormat.TD1, Holder(portrait=None))
    reading = read_document(document.image, today=TODAY)
    assert reading.mrz.lines == document.lines
    assert reading.portrait is None


async def test_async_reader_runs_off_the_loop() -> None:
    document = render(MRZFormat.TD3)
    reading = await read_document_async(document.image, today=TODAY)
    assert reading.mrz.lines == document.lines


# -- policy --------------------------------------------------------------------------------------


def test_check_document_lists_every_problem() -> None:
    reading = read_document(load_image_file(DOCUMENTS / "100_pass-uto.jpg"), today=TODAY)
    problems = check_document(
        reading, today=TODAY, accepted_countries=frozenset({"D", "HRV"}), accepted_types=frozenset({"I"})
    )
    assert [p.code for p in problems] == [
        ProblemCode.EXPIRED,
        ProblemCode.TYPE_NOT_ACCEPTED,
        ProblemCode.COUNTRY_NOT_ACCEPTED,
    ]
    assert "2012-04-15" in problems[0].message
    ok = check_document(
        reading,
        today=date(2012, 4, 15),
        accepted_countries=frozenset({"UTO"}),
        accepted_types=frozenset({"P"}),
    )
    assert ok == []


def test_check_document_reports_invalid_check_digits() -> None:
    document = render(MRZFormat.TD3)
    reading = read_document(document.image, today=TODAY)
    from dataclasses import replace

    from videoid.document.mrz import parse

    broken = parse((reading.mrz.lines[0], reading.mrz.lines[1][:13] + "9" + reading.mrz.lines[1][14:]))
    problems = check_document(
        replace(reading, mrz=broken), today=TODAY, accepted_countries=None, accepted_types=frozenset({"P"})
    )
    assert [p.code for p in problems] == [ProblemCode.CHECK_DIGIT_INVALID] * 2
    assert "birth_date check digit" in problems[0].message


# -- hostile input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "error", "message"),
    [
        (np.full((600, 800, 3), 255, np.uint8), MRZNotFoundError, "no machine-readable zone"),
        (
            np.random.default_rng(7).integers(0, 256, (480, 640, 3), dtype=np.uint8),
            MRZNotFoundError,
            "no machine",
        ),
        (np.zeros((20, 30, 3), np.uint8), NotAnImageError, "at least 64"),
        (np.zeros((100, 100), np.float32), NotAnImageError, "8-bit"),
        ("not an array", NotAnImageError, "8-bit"),
    ],
)
def test_garbage_images_give_a_document_error(
    image: object, error: type[DocumentError], message: str
) -> None:
    with pytest.raises(error, match=message):
        read_document(image, today=TODAY)  # type: ignore[arg-type]


def test_a_face_photo_is_no_document() -> None:
    with pytest.raises(MRZNotFoundError):
        read_document(load_image_file(FACES / "obama" / "1.jpg"), today=TODAY)


@pytest.mark.parametrize("data", [b"", b"%PDF-1.7 not an image", b"\x89PNG\r\n\x1a\n truncated"])
def test_bytes_that_are_no_image_are_refused(data: bytes) -> None:
    with pytest.raises(NotAnImageError):
        load_image(data)


# -- the operator command --------------------------------------------------------------------------


def test_cli_read_document_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "portrait.png"
    code = main(
        [
            "videoid",
            "read-document",
            str(DOCUMENTS / "100_pass-hrv.jpg"),
            "--json",
            "--today",
            "2014-07-01",
            "--portrait-out",
            str(out),
        ]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["valid"] is True
    assert (data["format"], data["document_code"], data["surname"]) == ("TD3", "P", "SPECIMEN")
    assert (data["expiry_date"], data["expired"]) == ("2014-07-01", False)
    assert [c["name"] for c in data["checks"]] == [
        "document_number",
        "birth_date",
        "expiry_date",
        "optional_data",
        "composite",
    ]
    assert all(c["valid"] for c in data["checks"])
    assert data["portrait_found"] is True
    portrait = cv2.imread(str(out))
    assert portrait is not None and portrait.shape[0] > 50


def test_cli_read_document_human(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["videoid", "read-document", str(DOCUMENTS / "53_id-d.jpg"), "--today", "2025-06-01"]) == 0
    out = capsys.readouterr().out
    assert "MUSTERMANN" in out
    assert "EXPIRED" in out
    assert "check composite        4 valid" in out
    assert "portrait               none" in out


@pytest.mark.parametrize(
    ("content", "code"), [(b"just text", "not_an_image"), (None, "not_an_image"), ("blank", "mrz_not_found")]
)
def test_cli_read_document_fails_clearly(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes | str | None, code: str
) -> None:
    path = tmp_path / "input.png"
    if content == "blank":
        cv2.imwrite(str(path), np.full((400, 600, 3), 255, np.uint8))
    elif isinstance(content, bytes):
        path.write_bytes(content)
    assert main(["videoid", "read-document", str(path), "--json"]) == 2
    data = json.loads(capsys.readouterr().out)
    assert (data["ok"], data["error"]) == (False, code)
    assert data["message"]


def test_the_portrait_is_the_confident_face_not_a_larger_weak_hit_on_the_text() -> None:
    # as the detector saw a passport page sent over VP8: the photo at 1.13, a print pattern
    # twice its width beside it at 0.15
    photo, text = dlib.rectangle(79, 116, 188, 225), dlib.rectangle(191, 118, 415, 342)
    assert choose_face([(text, 0.15), (photo, 1.13)]) == (photo, 1.13)
    # a ghost image (the smaller copy many identity cards print) is confident too: the larger wins
    ghost = dlib.rectangle(400, 300, 440, 340)
    assert choose_face([(ghost, 0.9), (photo, 1.1)]) == (photo, 1.1)
    assert choose_face([(dlib.rectangle(0, 0, 10, 10), 2.0)]) is None  # under MIN_FACE: noise
    assert choose_face([]) is None
