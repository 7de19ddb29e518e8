"""Text recognition of MRZ lines: tesseract, fused with the OCR-B character grid.

Tesseract (Debian's ``tesseract-ocr`` with the ``eng`` model, driven through ``pytesseract``)
reads the lines stacked in one image, one process per attempt, restricted to the MRZ alphabet
(Doc 9303 Part 3 §4.3: ``A``-``Z``, ``0``-``9``, ``<``) with the dictionaries off. Its
characters are placed into the cells of :func:`videoid.document.glyphs.grid`; a cell the OCR-B
template calls a filler with a clear margin is a filler, whatever tesseract made of it. What
remains (``O``/``0``, ``I``/``1`` …) is for :mod:`videoid.document.correction`.

The functions are synchronous and CPU-bound: async callers run them in a thread pool.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import cv2
import numpy as np
import pytesseract

from idp.errors import DocumentError
from videoid.document.glyphs import LINE_HEIGHT, Grid, grid, scale_line
from videoid.document.locate import Image, ink
from videoid.document.mrz import ALPHABET, FILLER

WHITELIST = "".join(sorted(ALPHABET))
TESSERACT_CONFIG = f"--psm 6 -c tessedit_char_whitelist={WHITELIST} -c load_system_dawg=0 -c load_freq_dawg=0"
FILLER_MARGIN = 0.05  # how much better the filler template must match than tesseract's character
GAP = LINE_HEIGHT // 2
MARGIN = 16
SMALL = 0.75
TIMEOUT = 20  # seconds for one tesseract run


class Variant(StrEnum):
    """How the lines are shown to tesseract; the reader tries them in this order."""

    GRAY = "gray"  # the grey line as it is
    GRAY_SMALL = "gray-small"  # the same at three quarters of the size
    INK = "ink"  # black-hat ink, binarised, black on white (thickens serifs: I may read as T)


@dataclass(slots=True, frozen=True)
class LineReading:
    text: str  # the fused reading
    tesseract: str  # what tesseract read, in order
    scores: tuple[dict[str, float], ...]  # per cell, each character's OCR-B template score


def tesseract_available() -> bool:
    try:
        pytesseract.get_tesseract_version()
    except (pytesseract.TesseractNotFoundError, OSError):
        return False
    return True


def read_lines(lines: Sequence[Image], *, variant: Variant = Variant.INK) -> list[LineReading]:
    """Read MRZ lines (grey crops, top to bottom) once, in the given variant."""
    scaled = [scale_line(line) for line in lines]
    shown = [_show(s, variant) for s in scaled]
    width = max(s.shape[1] for s in shown) + 2 * MARGIN
    rows: list[Image] = []
    offsets = []
    y = MARGIN
    for image in shown:
        background = int(np.median(image))
        row = np.full((image.shape[0] + GAP, width), background, dtype=np.uint8)
        row[GAP // 2 : GAP // 2 + image.shape[0], MARGIN : MARGIN + image.shape[1]] = image
        offsets.append(y + GAP // 2)
        rows.append(row)
        y += row.shape[0]
    sheet = np.vstack(
        [np.full((MARGIN, width), 255, np.uint8), *rows, np.full((MARGIN, width), 255, np.uint8)]
    )
    boxes = _boxes(sheet)
    factor = SMALL if variant is Variant.GRAY_SMALL else 1.0
    height = sheet.shape[0]
    per_line: list[list[tuple[str, float]]] = [[] for _ in lines]
    for char, x0, y0, x1, y1 in boxes:
        centre_y = height - (y0 + y1) / 2  # tesseract's box origin is the bottom left
        index = _line_of(centre_y, offsets, [s.shape[0] for s in shown])
        if index is not None and char in ALPHABET:
            per_line[index].append((char, ((x0 + x1) / 2 - MARGIN) / factor))
    readings = []
    for line, found in zip(scaled, per_line, strict=True):
        cells = grid(line)
        text = "".join(c for c, _ in found)
        if cells is None:
            readings.append(LineReading(text, text, ()))
        else:
            classified = cells.classify()
            fused = _fuse(cells, classified, found)
            readings.append(LineReading(fused, text, tuple(scores for _, scores in classified)))
    return readings


def merge(readings: Sequence[Sequence[LineReading]]) -> list[str] | None:
    """Several readings of the same lines merged cell by cell: the majority, else the best OCR-B match."""
    if len({len(r) for r in readings}) != 1:
        return None
    merged = []
    for versions in zip(*readings, strict=True):
        texts = [v.text for v in versions]
        scores = versions[0].scores
        if len({len(t) for t in texts}) != 1 or len(scores) != len(texts[0]):
            return None
        chars = []
        for k, column in enumerate(zip(*texts, strict=True)):
            votes = Counter(column).most_common()
            if len(votes) == 1 or votes[0][1] > votes[1][1]:
                chars.append(votes[0][0])
            else:
                chars.append(max(column, key=lambda c: scores[k].get(c, 0.0)))
        merged.append("".join(chars))
    return merged


def _show(line: Image, variant: Variant) -> Image:
    if variant is Variant.INK:
        return 255 - ink(line)
    if variant is Variant.GRAY_SMALL:
        factor = SMALL
        return cv2.resize(line, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    return line


def _boxes(sheet: Image) -> list[tuple[str, int, int, int, int]]:
    try:
        raw = pytesseract.image_to_boxes(sheet, config=TESSERACT_CONFIG, timeout=TIMEOUT)
    except pytesseract.TesseractNotFoundError as exc:
        raise DocumentError("tesseract is not installed (Debian package tesseract-ocr)") from exc
    except RuntimeError as exc:  # pytesseract's timeout
        raise DocumentError(f"tesseract did not finish: {exc}") from exc
    out = []
    for row in raw.splitlines():
        parts = row.split(" ")
        if len(parts) >= 5 and len(parts[0]) == 1:
            out.append((parts[0], int(parts[1]), int(parts[2]), int(parts[3]), int(parts[4])))
    return out


def _line_of(y: float, offsets: list[int], heights: list[int]) -> int | None:
    for index, (top, h) in enumerate(zip(offsets, heights, strict=True)):
        if top - GAP / 2 <= y < top + h + GAP / 2:
            return index
    return None


def _fuse(cells: Grid, classified: list[tuple[str, dict[str, float]]], found: list[tuple[str, float]]) -> str:
    by_cell: dict[int, list[str]] = {}
    for char, x in found:
        k = cells.cell_of(x)
        if 0 <= k < cells.cells:
            by_cell.setdefault(k, []).append(char)
    out = []
    for k, (best, scores) in enumerate(classified):
        read = by_cell.get(k, [])
        if not scores:  # no OCR-B font: tesseract alone
            out.append(read[0] if read else FILLER)
        elif best == FILLER and (not read or scores[FILLER] >= max(scores[c] for c in read) + FILLER_MARGIN):
            out.append(FILLER)
        elif read:
            out.append(max(read, key=lambda c: scores[c]))
        else:
            out.append(best)
    return "".join(out)
