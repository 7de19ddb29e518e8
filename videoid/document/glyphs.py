"""The MRZ's character grid and OCR-B glyph templates.

Doc 9303 Part 3 §4.3 prints the MRZ in OCR-B (ISO 1073-2) at a fixed pitch, so a line is a row
of equal cells. The cells are found from the characters' connected components (their centres
lie on a grid), and each cell is compared with the glyphs of the OCR-B font (Debian's
``fonts-ocr-b``) by normalised cross-correlation. Tesseract's ``eng`` model reads letters and
digits well but turns runs of fillers ``<`` into ``K``, ``S`` or nothing; the grid fixes the
line's length and the templates recognise the filler, whose chevron no letter resembles.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from videoid.document.locate import Image, ink
from videoid.document.mrz import ALPHABET

FONT_DIRS = (
    Path("/usr/share/fonts/opentype/ocr-b"),
    Path("/usr/share/fonts"),
    Path("/usr/local/share/fonts"),
)
TEMPLATE_SIZE = (20, 28)  # width, height every cell is compared at
LINE_HEIGHT = 64  # lines are scaled to this height before segmentation


def font_path() -> Path | None:
    """The OCR-B font installed by Debian's ``fonts-ocr-b`` (``OCRB.otf``), or None."""
    for folder in FONT_DIRS:
        if (folder / "OCRB.otf").is_file():
            return folder / "OCRB.otf"
    for folder in FONT_DIRS[1:]:
        if folder.is_dir():
            found = sorted(folder.rglob("OCRB.otf"))
            if found:
                return found[0]
    return None


@functools.cache
def templates() -> dict[str, NDArray[np.float32]] | None:
    """Each MRZ character as OCR-B draws it, cut to its cell (advance x cap height); None without the font."""
    from PIL import Image as PILImage
    from PIL import ImageDraw, ImageFont

    path = font_path()
    if path is None:
        return None
    font = ImageFont.truetype(str(path), 100)
    advance = round(font.getlength("0"))
    _, cap_top, _, cap_bottom = font.getbbox("H")
    result = {}
    for char in sorted(ALPHABET):
        canvas = PILImage.new("L", (advance, 140), 0)
        ImageDraw.Draw(canvas).text((0, 0), char, font=font, fill=255)
        cell = np.asarray(canvas, dtype=np.float32)[cap_top:cap_bottom, :]
        result[char] = _normalise(cv2.resize(cell, TEMPLATE_SIZE, interpolation=cv2.INTER_AREA))
    return result


def _normalise(cell: NDArray[Any]) -> NDArray[np.float32]:
    centred: NDArray[np.float32] = np.asarray(cell, dtype=np.float32) - np.float32(cell.mean())
    norm = float(np.sqrt((centred * centred).sum()))
    return centred / np.float32(norm) if norm > 1e-6 else centred


@dataclass(slots=True, frozen=True)
class Grid:
    """A line's cells: cell ``k`` is centred at ``origin + pitch * k``; its glyph spans ``top:bottom``."""

    image: Image  # the line scaled to LINE_HEIGHT, grey
    binary: Image  # its ink, white on black
    origin: float
    pitch: float
    cells: int
    top: int
    bottom: int

    def cell_of(self, x: float) -> int:
        return round((x - self.origin) / self.pitch)

    def classify(self) -> list[tuple[str, dict[str, float]]]:
        """Per cell, the best-matching OCR-B character and every character's score (none without the font)."""
        glyphs = templates()
        if glyphs is None:
            return [("", {}) for _ in range(self.cells)]
        out: list[tuple[str, dict[str, float]]] = []
        for k in range(self.cells):
            x0 = max(0, round(self.origin + self.pitch * (k - 0.5)))
            x1 = min(self.binary.shape[1], round(self.origin + self.pitch * (k + 0.5)))
            crop = self.binary[self.top : self.bottom, x0:x1].astype(np.float32)
            if crop.size == 0 or x1 - x0 < 2:
                out.append(("", {}))
                continue
            cell = _normalise(cv2.resize(crop, TEMPLATE_SIZE, interpolation=cv2.INTER_AREA))
            scores = {char: float((cell * glyph).sum()) for char, glyph in glyphs.items()}
            out.append((max(scores, key=lambda c: scores[c]), scores))
        return out


def scale_line(line: Image) -> Image:
    factor = LINE_HEIGHT / max(1, line.shape[0])
    interpolation = cv2.INTER_CUBIC if factor > 1 else cv2.INTER_AREA
    return cv2.resize(line, None, fx=factor, fy=factor, interpolation=interpolation)


def grid(line: Image) -> Grid | None:
    """The character grid of one MRZ line (grey crop), or None when it has too few characters to tell."""
    scaled = scale_line(line)
    binary = ink(scaled)
    count, _, stats, centroids = cv2.connectedComponentsWithStats(binary)
    if count < 6:
        return None
    heights = stats[1:, cv2.CC_STAT_HEIGHT]
    tall = float(np.median(heights[heights >= 0.4 * heights.max()]))
    boxes = [
        (float(centroids[i][0]), stats[i])
        for i in range(1, count)
        if 0.6 * tall <= stats[i][cv2.CC_STAT_HEIGHT] <= 1.4 * tall
        and stats[i][cv2.CC_STAT_WIDTH] <= 1.5 * tall
    ]
    if len(boxes) < 6:
        return None
    boxes.sort(key=lambda b: b[0])
    xs = np.array([b[0] for b in boxes])
    steps = np.diff(xs)
    typical = float(np.median(steps))
    near = steps[(steps > 0.6 * typical) & (steps < 1.4 * typical)]
    if near.size == 0:
        return None
    pitch = float(np.median(near))
    xs, boxes = _longest_run(xs, boxes, pitch)
    if len(xs) < 6:
        return None
    # index each component from its neighbour: rounding step by step does not accumulate the
    # small error of the pitch estimate over 30-44 characters
    index = np.concatenate([[0.0], np.cumsum(np.maximum(1, np.round(np.diff(xs) / pitch)))])
    design = np.vstack([np.ones_like(index), index]).T
    (origin, pitch), *_ = np.linalg.lstsq(design, xs, rcond=None)
    top = int(np.median([b[1][cv2.CC_STAT_TOP] for b in boxes]))
    bottom = int(np.median([b[1][cv2.CC_STAT_TOP] + b[1][cv2.CC_STAT_HEIGHT] for b in boxes]))
    return Grid(scaled, binary, float(origin), float(pitch), int(index[-1]) + 1, top, max(bottom, top + 2))


def _longest_run(
    xs: NDArray[np.float64], boxes: list[tuple[float, NDArray[np.int32]]], pitch: float
) -> tuple[NDArray[np.float64], list[tuple[float, NDArray[np.int32]]]]:
    """The longest stretch of components whose gaps are whole pitches (at most three): the line itself."""
    runs: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(xs)):
        gap = (xs[i] - xs[i - 1]) / pitch
        if gap > 3.5 or abs(gap - round(gap)) > 0.3 or round(gap) == 0:
            runs.append((start, i))
            start = i
    runs.append((start, len(xs)))
    begin, end = max(runs, key=lambda r: xs[r[1] - 1] - xs[r[0]])
    return xs[begin:end], boxes[begin:end]
