"""Synthetic identity documents for tests: a TD1 card or a TD3 passport page as a BGR image.

Each carries printed fields, a portrait taken from ``../shared/testdata/faces/`` and an MRZ
composed by Doc 9303's rules with valid check digits, printed in OCR-B (Debian's ``fonts-ocr-b``)
at the ICAO pitch. :class:`SyntheticDocument` keeps the truth to compare a reading with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from videoid.document.glyphs import font_path
from videoid.document.mrz import MRZFormat, check_digit

TESTDATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "testdata"
FACES = TESTDATA / "faces"

# millimetres (Doc 9303 Part 4 §2 and Part 5 §2), rendered at PX_PER_MM
SIZES_MM = {MRZFormat.TD3: (125.0, 88.0), MRZFormat.TD1: (85.6, 53.98)}
PITCH_MM = 2.54  # Part 3 §4.3: ten characters per 25.4 mm


@dataclass(slots=True, frozen=True)
class Holder:
    surname: str = "NOVAK"
    given_names: str = "ANA MARIJA"
    document_number: str = "PA1234567"
    issuing_state: str = "UTO"
    nationality: str = "UTO"
    birth: date = date(1985, 3, 14)
    sex: str = "F"
    expiry: date = date(2031, 9, 30)
    optional_data: str = ""
    portrait: Path | None = field(default_factory=lambda: FACES / "obama" / "1.jpg")


@dataclass(slots=True, frozen=True)
class SyntheticDocument:
    format: MRZFormat
    holder: Holder
    lines: tuple[str, ...]
    image: np.ndarray  # BGR
    portrait_box: tuple[int, int, int, int] | None  # x, y, w, h


def _field(value: str, length: int) -> str:
    value = value.upper().replace(" ", "<").replace("-", "<")
    if len(value) > length:
        raise ValueError(f"{value!r} does not fit {length} characters")
    return value.ljust(length, "<")


def _names(holder: Holder, length: int) -> str:
    return _field(f"{holder.surname}<<{holder.given_names}"[:length], length)


def _yymmdd(d: date) -> str:
    return d.strftime("%y%m%d")


def compose(fmt: MRZFormat, holder: Holder) -> tuple[str, ...]:
    """The MRZ lines of ``holder``'s document, check digits computed (Doc 9303 Parts 4 and 5)."""
    number = _field(holder.document_number, 9)
    birth, expiry = _yymmdd(holder.birth), _yymmdd(holder.expiry)
    cd = check_digit
    if fmt is MRZFormat.TD3:
        optional = _field(holder.optional_data, 14)
        optional_cd = cd(optional)
        upper = f"P<{_field(holder.issuing_state, 3)}{_names(holder, 39)}"
        composite = number + cd(number) + birth + cd(birth) + expiry + cd(expiry) + optional + optional_cd
        lower = (
            f"{number}{cd(number)}{_field(holder.nationality, 3)}{birth}{cd(birth)}{holder.sex}"
            f"{expiry}{cd(expiry)}{optional}{optional_cd}{cd(composite)}"
        )
        return upper, lower
    if fmt is MRZFormat.TD1:
        optional = _field(holder.optional_data, 15)
        line1 = f"I<{_field(holder.issuing_state, 3)}{number}{cd(number)}{optional}"
        line2 = f"{birth}{cd(birth)}{holder.sex}{expiry}{cd(expiry)}{_field(holder.nationality, 3)}{'<' * 11}"
        line2 += cd(line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29])
        return line1, line2, _names(holder, 30)
    raise ValueError(f"no renderer for {fmt}")


