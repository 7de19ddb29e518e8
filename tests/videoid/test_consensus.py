"""Several reads of one document combined: fields without a check digit are voted, never taken
from one read; the checked fields come from a read whose check digits validate."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from tests.support.documents import Holder, compose, fleck, render
from tests.support.webcam import held_still
from videoid.document.consensus import combine, unchecked_fields
from videoid.document.mrz import LAYOUTS, MRZFormat, parse
from videoid.document.reader import DocumentReading, read_document

TODAY = date(2025, 6, 1)
ANA = Holder(surname="NOVAK", given_names="ANA", portrait=None)


def reading(lines: tuple[str, ...]) -> DocumentReading:
    return DocumentReading.of(parse(lines), lines, today=TODAY)


def misread(lines: tuple[str, ...], line: int, position: int, char: str) -> tuple[str, ...]:
    out = list(lines)
    out[line] = out[line][:position] + char + out[line][position + 1 :]
    return tuple(out)


TD3 = compose(MRZFormat.TD3, ANA)  # P<UTONOVAK<<ANA<<<…
ANB = misread(TD3, 0, 14, "B")  # the last letter of ANA: no check digit covers it


def test_the_fields_without_a_check_digit() -> None:
    for fmt in (MRZFormat.TD1, MRZFormat.TD3):
        names = {f.name for f in unchecked_fields(LAYOUTS[fmt])}
        assert names == {"document_code", "issuing_state", "names", "nationality", "sex"}, fmt


def test_a_misread_name_passes_every_check_digit_and_one_read_confirms_nothing() -> None:
    wrong = reading(ANB)
    assert wrong.mrz.valid and wrong.mrz.given_names == "ANB"
    combined = combine([wrong])
    assert combined is not None
    assert combined.reads == 1 and not combined.confirmed and not combined.names_confirmed
    assert set(combined.unconfirmed) == {"document_code", "issuing_state", "names", "nationality", "sex"}
    assert combine([]) is None


def test_two_reads_that_agree_confirm_the_names() -> None:
    combined = combine([reading(TD3), reading(TD3)])
    assert combined is not None and combined.confirmed and combined.reads == 2
    assert (combined.reading.mrz.surname, combined.reading.mrz.given_names) == ("NOVAK", "ANA")


def test_two_reads_that_disagree_confirm_nothing_and_the_first_valid_read_breaks_the_tie() -> None:
    combined = combine([reading(ANB), reading(TD3)])
    assert combined is not None and combined.unconfirmed == ("names",)
    assert combined.reading.mrz.given_names == "ANB"


@pytest.mark.parametrize("wrong_first", [True, False])
def test_a_name_misread_in_one_read_is_outvoted_by_two(wrong_first: bool) -> None:
    reads = (
        [reading(ANB), reading(TD3), reading(TD3)]
        if wrong_first
        else [reading(TD3), reading(ANB), reading(TD3)]
    )
    combined = combine(reads)
    assert combined is not None and combined.confirmed and combined.reads == 3
    assert combined.reading.mrz.given_names == "ANA"
    assert combined.reading.mrz.lines == TD3


def test_the_vote_is_per_character_even_when_no_two_reads_agree_everywhere() -> None:
    reads = [
        reading(ANB),
        reading(misread(TD3, 0, 9, "X")),  # NOVAX
        reading(misread(misread(TD3, 1, 10, "V"), 0, 5, "M")),  # nationality VTO, MOVAK
    ]
    assert len({r.mrz.lines for r in reads}) == 3 and all(r.mrz.valid for r in reads)
    combined = combine(reads)
    assert combined is not None and combined.confirmed
    assert combined.reading.mrz.lines == TD3


def test_a_character_needs_a_majority_of_the_reads() -> None:
    combined = combine([reading(ANB), reading(TD3), reading(ANB), reading(TD3)])  # two against two
    assert combined is not None and combined.unconfirmed == ("names",)
    combined = combine([reading(ANB), reading(TD3), reading(misread(TD3, 0, 14, "R")), reading(TD3)])
    assert combined is not None and combined.unconfirmed == ("names",)  # two of four is no majority
    combined = combine([reading(ANB), reading(TD3), reading(TD3), reading(TD3)])
    assert combined is not None and combined.confirmed and combined.reading.mrz.given_names == "ANA"


def test_nationality_and_sex_are_voted_too() -> None:
    reads = [reading(misread(TD3, 1, 20, "M")), reading(TD3), reading(misread(TD3, 1, 11, "I"))]
    assert all(r.mrz.valid for r in reads)
    combined = combine(reads)
    assert combined is not None and combined.confirmed
    assert (combined.reading.mrz.sex, combined.reading.mrz.nationality) == ("F", "UTO")


def test_the_checked_fields_come_from_the_read_whose_check_digits_validate() -> None:
    birth_misread = reading(misread(TD3, 1, 14, "6"))  # 1985 read as 1986: two checks fail
    assert [c.name for c in birth_misread.mrz.checks if not c.valid] == ["birth_date", "composite"]
    combined = combine([birth_misread, reading(TD3)])
    assert combined is not None and combined.anchor == 1
    assert combined.reading.mrz.valid and combined.reading.birth_date == date(1985, 3, 14)
    # the misread date does not make it another document: its names vote with the valid read
    assert combined.reads == 2 and combined.confirmed


def test_a_card_whose_check_digits_all_validate_is_the_anchor() -> None:
    lines = compose(MRZFormat.TD1, ANA)
    number_misread = reading(misread(lines, 0, 7, "3"))
    combined = combine([number_misread, reading(misread(lines, 2, 13, "B")), reading(lines)])
    assert combined is not None and combined.anchor == 1 and combined.reading.mrz.valid
    assert combined.reading.mrz.document_number == "PA1234567"
    assert combined.reading.mrz.lines == lines and combined.confirmed


def test_reads_of_another_document_do_not_vote() -> None:
    other = compose(MRZFormat.TD3, replace(ANA, surname="HORVAT", document_number="PB7654321"))
    combined = combine([reading(ANB), reading(other), reading(other), reading(TD3)])
    assert combined is not None and combined.reads == 2  # ANB and the true read, one against one
    assert combined.reading.mrz.document_number == "PA1234567"
    assert combined.reading.mrz.surname == "NOVAK" and combined.unconfirmed == ("names",)


def test_the_voted_reading_keeps_only_the_corrections_of_the_fields_it_kept() -> None:
    from videoid.document.correction import read_mrz

    # OCR read UTO as UT0 and ANA as A0B; the correction makes each 0 a letter again
    ocr = misread(misread(ANB, 1, 12, "0"), 0, 13, "0")
    wrong = replace(reading(ANB), mrz=read_mrz(list(ocr)))
    assert [(c.field, c.read) for c in wrong.mrz.corrections] == [("names", "0"), ("nationality", "0")]
    assert wrong.mrz.valid and wrong.mrz.given_names == "AOB"
    combined = combine([wrong, reading(TD3), reading(TD3)])
    assert combined is not None and combined.reading.mrz.lines == TD3
    # the names were voted to other letters than the corrected read's: its correction is gone
    assert [(c.field, c.read) for c in combined.reading.mrz.corrections] == [("nationality", "0")]


# -- the real reader on frames with a fleck of dirt on one letter --------------------------------


@pytest.fixture(scope="module")
def passport_reads() -> list[DocumentReading]:
    """Three frames of the passport of ANA NOVAK read by the real reader: a fleck of dirt on the
    last letter of her given name in the first, clean in the other two."""
    document = render(MRZFormat.TD3, ANA)
    frames = [held_still(fleck(document, line=0, column=14), seed=1)]
    frames += [held_still(document.image, seed=seed) for seed in (2, 3)]
    return [read_document(frame, today=TODAY, portrait=False) for frame in frames]


def test_the_fleck_makes_the_reader_misread_the_name_with_every_check_digit_valid(
    passport_reads: list[DocumentReading],
) -> None:
    flecked = passport_reads[0].mrz
    assert flecked.valid and flecked.surname == "NOVAK" and flecked.given_names != "ANA", flecked.lines
    assert all(r.mrz.lines == TD3 for r in passport_reads[1:])


def test_the_real_misread_is_not_taken_alone_and_two_clean_frames_outvote_it(
    passport_reads: list[DocumentReading],
) -> None:
    alone = combine(passport_reads[:1])
    assert alone is not None and not alone.names_confirmed
    pair = combine(passport_reads[:2])
    assert pair is not None and pair.unconfirmed == ("names",)
    three = combine(passport_reads)
    assert three is not None and three.confirmed and three.reads == 3
    assert (three.reading.mrz.surname, three.reading.mrz.given_names) == ("NOVAK", "ANA")
    assert three.reading.mrz.lines == TD3
