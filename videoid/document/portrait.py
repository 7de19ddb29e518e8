"""The holder's portrait on the document's data page, cut out for the face comparison.

dlib's HOG frontal face detector (``dlib-bin``) on a copy scaled down to at most
``DETECT_SIZE`` pixels (detection cost grows with pixels); the crop is taken from the full-size
image, with a margin around the face as the printed portrait has. The back of an identity card
has no portrait: None.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import cv2
import dlib

from videoid.document.locate import Image

DETECT_SIZE = 640
MARGIN = 0.35  # of the face box, on every side
UPSAMPLE = 1
MIN_FACE = 24  # pixels in the detection copy; smaller hits on print patterns are noise
# Of the detector's hits, those under this share of the best one's score are print patterns
# (guilloches, lines of text): measured on a passport page sent over VP8, the portrait scored
# 1.1-1.2 and a 224 px hit on the text beside it 0.15.
RELATIVE_SCORE = 0.5


@dataclass(slots=True, frozen=True)
class Portrait:
    image: Image  # BGR crop, full resolution
    box: tuple[int, int, int, int]  # x, y, w, h of the crop in the input image
    score: float  # the detector's confidence


_local = threading.local()


def _detector() -> Any:
    """This thread's detector: dlib's object detectors must not be shared between threads."""
    found = getattr(_local, "detector", None)
    if found is None:
        found = _local.detector = dlib.get_frontal_face_detector()
    return found


def choose_face(hits: list[tuple[Any, float]]) -> tuple[Any, float] | None:
    """The holder's portrait among the detector's ``(rectangle, score)`` hits: the largest of the
    confident ones. Confidence first, because a weak hit on the printed text can be larger than
    the photo; then size, because a ghost image (the smaller copy of the portrait that many
    identity cards print) is also a confident face."""
    hits = [(r, s) for r, s in hits if r.width() >= MIN_FACE]
    if not hits:
        return None
    best = max(s for _, s in hits)
    return max((h for h in hits if h[1] >= RELATIVE_SCORE * best), key=lambda h: h[0].area())


def find_portrait(image: Image) -> Portrait | None:
    """The largest face on the page, with margin, or None when there is none."""
    height, width = image.shape[:2]
    scale = min(1.0, DETECT_SIZE / max(height, width))
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image
    rgb = (
        cv2.cvtColor(small, cv2.COLOR_GRAY2RGB) if small.ndim == 2 else cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
    )
    # upsampled once: a card's portrait is a fifth of its width, under HOG's 80 px minimum at 640 px
    rects, scores, _ = _detector().run(rgb, UPSAMPLE, 0.0)
    chosen = choose_face(list(zip(rects, scores, strict=True)))
    if chosen is None:
        return None
    rect, score = chosen
    x, y = rect.left() / scale, rect.top() / scale
    w, h = rect.width() / scale, rect.height() / scale
    x0, y0 = max(0, int(x - MARGIN * w)), max(0, int(y - MARGIN * h * 1.3))
    x1, y1 = min(width, int(x + w * (1 + MARGIN))), min(height, int(y + h * (1 + MARGIN * 1.3)))
    crop = image[y0:y1, x0:x1].copy()
    return Portrait(crop, (x0, y0, x1 - x0, y1 - y0), float(score))
