"""Finding the machine-readable zone in a photo or video frame (OpenCV).

The MRZ is two or three lines of dark, evenly spaced OCR-B characters on a light ground: a
morphological black-hat brings out dark text on light background, a horizontal gradient keeps
text (many vertical strokes) and drops smooth areas, closings merge the characters into lines
and the lines into one band (the method PassportEye and pyimagesearch describe). The band is
deskewed with the angle of its minimum-area rectangle and cut into its text lines by the
horizontal projection of the ink.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

Image = NDArray[Any]  # 8-bit grey or BGR; OpenCV types its results loosely

WORK_WIDTH = 800  # band search runs on a copy this wide: kernel sizes are tuned for it
MIN_LINE_ASPECT = 8.0
MIN_BAND_WIDTH = 0.35  # of the image width


@dataclass(slots=True, frozen=True)
class Band:
    """A candidate MRZ band: the deskewed grey crop and its text lines (each a grey crop)."""

    image: Image
    lines: tuple[Image, ...]
    angle: float  # degrees the band was rotated by
    box: tuple[int, int, int, int]  # x, y, w, h in the input image (before deskew)


def to_gray(image: Image) -> Image:
    if image.ndim == 2:
        return image
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def find_bands(image: Image, *, limit: int = 3) -> list[Band]:
    """The most MRZ-like bands of ``image`` (BGR or grey), best first; empty when none is found."""
    gray = to_gray(image)
    height, width = gray.shape
    scale = WORK_WIDTH / width
    small = cv2.resize(
        gray,
        (WORK_WIDTH, max(1, round(height * scale))),
        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC,
    )
    lines = _text_lines(small)
    groups = _group(lines)
    candidates: list[tuple[float, Band]] = []
    for group in groups:
        points = np.concatenate([contour for contour, _ in group])
        (cx, cy), (rw, rh), angle = cv2.minAreaRect(points)
        if rw < rh:
            rw, rh, angle = rh, rw, angle - 90
        angle = (angle + 90) % 180 - 90  # a band has no up/down: keep the text upright
        if abs(angle) > 30:
            continue
        x, y, w, h = cv2.boundingRect(points)
        box = (int(x / scale), int(y / scale), round(w / scale), round(h / scale))
        band = _cut(gray, center=(cx / scale, cy / scale), size=(rw / scale, rh / scale), angle=angle)
        found = split_lines(band)
        # prefer wide bands of two or three lines, low on the page (where Doc 9303 puts them)
        score = rw * (3.0 if len(group) in (2, 3) else 1.0) * (1 + cy / small.shape[0])
        candidates.append((score, Band(band, found, angle, box)))
    candidates.sort(key=lambda c: -c[0])
    return [band for _, band in candidates[:limit]]


Contour = NDArray[Any]


def _text_lines(small: Image) -> list[tuple[Contour, tuple[int, int, int, int]]]:
    """Contours of long, thin runs of dark characters (each MRZ line is one)."""
    blurred = cv2.GaussianBlur(small, (3, 3), 0)
    blackhat = cv2.morphologyEx(
        blurred, cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_RECT, (17, 7))
    )
    grad = np.absolute(cv2.Sobel(blackhat, cv2.CV_32F, 1, 0, ksize=-1))
    low, high = float(grad.min()), float(grad.max())
    if high - low < 1e-6:
        return []
    grad8 = ((grad - low) / (high - low) * 255).astype(np.uint8)
    closed = cv2.morphologyEx(grad8, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (21, 3)))
    _, mask = cv2.threshold(closed, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    # a document's edge or a frame is a long vertical stroke: it would join the lines it touches
    vertical = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, 50)))
    mask = cv2.subtract(mask, vertical)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (5, 3)))
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    found = []
    for contour in contours:
        (_, _), (rw, rh), _ = cv2.minAreaRect(contour)
        long_side, short_side = max(rw, rh), max(1.0, min(rw, rh))
        if long_side >= MIN_BAND_WIDTH * WORK_WIDTH and long_side / short_side >= MIN_LINE_ASPECT:
            x, y, w, h = cv2.boundingRect(contour)
            found.append((contour, (x, y, w, h)))
    return found


def _group(
    lines: list[tuple[Contour, tuple[int, int, int, int]]],
) -> list[list[tuple[Contour, tuple[int, int, int, int]]]]:
    """Lines stacked one under the other, left edges and widths alike: an MRZ's two or three lines."""
    lines = sorted(lines, key=lambda item: item[1][1])
    groups: list[list[tuple[Contour, tuple[int, int, int, int]]]] = []
    for item in lines:
        x, y, w, h = item[1]
        for group in groups:
            gx, gy, gw, gh = group[-1][1]
            if (
                len(group) < 3
                and abs(x - gx) < 0.06 * WORK_WIDTH
                and abs(w - gw) < 0.15 * max(w, gw)
                and 0 < y - gy < 4 * max(h, gh)
            ):
                group.append(item)
                break
        else:
            groups.append([item])
    return groups


def _cut(gray: Image, *, center: tuple[float, float], size: tuple[float, float], angle: float) -> Image:
    """The rotated rectangle, deskewed, with a margin that keeps the characters' edges."""
    w, h = size
    margin_x, margin_y = 0.04 * w + 4, 0.25 * h + 4
    rotation = cv2.getRotationMatrix2D(center, angle, 1.0)
    rotated = cv2.warpAffine(
        gray, rotation, (gray.shape[1], gray.shape[0]), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )
    x0 = max(0, int(center[0] - w / 2 - margin_x))
    x1 = min(gray.shape[1], int(center[0] + w / 2 + margin_x))
    y0 = max(0, int(center[1] - h / 2 - margin_y))
    y1 = min(gray.shape[0], int(center[1] + h / 2 + margin_y))
    return rotated[y0:y1, x0:x1]


def ink(gray: Image) -> Image:
    """Dark text as white on black: black-hat sized to the text, then Otsu."""
    size = max(9, gray.shape[0] // 3) | 1
    blackhat = cv2.morphologyEx(
        gray, cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_RECT, (size, size))
    )
    _, binary = cv2.threshold(blackhat, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    return binary


def split_lines(band: Image) -> tuple[Image, ...]:
    """The band's text lines, top to bottom, by the rows that hold ink."""
    if band.size == 0:
        return ()
    binary = ink(band)
    profile = (binary > 0).sum(axis=1)
    threshold = max(2, 0.15 * float(profile.max()))
    rows = profile > threshold
    spans: list[tuple[int, int]] = []
    start = None
    for y, on in enumerate([*rows.tolist(), False]):
        if on and start is None:
            start = y
        elif not on and start is not None:
            spans.append((start, y))
            start = None
    if not spans:
        return ()
    tallest = max(end - begin for begin, end in spans)
    spans = [(b, e) for b, e in spans if e - b >= 0.5 * tallest]
    lines = []
    for begin, end in spans:
        pad = max(2, (end - begin) // 3)
        lines.append(band[max(0, begin - pad) : min(band.shape[0], end + pad), :])
    return tuple(lines)
