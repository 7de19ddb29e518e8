"""The document tilted in front of the camera: its outline changes perspective between frames.

A real document turned about one of its axes is foreshortened: the edge that moves away gets
shorter than the opposite one, and the outline's aspect ratio changes. A picture of a document
shown flat on a screen, or a print slid across the camera, keeps its shape. So the check is
simple (ETSI TS 119 461 asks for the document's security features to be seen under changing
light and angle; this is the automated part of that): find the document's quadrilateral in
each frame (:func:`find_quad`), measure three rotation- and scale-invariant shape features
(log ratio of the left and right edges, of the top and bottom edges, log aspect ratio), and pass
when one of them has varied by at least :attr:`TiltCheck.min_change` across the step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

Quad = npt.NDArray[np.float32]  # 4 x 2: top-left, top-right, bottom-right, bottom-left
MIN_AREA = 0.08  # of the frame: a document held up to a webcam fills more than this
MAX_AREA = 0.98


def _order(points: npt.NDArray[np.float32]) -> Quad:
    s = points.sum(axis=1)
    d = np.diff(points, axis=1).ravel()
    return np.array(
        [points[np.argmin(s)], points[np.argmin(d)], points[np.argmax(s)], points[np.argmax(d)]],
        dtype=np.float32,
    )


def find_quad(gray: npt.NDArray[np.uint8]) -> Quad | None:
    """The largest convex four-cornered outline covering a plausible share of the frame, or None."""
    height, width = gray.shape[:2]
    blurred = cv2.GaussianBlur(gray, (5, 5), 0)
    _, mask = cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    edges = cv2.dilate(cv2.Canny(blurred, 40, 120), np.ones((3, 3), np.uint8))
    best: tuple[float, Quad] | None = None
    for source in (mask, edges):
        contours, _ = cv2.findContours(source, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for contour in sorted(contours, key=cv2.contourArea, reverse=True)[:3]:
            area = cv2.contourArea(contour) / (width * height)
            if not MIN_AREA <= area <= MAX_AREA:
                continue
            hull = cv2.convexHull(contour)
            approx = cv2.approxPolyDP(hull, 0.03 * cv2.arcLength(hull, True), True)
            if len(approx) == 4 and (best is None or area > best[0]):
                best = (area, _order(approx.reshape(4, 2).astype(np.float32)))
        if best is not None:
            break
    return None if best is None else best[1]


def _length(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    return float(np.hypot(*(a - b)))


def shape_features(quad: Quad) -> tuple[float, float, float]:
    """(log left/right, log top/bottom, log aspect): invariant to scale, position and in-plane turns."""
    tl, tr, br, bl = quad
    top, bottom, left, right = _length(tl, tr), _length(bl, br), _length(tl, bl), _length(tr, br)
    if min(top, bottom, left, right) < 1:
        return (0.0, 0.0, 0.0)
    return (math.log(left / right), math.log(top / bottom), math.log((top + bottom) / (left + right)))


@dataclass(slots=True)
class TiltCheck:
    """Feed it the quads of one step; :attr:`passed` once the perspective changed enough."""

    min_change: float = 0.12  # ~12 % foreshortening of one edge against the other
    min_quads: int = 4
    seen: int = 0
    _low: list[float] = field(default_factory=lambda: [math.inf] * 3)
    _high: list[float] = field(default_factory=lambda: [-math.inf] * 3)

    def add(self, quad: Quad | None) -> bool:
        if quad is not None:
            self.seen += 1
            for i, value in enumerate(shape_features(quad)):
                self._low[i] = min(self._low[i], value)
                self._high[i] = max(self._high[i], value)
        return self.passed

    @property
    def change(self) -> float:
        if self.seen == 0:
            return 0.0
        return max(h - lo for h, lo in zip(self._high, self._low, strict=True))

    @property
    def passed(self) -> bool:
        return self.seen >= self.min_quads and self.change >= self.min_change
