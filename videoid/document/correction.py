"""Reading OCR output as an MRZ: field types and check digits undo the usual OCR confusions.

OCR reads the filler ``<`` as ``K`` and swaps ``O``/``0``, ``I``/``1``, ``B``/``8``, ``S``/``5``,
``Z``/``2`` and ``G``/``6``. Doc 9303 gives what it takes to undo that:

1. Field types (Part 3 §4.2; Parts 4-6 layouts): dates and check digits are digits, codes and
   names are letters, so a confusable character in such a field has one reading only.
2. Check digits (Part 3 §4.9): for document numbers and optional data, which mix letters and
   digits, every combination of known confusions is tried, fewest changes first (bounded), and
   the reading whose check digit validates is kept — only when exactly one does. A character is
   never changed to something OCR does not confuse it with, so a wrong digit stays wrong and its
   check digit stays invalid.
3. Fillers: ``K`` is worth 20 ≡ 0 (mod 10), like ``<``, so check digits cannot tell them apart;
   runs of ``K``/``X`` after the last real word of a field are taken as fillers.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

from idp.errors import MRZFormatError
from videoid.document.mrz import (
    ALPHABET,
    FILLER,
    LAYOUTS,
    MRZ,
    Correction,
    Kind,
    Layout,
    MRZFormat,
    compute_checks,
    parse,
    split_fields,
)

TO_DIGIT = {
    "O": "0",
    "Q": "0",
    "D": "0",
    "U": "0",
    "I": "1",
    "L": "1",
    "Z": "2",
    "S": "5",
    "G": "6",
    "B": "8",
}
TO_LETTER = {"0": "O", "1": "I", "2": "Z", "5": "S", "6": "G", "8": "B"}
FILLER_LOOKALIKES = frozenset("KX")
DOCUMENT_TYPES = frozenset("PIACV")  # Part 3 §4.2.2.1: the first character of the document code
TO_DOCUMENT_TYPE = {"1": "I", "L": "I", "T": "I", "J": "I", "0": "C", "R": "P", "F": "P"}
MAX_CHANGES = 2  # more changes in one field make a lucky check digit likelier than a true reading
MAX_CANDIDATES = 5000

Fields = dict[str, str]


def clean_lines(text: str | Sequence[str]) -> list[str]:
    """OCR text as candidate MRZ lines: upper case, spaces dropped, short lines (noise) left out."""
    raw = text.splitlines() if isinstance(text, str) else list(text)
    lines = []
    for line in raw:
        line = line.upper().replace(" ", "").replace("«", FILLER * 2)
        line = "".join(c for c in line if c in ALPHABET)
        if len(line) >= 20:
            lines.append(line)
    return lines


def fit(lines: Sequence[str]) -> tuple[Layout, list[str]]:
    """Choose the layout by line count and length; pad or cut each line at its end to the exact length."""
    if len(lines) >= 3:
        layout = LAYOUTS[MRZFormat.TD1]
        lines = lines[-3:]
    elif len(lines) == 2:
        mean = (len(lines[0]) + len(lines[1])) / 2
        layout = LAYOUTS[MRZFormat.TD2] if abs(mean - 36) < abs(mean - 44) else LAYOUTS[MRZFormat.TD3]
    else:
        raise MRZFormatError(f"an MRZ has two or three lines; the OCR found {len(lines)}")
    fitted = []
    for line in lines:
        if abs(len(line) - layout.length) > layout.length // 5:
            raise MRZFormatError(
                f"a {layout.format} line has {layout.length} characters; the OCR found {len(line)}"
            )
        fitted.append(line[: layout.length].ljust(layout.length, FILLER))
    return layout, fitted


def correct(text: str | Sequence[str]) -> tuple[list[str], list[Correction]]:
    """The most plausible exact MRZ lines for OCR output, and the corrections made to get them."""
    layout, lines = fit(clean_lines(text))
    read = split_fields(layout, lines)
    fields = dict(read)
    for f in layout.fields:
        fields[f.name] = _by_type(f.kind, fields[f.name], allow_filler=_filler_allowed(layout, f.name))
    typed = dict(fields)
    for check in layout.checks:
        if check.name != "composite":
            _search(layout, fields, check.name, _searchable(layout, fields, check.name))
    composite_only = [
        name
        for name in ("optional_data", "optional_data_2")
        if name in fields and not any(c.name == name for c in layout.checks)
    ]
    _search(layout, fields, "composite", [(n, i) for n in composite_only for i in _ambiguous(fields[n])])
    if not _valid(layout, fields, "composite"):
        # a search can make a field match a misread check digit; the composite would then
        # disagree: keep what was read rather than a guess
        fields = typed
    for name in composite_only:
        candidate = {**fields, name: _runs(fields[name])}
        if candidate[name] != fields[name] and _valid(layout, candidate, "composite"):
            fields = candidate
    corrections = [
        Correction(name, i, a, b, _reason(layout, name, b))
        for name in read
        for i, (a, b) in enumerate(zip(read[name], fields[name], strict=True))
        if a != b
    ]
    out = []
    for number in range(layout.lines):
        on_line = sorted((f for f in layout.fields if f.line == number), key=lambda f: f.start)
        out.append("".join(fields[f.name] for f in on_line))
    return out, corrections


def read_mrz(text: str | Sequence[str]) -> MRZ:
    """Parse OCR output into an :class:`~videoid.document.mrz.MRZ`, corrected as this module describes."""
    lines, corrections = correct(text)
    return parse(lines, corrections=corrections)


def _filler_allowed(layout: Layout, name: str) -> bool:
    # TD1's document number check digit is a filler for long numbers; TD3's personal number's
    # check digit may be a filler when the number is empty
    return (layout.format, name) in {
        (MRZFormat.TD1, "document_number_check"),
        (MRZFormat.TD3, "optional_data_check"),
    }


def _by_type(kind: Kind, value: str, *, allow_filler: bool) -> str:
    if kind in (Kind.NUMERIC, Kind.CHECK):
        if allow_filler and value in FILLER_LOOKALIKES:
            return FILLER
        return "".join(TO_DIGIT.get(c, c) for c in value)
    if kind is Kind.CODE:
        first = TO_LETTER.get(value[0], value[0])
        if first not in DOCUMENT_TYPES:
            first = TO_DOCUMENT_TYPE.get(value[0], first)
        second = FILLER if value[1] in FILLER_LOOKALIKES else TO_LETTER.get(value[1], value[1])
        return first + second
    if kind is Kind.SEX:
        return FILLER if value == "K" else value
    if kind is Kind.ALPHA:
        letters = "".join(TO_LETTER.get(c, c) for c in value)
        if len(letters) == 3 and letters[0] != "X" and set(letters[1:]) <= {"K", FILLER}:
            return letters[0] + FILLER * 2  # a one-letter state code such as D<<
        return _trailing_fillers(letters)
    return _trailing_fillers(value)


def _trailing_fillers(value: str) -> str:
    """``K``/``X``-only words after the field's last real word are fillers misread."""
    words = value.split(FILLER)
    last_real = max((i for i, w in enumerate(words) if w and not set(w) <= FILLER_LOOKALIKES), default=-1)
    if last_real == len(words) - 1:
        return value
    tail = [FILLER * len(w) for w in words[last_real + 1 :]]
    return FILLER.join([*words[: last_real + 1], *tail])


