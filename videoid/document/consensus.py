"""Reads of one document from several frames, combined into the reading that counts.

Check digits (ICAO Doc 9303 Part 3 §4.9) protect the document number, the dates and the
optional data, so a read whose check digits validate has those fields exactly. The other fields
have no check digit (:func:`unchecked_fields`): the document code, the issuing state, the names,
the nationality and the sex. One misread letter there (``ANA`` read as ``ANB``) passes every
check, so these fields do not rest on one read. Each of their characters is voted over the reads
of the same document, and it is confirmed when at least :data:`MIN_AGREEING` reads give it and
they are more than half of the reads: two reads that agree, or two of three, three of four or
five. The checked fields come from the best read by its check digits (the anchor).

The per-character OCR-B template scores of :mod:`videoid.document.ocr` do not weigh the votes:
on the four real specimens many correctly read characters score below another template
(``E``/``F``, ``S``/``R``, fillers against ``K``), so they are no calibrated confidence. A tie
goes to the anchor's character, else to the read with more valid check digits.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

from videoid.document.mrz import LAYOUTS, MRZ, Field, Layout, parse
from videoid.document.reader import DocumentReading

MIN_AGREEING = 2


@dataclass(slots=True, frozen=True)
class Combined:
    """The reading that counts, and how far its unchecked fields are confirmed."""

    reading: DocumentReading  # the anchor's checked fields, the unchecked ones as voted
    anchor: int  # index of the anchor among the reads given
    reads: int  # reads of this document that voted, the anchor among them
    unconfirmed: tuple[str, ...]  # unchecked fields with a character that is not confirmed

    @property
    def confirmed(self) -> bool:
        return not self.unconfirmed

    @property
    def names_confirmed(self) -> bool:
        return "names" not in self.unconfirmed


def unchecked_fields(layout: Layout) -> tuple[Field, ...]:
    """The fields of ``layout`` that no check digit covers (Doc 9303 Parts 4-6)."""
    covered = {name for check in layout.checks for name in (*check.over, check.digit)}
    return tuple(f for f in layout.fields if f.name not in covered)


def _rank(mrz: MRZ) -> tuple[bool, int]:
    return mrz.valid, sum(c.valid for c in mrz.checks)


def _same_document(read: MRZ, anchor: MRZ) -> bool:
    """Whether ``read`` is of the anchor's document: the fields that validate in both are equal."""
    if read.format is not anchor.format:
        return False
    theirs = {c.name: c.data for c in read.checks if c.valid}
    shared = [c for c in anchor.checks if c.valid and c.name in theirs]
    if not shared:
        return not any(c.valid for c in anchor.checks)  # nothing to tell by: an unreadable anchor
    return all(theirs[c.name] == c.data for c in shared)


def combine(readings: Sequence[DocumentReading]) -> Combined | None:
    """The reads combined as the module says; None without any read."""
    if not readings:
        return None
    anchor_index = max(range(len(readings)), key=lambda i: _rank(readings[i].mrz))  # the first best
    anchor = readings[anchor_index]
    voters = sorted(
        (r for r in readings if _same_document(r.mrz, anchor.mrz)),
        key=lambda r: (r is not anchor, *(-x for x in _rank(r.mrz))),
    )
    layout = LAYOUTS[anchor.mrz.format]
    lines = [list(line) for line in anchor.mrz.lines]
    unconfirmed = []
    for f in unchecked_fields(layout):
        confirmed = True
        for k in range(f.start, f.end):
            column = [r.mrz.lines[f.line][k] for r in voters]
            counts = Counter(column)
            top = max(counts.values())
            # the first read (the anchor, then by check digits) among the most voted breaks a tie
            char = next(c for c in column if counts[c] == top)
            lines[f.line][k] = char
            confirmed = confirmed and top >= MIN_AGREEING and 2 * top > len(column)
        if not confirmed:
            unconfirmed.append(f.name)
    voted = tuple("".join(line) for line in lines)
    mrz = anchor.mrz
    if voted != mrz.lines:
        changed = {
            f.name
            for f in layout.fields
            if voted[f.line][f.start : f.end] != mrz.lines[f.line][f.start : f.end]
        }
        mrz = parse(voted, corrections=[c for c in mrz.corrections if c.field not in changed])
    return Combined(replace(anchor, mrz=mrz), anchor_index, len(voters), tuple(unconfirmed))
