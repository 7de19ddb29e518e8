"""ICAO Doc 9303 MRZ parsing, check digits and OCR correction, on ICAO's published specimens."""

from __future__ import annotations

from datetime import date

import pytest

from idp.errors import MRZFormatError
from videoid.document.correction import read_mrz
from videoid.document.mrz import MRZFormat, check_digit, parse

# Doc 9303 Part 5 (TD1), Part 6 (TD2), Part 4 (TD3) specimens of the fictitious state Utopia
TD1 = ("I<UTOD231458907<<<<<<<<<<<<<<<", "7408122F1204159UTO<<<<<<<<<<<6", "ERIKSSON<<ANNA<MARIA<<<<<<<<<<")
TD2 = ("I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<", "D231458907UTO7408122F1204159<<<<<<<6")
TD3 = ("P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C36UTO7408122F1204159ZE184226B<<<<<10")
# a document number of twelve characters, continued in the optional data (Part 5 §4.2.4 note j)
TD1_LONG = (
    "I<UTOD23145890<7349<<<<<<<<<<<",
    "3407127M9507122UTO<<<<<<<<<<<2",
    "STEVENSON<<PETER<JOHN<<<<<<<<<",
)


@pytest.mark.parametrize(
    ("data", "digit"),
    [
        ("L898902C3", "6"),
        ("740812", "2"),
        ("120415", "9"),
        ("ZE184226B<<<<<", "1"),
        ("D23145890", "7"),
        ("<<<", "0"),
    ],
)
def test_check_digit_on_icao_values(data: str, digit: str) -> None:
    assert check_digit(data) == digit


def test_check_digit_refuses_characters_outside_the_mrz_alphabet() -> None:
    with pytest.raises(MRZFormatError, match="not an MRZ character"):
        check_digit("ab")


@pytest.mark.parametrize(
    ("lines", "fmt", "code", "number", "optional"),
    [
        (TD1, MRZFormat.TD1, "I", "D23145890", ""),
        (TD2, MRZFormat.TD2, "I", "D23145890", ""),
        (TD3, MRZFormat.TD3, "P", "L898902C3", "ZE184226B"),
    ],
)
def test_icao_specimens_parse_with_every_check_valid(
    lines: tuple[str, ...], fmt: MRZFormat, code: str, number: str, optional: str
) -> None:
    mrz = parse(lines)
    assert mrz.format is fmt
    assert mrz.document_code == code
    assert (mrz.issuing_state, mrz.nationality) == ("UTO", "UTO")
    assert (mrz.surname, mrz.given_names) == ("ERIKSSON", "ANNA MARIA")
    assert mrz.document_number == number
    assert mrz.optional_data == optional
    assert (mrz.birth_date, mrz.sex, mrz.expiry_date) == ("740812", "F", "120415")
    assert mrz.birth(today=date(2025, 1, 1)) == date(1974, 8, 12)
    assert mrz.expiry() == date(2012, 4, 15)
    assert mrz.valid
    names = [c.name for c in mrz.checks]
    assert names[-1] == "composite"
    assert ("optional_data" in names) is (fmt is MRZFormat.TD3)
    assert mrz.corrections == ()


def test_td1_long_document_number_continues_in_the_optional_data() -> None:
    mrz = parse(TD1_LONG)
    assert mrz.document_number == "D23145890734"
    assert mrz.optional_data == ""
    number_check = mrz.checks[0]
    assert (number_check.data, number_check.expected, number_check.computed) == ("D23145890734", "9", "9")
    assert mrz.valid
    assert (mrz.sex, mrz.surname, mrz.given_names) == ("M", "STEVENSON", "PETER JOHN")


def test_each_check_digit_reports_expected_and_computed() -> None:
    lines = (TD3[0], TD3[1][:9] + "5" + TD3[1][10:])  # document number check digit 6 → 5
    mrz = parse(lines)
    assert not mrz.valid
    failed = [(c.name, c.expected, c.computed) for c in mrz.checks if not c.valid]
    assert failed == [("document_number", "5", "6"), ("composite", "0", "3")]


def test_empty_personal_number_may_carry_a_filler_check_digit() -> None:
    upper = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<"
    body = "L898902C36UTO7408122F1204159<<<<<<<<<<<<<<<"
    composite = check_digit(body[0:10] + body[13:20] + body[21:43])
    mrz = parse((upper, body + composite))
    assert mrz.valid
    assert mrz.checks[3].expected == "<"


def test_birth_century_is_the_past_one_when_it_would_lie_ahead() -> None:
    mrz = parse(("I<UTOD231458907<<<<<<<<<<<<<<<", "0501011F3001013UTO<<<<<<<<<<<4", TD1[2]))
    assert mrz.birth(today=date(2025, 1, 1)) == date(2005, 1, 1)
    assert mrz.birth(today=date(2004, 1, 1)) == date(1905, 1, 1)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ((TD3[0],), "got 44"),
        ((TD3[0], TD3[1][:-1]), "got 44 \\+ 43"),
        ((TD1[0], TD1[1], TD1[2][:-1] + "a"), "line 3 holds 'a'"),
        ((), "got nothing"),
    ],
)
def test_malformed_mrz_is_refused(lines: tuple[str, ...], message: str) -> None:
    with pytest.raises(MRZFormatError, match=message):
        parse(lines)