def _runs(value: str) -> str:
    """A confusable character between two of the other class takes their class (``5O7`` -> ``507``)."""
    out = list(value)
    for i, char in enumerate(value):
        # the neighbours on both sides, or the next two at the start of the field
        around = value[max(0, i - 1) : i] + value[i + 1 : i + 2] if i else value[1:3]
        if len(around) < 2:
            continue
        if char in TO_DIGIT and around.isdigit():
            out[i] = TO_DIGIT[char]
        elif char in TO_LETTER and around.isalpha():
            out[i] = TO_LETTER[char]
    changed = "".join(out)
    return changed if changed == value else _runs(changed)


def _ambiguous(value: str) -> list[int]:
    return [i for i, c in enumerate(value) if c in TO_DIGIT or c in TO_LETTER]


def _searchable(layout: Layout, fields: Fields, check_name: str) -> list[tuple[str, int]]:
    check = next(c for c in layout.checks if c.name == check_name)
    names = [n for n in check.over if layout.field(n).kind is Kind.ALNUM]
    if check_name == "document_number" and fields.get("document_number_check") == FILLER:
        names.append("optional_data")  # TD1 long number: it goes on in the optional data
    return [(n, i) for n in names for i in _ambiguous(fields[n])]


def _alternative(char: str) -> str:
    return TO_DIGIT.get(char) or TO_LETTER[char]


def _valid(layout: Layout, fields: Fields, check_name: str) -> bool:
    return next(r for r in compute_checks(layout, fields) if r.name == check_name).valid


def _search(layout: Layout, fields: Fields, check_name: str, positions: list[tuple[str, int]]) -> None:
    """Change ``fields`` in place to the unique fewest-change reading that validates ``check_name``."""
    if _valid(layout, fields, check_name) or not positions:
        return
    tried = 0
    for count in range(1, min(len(positions), MAX_CHANGES) + 1):
        solutions: list[Fields] = []
        for combo in itertools.combinations(positions, count):
            tried += 1
            if tried > MAX_CANDIDATES:
                return
            candidate = _apply(fields, combo)
            if _valid(layout, candidate, check_name):
                solutions.append(candidate)
        # a change that breaks up a run of digits or of letters is not how OCR errs: such a
        # "correction" would more likely hide a real error behind a lucky check digit
        solutions = [s for s in solutions if _class_changes(s) <= _class_changes(fields)]
        if solutions:
            best = _unique_best(solutions, key=_class_changes)
            if best is not None:
                fields.update(best)
            return


def _apply(fields: Fields, combo: Sequence[tuple[str, int]]) -> Fields:
    out = dict(fields)
    for name, i in combo:
        value = out[name]
        out[name] = value[:i] + _alternative(value[i]) + value[i + 1 :]
    return out


def _class_changes(fields: Fields) -> int:
    """Letter-digit alternations in the alphanumeric fields: fewer is likelier (numbers run in blocks)."""
    total = 0
    for name in ("document_number", "optional_data", "optional_data_2"):
        value = fields.get(name, "").replace(FILLER, "")
        total += sum(1 for a, b in itertools.pairwise(value) if a.isdigit() != b.isdigit())
    return total


def _unique_best(solutions: list[Fields], *, key: Callable[[Fields], int]) -> Fields | None:
    scored = sorted(solutions, key=key)
    if len(scored) > 1 and key(scored[0]) == key(scored[1]):
        return None  # two readings are as likely: refuse rather than guess
    return scored[0]


def _reason(layout: Layout, name: str, corrected: str) -> str:
    kind = layout.field(name).kind
    if corrected == FILLER:
        return "filler"
    if kind is Kind.ALNUM:
        return "check digit"
    return f"{kind} field"
