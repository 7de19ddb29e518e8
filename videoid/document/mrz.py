"""Machine-readable zones of travel documents: layouts, check digits and parsing (ICAO Doc 9303).

- Part 3 §4.9: the check digit (weights 7, 3, 1; ``<`` = 0, ``A``-``Z`` = 10-35, modulo 10).
- Part 4 §4.2.2: TD3 (passports), two lines of 44 characters.
- Part 5 §4.2.2: TD1 (identity cards), three lines of 30; a document number longer than nine
  characters continues in the optional data when the check digit position holds ``<``
  (Part 5 §4.2.4, note j).
- Part 6 §4.2.2: TD2, two lines of 36.

:func:`parse` reads exact MRZ text; reading OCR output, with its confusions, is
:mod:`videoid.document.correction`'s job, which ends here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from idp.errors import MRZFormatError

FILLER = "<"
ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<")
_WEIGHTS = (7, 3, 1)


class MRZFormat(StrEnum):
    """Size-1, -2 and -3 machine-readable travel documents (Doc 9303 Parts 4-6)."""

    TD1 = "TD1"
    TD2 = "TD2"
    TD3 = "TD3"


class Kind(StrEnum):
    """What a field may hold; the OCR correction uses it to choose between confusable characters."""

    CODE = "code"  # document code: a letter, then a letter or filler
    ALPHA = "alpha"  # letters and fillers: states, nationality, names
    NUMERIC = "numeric"  # digits: dates
    ALNUM = "alnum"  # letters, digits and fillers: document number, optional data
    CHECK = "check"  # a check digit (a filler where Doc 9303 allows one)
    SEX = "sex"  # F, M, X or filler


@dataclass(slots=True, frozen=True)
class Field:
    name: str
    line: int
    start: int
    end: int  # exclusive
    kind: Kind


@dataclass(slots=True, frozen=True)
class Check:
    """A check digit at ``digit`` over the concatenation of the fields in ``over``."""

    name: str
    digit: str
    over: tuple[str, ...]


@dataclass(slots=True, frozen=True)
class Layout:
    format: MRZFormat
    lines: int
    length: int
    fields: tuple[Field, ...]
    checks: tuple[Check, ...]

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)


def _f(name: str, line: int, start: int, end: int, kind: Kind) -> Field:
    return Field(name, line, start, end, kind)


_K = Kind
TD1 = Layout(
    MRZFormat.TD1,
    3,
    30,
    (
        _f("document_code", 0, 0, 2, _K.CODE),
        _f("issuing_state", 0, 2, 5, _K.ALPHA),
        _f("document_number", 0, 5, 14, _K.ALNUM),
        _f("document_number_check", 0, 14, 15, _K.CHECK),
        _f("optional_data", 0, 15, 30, _K.ALNUM),
        _f("birth_date", 1, 0, 6, _K.NUMERIC),
        _f("birth_date_check", 1, 6, 7, _K.CHECK),
        _f("sex", 1, 7, 8, _K.SEX),
        _f("expiry_date", 1, 8, 14, _K.NUMERIC),
        _f("expiry_date_check", 1, 14, 15, _K.CHECK),
        _f("nationality", 1, 15, 18, _K.ALPHA),
        _f("optional_data_2", 1, 18, 29, _K.ALNUM),
        _f("composite_check", 1, 29, 30, _K.CHECK),
        _f("names", 2, 0, 30, _K.ALPHA),
    ),
    (
        Check("document_number", "document_number_check", ("document_number",)),
        Check("birth_date", "birth_date_check", ("birth_date",)),
        Check("expiry_date", "expiry_date_check", ("expiry_date",)),
        Check(
            "composite",
            "composite_check",
            (
                "document_number",
                "document_number_check",
                "optional_data",
                "birth_date",
                "birth_date_check",
                "expiry_date",
                "expiry_date_check",
                "optional_data_2",
            ),
        ),
    ),
)

_TD23_COMPOSITE = (
    "document_number",
    "document_number_check",
    "birth_date",
    "birth_date_check",
    "expiry_date",
    "expiry_date_check",
    "optional_data",
)


def _two_line(fmt: MRZFormat, length: int) -> Layout:
    optional_end = length - 2 if fmt is MRZFormat.TD3 else length - 1
    fields = [
        _f("document_code", 0, 0, 2, _K.CODE),
        _f("issuing_state", 0, 2, 5, _K.ALPHA),
        _f("names", 0, 5, length, _K.ALPHA),
        _f("document_number", 1, 0, 9, _K.ALNUM),
        _f("document_number_check", 1, 9, 10, _K.CHECK),
        _f("nationality", 1, 10, 13, _K.ALPHA),
        _f("birth_date", 1, 13, 19, _K.NUMERIC),
        _f("birth_date_check", 1, 19, 20, _K.CHECK),
        _f("sex", 1, 20, 21, _K.SEX),
        _f("expiry_date", 1, 21, 27, _K.NUMERIC),
        _f("expiry_date_check", 1, 27, 28, _K.CHECK),
        _f("optional_data", 1, 28, optional_end, _K.ALNUM),
        _f("composite_check", 1, length - 1, length, _K.CHECK),
    ]
    checks = [
        Check("document_number", "document_number_check", ("document_number",)),
        Check("birth_date", "birth_date_check", ("birth_date",)),
        Check("expiry_date", "expiry_date_check", ("expiry_date",)),
    ]
    composite: tuple[str, ...] = _TD23_COMPOSITE
    if fmt is MRZFormat.TD3:
        # Part 4: the personal number has its own check digit, inside the composite
        fields.append(_f("optional_data_check", 1, length - 2, length - 1, _K.CHECK))
        checks.append(Check("optional_data", "optional_data_check", ("optional_data",)))
        composite = (*composite, "optional_data_check")
    checks.append(Check("composite", "composite_check", composite))
    return Layout(fmt, 2, length, tuple(fields), tuple(checks))


TD2 = _two_line(MRZFormat.TD2, 36)
TD3 = _two_line(MRZFormat.TD3, 44)
LAYOUTS = {MRZFormat.TD1: TD1, MRZFormat.TD2: TD2, MRZFormat.TD3: TD3}


def char_value(char: str) -> int:
    """The value of one MRZ character for check digits (Doc 9303 Part 3 §4.9)."""
    if "0" <= char <= "9":
        return ord(char) - ord("0")
    if "A" <= char <= "Z":
        return ord(char) - ord("A") + 10
    if char == FILLER:
        return 0
    raise MRZFormatError(f"{char!r} is not an MRZ character (A-Z, 0-9, <)")


def check_digit(data: str) -> str:
    """The check digit of ``data`` (Doc 9303 Part 3 §4.9): weights 7, 3, 1 repeating, modulo 10."""
    return str(sum(char_value(c) * _WEIGHTS[i % 3] for i, c in enumerate(data)) % 10)


@dataclass(slots=True, frozen=True)
class CheckDigitResult:
    """One check digit: the digit printed in the MRZ against the one computed from its data."""

    name: str
    data: str
    expected: str
    computed: str
    valid: bool


@dataclass(slots=True, frozen=True)
class Correction:
    """One character the OCR correction changed, and why."""

    field: str
    position: int  # within the field
    read: str
    corrected: str
    reason: str


@dataclass(slots=True, frozen=True)
class MRZ:
    """A parsed machine-readable zone. Dates are as printed (YYMMDD); see :meth:`birth` and :meth:`expiry`."""

    format: MRZFormat
    lines: tuple[str, ...]
    document_code: str
    issuing_state: str
    surname: str
    given_names: str
    document_number: str
    nationality: str
    birth_date: str
    sex: str
    expiry_date: str
    optional_data: str
    optional_data_2: str
    checks: tuple[CheckDigitResult, ...]
    corrections: tuple[Correction, ...] = ()

    @property
    def valid(self) -> bool:
        """Whether every check digit validates."""
        return all(c.valid for c in self.checks)

    @property
    def document_type(self) -> str:
        """The first character of the document code: P passport, I/A/C identity card, V visa."""
        return self.document_code[:1]

    def birth(self, *, today: date) -> date | None:
        """The birth date; a two-digit year is in the past century when it would lie ahead of ``today``."""
        parsed = _yymmdd(self.birth_date, 2000)
        if parsed is not None and parsed > today:
            parsed = _yymmdd(self.birth_date, 1900)
        return parsed

    def expiry(self) -> date | None:
        """The expiry date; MRZ expiry years are read in 2000-2099 (no valid document expired before)."""
        return _yymmdd(self.expiry_date, 2000)


def _yymmdd(value: str, century: int) -> date | None:
    if len(value) != 6 or not value.isdigit():
        return None
    try:
        return date(century + int(value[:2]), int(value[2:4]), int(value[4:6]))
    except ValueError:
        return None


def layout_for(lines: Sequence[str]) -> Layout:
    for layout in LAYOUTS.values():
        if len(lines) == layout.lines and all(len(line) == layout.length for line in lines):
            return layout
    shape = " + ".join(str(len(line)) for line in lines) or "nothing"
    raise MRZFormatError(f"expected 3x30 (TD1), 2x36 (TD2) or 2x44 (TD3) characters, got {shape}")


def split_fields(layout: Layout, lines: Sequence[str]) -> dict[str, str]:
    return {f.name: lines[f.line][f.start : f.end] for f in layout.fields}


def long_document_number(layout: Layout, raw: dict[str, str]) -> tuple[str, str, str] | None:
    """TD1's long document number (Part 5 §4.2.4 j): (number, check digit, rest of the optional data).

    When the check digit position holds a filler, the number goes on in the optional data up
    to the first filler, whose last character before that filler is the check digit.
    """
    if layout.format is not MRZFormat.TD1 or raw["document_number_check"] != FILLER:
        return None
    optional = raw["optional_data"]
    end = optional.find(FILLER)
    end = len(optional) if end < 0 else end
    if end < 2:
        return None
    return raw["document_number"] + optional[: end - 1], optional[end - 1], optional[end:]


def compute_checks(layout: Layout, raw: dict[str, str]) -> tuple[CheckDigitResult, ...]:
    """Every check digit of the layout, with the TD1 long-number rule applied."""
    long_number = long_document_number(layout, raw)
    results = []
    for check in layout.checks:
        if check.name == "document_number" and long_number is not None:
            data, expected = long_number[0], long_number[1]
        else:
            data = "".join(raw[name] for name in check.over)
            expected = raw[check.digit]
        computed = check_digit(data)
        # Part 4 §4.2.2.2: an empty personal number may carry a filler as its check digit
        empty = check.name == "optional_data" and expected == FILLER and set(data) <= {FILLER}
        results.append(CheckDigitResult(check.name, data, expected, computed, expected == computed or empty))
    return tuple(results)


def names_of(field: str) -> tuple[str, str]:
    """Primary and secondary identifiers (Part 3 §4.6): split at ``<<``; single ``<`` are spaces."""
    primary, _, secondary = field.partition(FILLER * 2)
    return _words(primary), _words(secondary)


def _words(part: str) -> str:
    return " ".join(w for w in part.split(FILLER) if w)


def parse(lines: Sequence[str], *, corrections: Sequence[Correction] = ()) -> MRZ:
    """Parse exact MRZ lines (no OCR correction); check digits are reported, not enforced.

    Raises :class:`MRZFormatError` when the shape or the characters are not an MRZ's.
    """
    lines = tuple(lines)
    layout = layout_for(lines)
    for row, line in enumerate(lines, 1):
        bad = sorted(set(line) - ALPHABET)
        if bad:
            raise MRZFormatError(f"line {row} holds {''.join(bad)!r}; an MRZ holds only A-Z, 0-9 and <")
    raw = split_fields(layout, lines)
    long_number = long_document_number(layout, raw)
    number, optional = raw["document_number"], raw["optional_data"]
    if long_number is not None:
        number, optional = long_number[0], long_number[2]
    surname, given_names = names_of(raw["names"])
    return MRZ(
        format=layout.format,
        lines=lines,
        document_code=raw["document_code"].rstrip(FILLER),
        issuing_state=raw["issuing_state"].rstrip(FILLER),
        surname=surname,
        given_names=given_names,
        document_number=number.rstrip(FILLER),
        nationality=raw["nationality"].rstrip(FILLER),
        birth_date=raw["birth_date"],
        sex="X" if raw["sex"] == FILLER else raw["sex"],
        expiry_date=raw["expiry_date"],
        optional_data=optional.strip(FILLER),
        optional_data_2=raw.get("optional_data_2", "").strip(FILLER),
        checks=compute_checks(layout, raw),
        corrections=tuple(corrections),
    )
