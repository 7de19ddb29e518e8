"""Following one face from frame to frame fast enough for live video (dlib HOG + 68 landmarks).

Detection on a whole 640x480 frame costs ~20 ms without upsampling and misses faces under
~80 px; with one upsampling it finds ~40 px faces but costs ~70 ms. So a face found once is
followed in a region around its last box, rescaled so the face is ~:data:`TRACK_FACE_PX` wide
(a few ms, and small faces get the upsampling for free); the whole frame is searched again every
``redetect_every`` frames and whenever the face is lost. While no face is found, one frame in
``upsample_every`` is searched with one upsampling, to pick up a face far from the camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2

from videoid import faces
from videoid.faces import Box, Face, Image

TRACK_FACE_PX = 110
ROI_MARGIN = 0.6  # of the box's width, on every side


@dataclass(slots=True, frozen=True)
class Found:
    face: Face | None
    faces_in_frame: int  # faces the last full-frame search saw (0 when tracking found one)
    tracked: bool


class FaceTracker:
    """Finds the session's face in successive grey frames; not thread-safe (one per session)."""

    def __init__(self, *, redetect_every: int = 10, upsample_every: int = 4) -> None:
        self.redetect_every = redetect_every
        self.upsample_every = upsample_every
        self._box: Box | None = None
        self._since_full = 0
        self._lost = 0

    def find(self, gray: Image) -> Found:
        if self._box is not None and self._since_full < self.redetect_every:
            self._since_full += 1
            face = self._in_region(gray, self._box)
            if face is not None:
                self._box = face.box
                return Found(face, 0, tracked=True)
        return self._full(gray)

    def _full(self, gray: Image) -> Found:
        self._since_full = 0
        upsample = self._lost > 0 and self._lost % self.upsample_every == 0
        found = faces.detect_faces(gray, upsample=int(upsample), retry_upsampled=False)
        if not found:
            self._box = None
            self._lost += 1
            return Found(None, 0, tracked=False)
        self._lost = 0
        last = self._box
        face = found[0] if last is None else min(found, key=lambda f: _centre_gap(f.box, last))
        self._box = face.box
        return Found(face, len(found), tracked=False)

    def _in_region(self, gray: Image, box: Box) -> Face | None:
        height, width = gray.shape[:2]
        margin = ROI_MARGIN * box.width
        left, top = max(0, int(box.left - margin)), max(0, int(box.top - margin))
        right, bottom = min(width, int(box.right + margin)), min(height, int(box.bottom + margin))
        if right - left < 16 or bottom - top < 16:
            return None
        scale = TRACK_FACE_PX / max(box.width, 1)
        region = cv2.resize(
            gray[top:bottom, left:right], None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR
        )
        m = faces.models()
        hits = m.detect(region, 0)  # type: ignore[arg-type]
        if not hits:
            return None
        previous = _shift(box, -left, -top)
        small, score = min(hits, key=lambda h: _centre_gap(h[0].scaled(1 / scale), previous))
        full = _shift(small.scaled(1 / scale), left, top)
        return Face(full, score, m.landmarks(gray, full))


def _shift(box: Box, dx: int, dy: int) -> Box:
    return Box(box.left + dx, box.top + dy, box.right + dx, box.bottom + dy)


def _centre_gap(a: Box, b: Box) -> float:
    return float(abs(a.left + a.right - b.left - b.right) + abs(a.top + a.bottom - b.top - b.bottom))