def render(fmt: MRZFormat, holder: Holder | None = None, *, px_per_mm: float = 8.0) -> SyntheticDocument:
    """Draw the document: tinted card, guilloche-like waves, printed fields, portrait and MRZ."""
    holder = holder or Holder()
    ocrb = font_path()
    if ocrb is None:
        raise RuntimeError("the OCR-B font is missing: apt-get install fonts-ocr-b (make check-system)")
    lines = compose(fmt, holder)
    width_mm, height_mm = SIZES_MM[fmt]
    width, height = round(width_mm * px_per_mm), round(height_mm * px_per_mm)
    card = _background(width, height)
    draw = ImageDraw.Draw(card)
    mm = px_per_mm
    label = ImageFont.truetype(str(ocrb), round((2.0 if fmt is MRZFormat.TD3 else 2.2) * mm))
    value = ImageFont.truetype(str(ocrb), round(3.2 * mm))
    title = "PASSPORT" if fmt is MRZFormat.TD3 else "IDENTITY CARD"
    draw.text((round(4 * mm), round(3 * mm)), f"UTOPIA  {title}", font=value, fill=(40, 40, 90))
    td3 = fmt is MRZFormat.TD3
    # an identity card's photo is about 22 x 28 mm (above the MRZ band, the bottom 17.78 mm)
    photo_w, photo_h = (35 * mm, 45 * mm) if td3 else (22 * mm, 28 * mm)
    photo_x, photo_y = round(5 * mm), round((10 if td3 else 6.5) * mm)
    portrait_box = None
    if holder.portrait is not None:
        face = _portrait(holder.portrait, round(photo_w), round(photo_h))
        card.paste(face, (photo_x, photo_y))
        portrait_box = (photo_x, photo_y, round(photo_w), round(photo_h))
    x = photo_x + photo_w + 5 * mm
    y = photo_y
    printed = [
        ("Surname", holder.surname),
        ("Given names", holder.given_names),
        ("Nationality", holder.nationality),
        ("Date of birth", holder.birth.strftime("%d.%m.%Y")),
        ("Sex", holder.sex),
        ("Date of expiry", holder.expiry.strftime("%d.%m.%Y")),
        ("Document no.", holder.document_number),
    ]
    for name, text in printed:
        if td3:  # label above value
            draw.text((round(x), round(y)), name, font=label, fill=(90, 90, 120))
            draw.text((round(x), round(y + 2.1 * mm)), text, font=value, fill=(20, 20, 20))
            y += 6.5 * mm
        else:  # a card is small: label and value on one line, all above the MRZ
            draw.text((round(x), round(y)), f"{name}: {text}", font=label, fill=(20, 20, 60))
            y += 3.1 * mm
    _mrz(draw, lines, ocrb, width=width, height=height, mm=mm)
    bgr = cv2.cvtColor(np.asarray(card), cv2.COLOR_RGB2BGR)
    return SyntheticDocument(fmt, holder, lines, bgr, portrait_box)


def _background(width: int, height: int) -> Image.Image:
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    waves = 0.5 + 0.5 * np.sin(xs / 9.0 + 6 * np.sin(ys / 40.0))
    base = np.stack([232 - 12 * waves, 236 - 6 * waves, 244 - 2 * waves], axis=-1)
    return Image.fromarray(base.clip(0, 255).astype(np.uint8), "RGB")


def _portrait(path: Path, width: int, height: int) -> Image.Image:
    photo = Image.open(path).convert("RGB")
    aspect = width / height
    w, h = photo.size
    if w / h > aspect:  # too wide: keep the middle
        new_w = round(h * aspect)
        photo = photo.crop(((w - new_w) // 2, 0, (w - new_w) // 2 + new_w, h))
    else:
        new_h = round(w / aspect)
        photo = photo.crop((0, 0, w, new_h))
    return photo.resize((width, height), Image.Resampling.LANCZOS)


ADVANCE_PER_EM = 0.723  # OCR-B's advance width, in em


def _mrz_grid(
    lines: tuple[str, ...], *, width: int, height: int, mm: float
) -> tuple[float, float, float, float]:
    """Where the MRZ goes: left, top, pitch and line spacing in pixels (Doc 9303 Part 3 §4.3)."""
    pitch = PITCH_MM * mm
    spacing = 4.2 * mm if len(lines) == 3 else 5.5 * mm
    return (width - pitch * len(lines[0])) / 2, height - 3.5 * mm - spacing * len(lines), pitch, spacing


def _mrz(
    draw: ImageDraw.ImageDraw, lines: tuple[str, ...], ocrb: Path, *, width: int, height: int, mm: float
) -> None:
    """The MRZ at Doc 9303's pitch (2.54 mm) and line spacing (Part 3 §4.3), above the bottom edge."""
    left, top, pitch, spacing = _mrz_grid(lines, width=width, height=height, mm=mm)
    font = ImageFont.truetype(str(ocrb), round(pitch / ADVANCE_PER_EM))
    for row, line in enumerate(lines):
        for col, char in enumerate(line):
            draw.text(
                (round(left + col * pitch), round(top + row * spacing)), char, font=font, fill=(15, 15, 15)
            )


def fleck(document: SyntheticDocument, *, line: int, column: int, px_per_mm: float = 8.0) -> np.ndarray:
    """The document's image with a dark fleck (dirt on the laminate, 6 px across) on the right
    half of one MRZ character: enough for OCR to read another letter there."""
    height, width = document.image.shape[:2]
    left, top, pitch, spacing = _mrz_grid(document.lines, width=width, height=height, mm=px_per_mm)
    em = pitch / ADVANCE_PER_EM
    centre = (round(left + (column + 0.7) * pitch), round(top + line * spacing + 0.45 * em))
    flecked = document.image.copy()
    cv2.circle(flecked, centre, 3, (15, 15, 15), -1)
    return flecked
