"""Reading an identity document from one image: MRZ (located, recognised, corrected) and portrait.

The same path serves a live session (a BGR video frame from OpenCV) and the operator command
(an image file): :func:`read_document` takes a numpy image; :func:`load_image` turns bytes into
one. Everything here is synchronous and CPU-bound; async callers use :func:`read_document_async`,
which runs it in a worker thread.

:func:`check_document` applies a tenant's policy to a reading (Doc 9303 check digits, expiry,
accepted document types and issuing states) and lists every problem; it never raises for them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path

import cv2
import numpy as np

from idp.errors import MRZFormatError, MRZNotFoundError, NotAnImageError
from videoid.document import ocr
from videoid.document.correction import read_mrz
from videoid.document.locate import Image, find_bands
from videoid.document.mrz import MRZ
from videoid.document.portrait import Portrait, find_portrait

MIN_SIDE = 64  # pixels: smaller images cannot hold a legible MRZ
MAX_PIXELS = 40_000_000


@dataclass(slots=True, frozen=True)
class DocumentReading:
    """What one image of a document gave: the MRZ, its dates, and the portrait if the page has one."""

    mrz: MRZ
    birth_date: date | None
    expiry_date: date | None
    expired: bool
    portrait: Portrait | None
    ocr_lines: tuple[str, ...]  # the recognised text before correction

    @classmethod
    def of(
        cls, mrz: MRZ, lines: tuple[str, ...], *, today: date, portrait: Portrait | None = None
    ) -> DocumentReading:
        """The reading of ``mrz`` (recognised as ``lines``): its dates, and expired as of ``today``."""
        expiry = mrz.expiry()
        return cls(
            mrz=mrz,
            birth_date=mrz.birth(today=today),
            expiry_date=expiry,
            expired=expiry is not None and expiry < today,
            portrait=portrait,
            ocr_lines=lines,
        )


class ProblemCode(StrEnum):
    CHECK_DIGIT_INVALID = "check_digit_invalid"
    EXPIRED = "expired"
    EXPIRY_UNREADABLE = "expiry_unreadable"
    TYPE_NOT_ACCEPTED = "document_type_not_accepted"
    COUNTRY_NOT_ACCEPTED = "issuing_country_not_accepted"


@dataclass(slots=True, frozen=True)
class DocumentProblem:
    code: ProblemCode
    message: str


def load_image(data: bytes) -> Image:
    """Decode image bytes (JPEG, PNG, …) into a BGR array; :class:`NotAnImageError` otherwise."""
    if not data:
        raise NotAnImageError("the file is empty")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise NotAnImageError("the file is not an image OpenCV can decode (JPEG, PNG, TIFF, WebP, …)")
    return image


def load_image_file(path: Path) -> Image:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise NotAnImageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return load_image(data)


def _validate(image: object) -> Image:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise NotAnImageError("expected an 8-bit grey or BGR image")
    if image.ndim == 3 and image.shape[2] not in (1, 3, 4):
        raise NotAnImageError(f"expected 1, 3 or 4 channels, got {image.shape[2]}")
    height, width = image.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise NotAnImageError(f"the image is {width}x{height} pixels; at least {MIN_SIDE} on each side")
    if height * width > MAX_PIXELS:
        raise NotAnImageError(f"the image is {width}x{height} pixels; at most {MAX_PIXELS} in all")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def _score(mrz: MRZ) -> tuple[int, int]:
    return sum(c.valid for c in mrz.checks), -len(mrz.corrections)


def read_mrz_from(image: Image) -> tuple[MRZ, tuple[str, ...]]:
    """Locate, recognise and correct the MRZ: the best reading over the bands and OCR variants tried."""
    best: tuple[tuple[int, int], MRZ, tuple[str, ...]] | None = None
    for band in find_bands(image):
        if len(band.lines) < 2:
            continue
        lines = band.lines[-3:]
        readings = [ocr.read_lines(lines, variant=v) for v in ocr.Variant]
        candidates: list[list[str]] = []
        merged = ocr.merge(readings)
        if merged is not None:
            candidates.append(merged)
        candidates.extend([r.text for r in reading] for reading in readings)
        for candidate in candidates:
            try:
                mrz = read_mrz(candidate)
            except MRZFormatError:
                continue
            if best is None or _score(mrz) > best[0]:
                best = (_score(mrz), mrz, tuple(candidate))
        if best is not None and best[1].valid:
            break
    if best is None:
        raise MRZNotFoundError("no machine-readable zone (2 or 3 lines of OCR-B text) found in the image")
    return best[1], best[2]


def read_document(image: Image, *, today: date, portrait: bool = True) -> DocumentReading:
    """Read the MRZ and cut out the portrait (Doc 9303); raises a :class:`DocumentError` subclass.

    ``portrait=False`` skips the portrait (about 0.1 s of face detection), for a caller that has it.
    """
    image = _validate(image)
    mrz, lines = read_mrz_from(image)
    return DocumentReading.of(mrz, lines, today=today, portrait=find_portrait(image) if portrait else None)


async def read_document_async(image: Image, *, today: date) -> DocumentReading:
    """:func:`read_document` in a worker thread: OCR takes about a second and must not hold the loop."""
    return await asyncio.to_thread(read_document, image, today=today)


def check_document(
    reading: DocumentReading,
    *,
    today: date,
    accepted_countries: frozenset[str] | None,
    accepted_types: frozenset[str] | None,
) -> list[DocumentProblem]:
    """Every reason to refuse the document under a tenant's policy; empty when it is acceptable.

    ``accepted_types`` holds document codes as printed (``P``, ``ID``) or their first letter
    (``I`` matches ``ID`` and ``I<``); ``accepted_countries`` holds issuing-state codes as printed
    (Doc 9303 Part 3 §5: ``D`` for Germany, ``HRV``, ``UTO``). None accepts all.
    """
    mrz = reading.mrz
    problems = [
        DocumentProblem(
            ProblemCode.CHECK_DIGIT_INVALID,
            f"{check.name} check digit: printed {check.expected!r}, computed {check.computed!r}",
        )
        for check in mrz.checks
        if not check.valid
    ]
    expiry = mrz.expiry()
    if expiry is None:
        problems.append(
            DocumentProblem(ProblemCode.EXPIRY_UNREADABLE, f"expiry date {mrz.expiry_date!r} is not a date")
        )
    elif expiry < today:
        problems.append(DocumentProblem(ProblemCode.EXPIRED, f"the document expired on {expiry.isoformat()}"))
    if accepted_types is not None and not (
        mrz.document_code in accepted_types or mrz.document_type in accepted_types
    ):
        problems.append(
            DocumentProblem(
                ProblemCode.TYPE_NOT_ACCEPTED,
                f"document code {mrz.document_code!r} is not among {sorted(accepted_types)}",
            )
        )
    if accepted_countries is not None and mrz.issuing_state not in accepted_countries:
        problems.append(
            DocumentProblem(
                ProblemCode.COUNTRY_NOT_ACCEPTED,
                f"issuing state {mrz.issuing_state!r} is not among {sorted(accepted_countries)}",
            )
        )
    return problems