# -- OCR correction --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ocr", "truth"),
    [
        # date and check positions hold digits: O→0, S→5, B→8, I→1, Z→2, G→6
        ((TD3[0], "L898902C36UTO74O8122F12O4I59ZE184226B<<<<<1O"), TD3),
        ((TD3[0], "L898902C36UTO7408I22F1204IS9ZE184226B<<<<<IO"), TD3),
        # codes and names hold letters: 0→O, 1→I, 5→S, 8→B
        (
            ("P<UT0ER1KSSON<<ANNA<MAR1A<<<<<<<<<<<<<<<<<<<", "L898902C36UT07408122F1204159ZE184226B<<<<<10"),
            TD3,
        ),
        # fillers read as K after the names, and a filler read as K in a state code
        (("P<UTOERIKSSON<<ANNA<MARIA<<<<<<KKK<<<K<<<<KK", TD3[1]), TD3),
        (
            (
                "IDDKKT220001293<<<<<<<<<<<<<<<",
                "6408125<2010315DK<<<<<<<<<<<<4",
                "MUSTERMANN<<ERIKA<<<<<<KKKKKK<",
            ),
            (
                "IDD<<T220001293<<<<<<<<<<<<<<<",
                "6408125<2010315D<<<<<<<<<<<<<4",
                "MUSTERMANN<<ERIKA<<<<<<<<<<<<<",
            ),
        ),
        # a document number that mixes letters and digits: the check digit picks the reading
        ((TD3[0], "L898902C36UTO7408122F1204159ZE1B4226B<<<<<10"), TD3),
        ((TD3[0], "L8989O2C36UTO7408122F1204159ZE184226B<<<<<10"), TD3),
        ((TD1[0].replace("D2314", "D23I4"), TD1[1], TD1[2]), TD1),
        # TD1 optional data is covered by the composite check digit only
        (
            (
                "I<SI<09999100180706966505468<<",
                "6606079F0807276SI<<<<<<<<<<<<0",
                "VZOREC<<TINA<<<<<<<<<<<<<<<<<<",
            ),
            (
                "I<SI<09999100180706966505468<<",
                "6606079F0807276SI<<<<<<<<<<<<0",
                "VZOREC<<TINA<<<<<<<<<<<<<<<<<<",
            ),
        ),
        (
            (
                "1<S1<0999910018O7O6966505468<<",
                "66O6079FO807276S1<<<<<<<<<<<<O",
                "VZOREC<<TINA<<<<<<<<<<<<<<<<<<",
            ),
            (
                "I<SI<09999100180706966505468<<",
                "6606079F0807276SI<<<<<<<<<<<<0",
                "VZOREC<<TINA<<<<<<<<<<<<<<<<<<",
            ),
        ),
        # lower case, spaces and a line cut short by the OCR
        (
            ("p<utoeriksson<<anna<maria<<<<<<<<<<<<<<<<<", "L898902C36 UTO7408122F1204159ZE184226B<<<<<10"),
            TD3,
        ),
    ],
)
def test_ocr_confusions_are_corrected(ocr: tuple[str, ...], truth: tuple[str, ...]) -> None:
    mrz = read_mrz(ocr)
    assert mrz.lines == truth
    assert mrz.valid
    assert all(c.read != c.corrected for c in mrz.corrections)


def test_corrections_name_field_position_and_reason() -> None:
    mrz = read_mrz((TD3[0], "L8989O2C36UTO7408122F1204159ZE184226B<<<<<10"))
    assert [(c.field, c.position, c.read, c.corrected, c.reason) for c in mrz.corrections] == [
        ("document_number", 5, "O", "0", "check digit"),
    ]


@pytest.mark.parametrize(
    "ocr",
    [
        # a wrong digit that OCR does not confuse (7→1): nothing may be changed to make it pass
        (TD3[0], "L898902C36UTO7408122F1204159ZE184226B<<<<<10".replace("740812", "140812")),
        # a wrong check digit
        (TD3[0], "L898902C37UTO7408122F1204159ZE184226B<<<<<10"),
        # the wrong letter in a document number (C→E): not a known confusion
        (TD3[0], "L898902E36UTO7408122F1204159ZE184226B<<<<<10"),
    ],
)
def test_errors_outside_known_confusions_are_not_fixed(ocr: tuple[str, str]) -> None:
    mrz = read_mrz(ocr)
    assert not mrz.valid
    assert all(c.field not in ("document_number", "birth_date") for c in mrz.corrections)


def test_ambiguous_correction_is_refused() -> None:
    # printed check digit 3 for X0S12Z456: S→5 (X0512Z456) and Z→2 (X0S122456) both validate,
    # one change each and alike in form: the reader must not pick one
    body = "X0S12Z4563UTO7408122F1204159<<<<<<<<<<<<<<"
    lower = body + check_digit(body[0:10] + body[13:20] + body[21:43])
    assert check_digit("X0512Z456") == check_digit("X0S122456") == "3"
    mrz = read_mrz((TD3[0], lower))
    assert mrz.document_number == "X0S12Z456"
    assert not mrz.checks[0].valid
    assert mrz.corrections == ()


@pytest.mark.parametrize(
    "ocr",
    [
        "",
        "HELLO WORLD",
        ["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<"],
        ["P<UTOERIKSSON<<ANNA<MARIA<<<", "L898902C36UTO7408122F1204159ZE184226B<<<<<10"],
    ],
)
def test_text_that_is_no_mrz_is_refused(ocr: str | list[str]) -> None:
    with pytest.raises(MRZFormatError):
        read_mrz(ocr)
