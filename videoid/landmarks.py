"""Geometry read from the 68 face landmarks (iBUG 300-W markup): head yaw, eye aspect ratio, shape.

Indices (0-based, as dlib's 68-point predictor returns them): jaw 0-16, nose tip 30, chin 8,
eyes 36-41 (the eye on the image's left) and 42-47, outer eye corners 36 and 45, mouth corners
48 and 54.

- Yaw: ``cv2.solvePnP`` fits six landmarks to a generic 3D face model under a pinhole camera
  whose focal length is the frame width, centred (the usual assumption for an uncalibrated
  webcam); the yaw is the rotation about the camera's vertical axis.
- Eye aspect ratio (EAR): Soukupová and Čech, "Real-Time Eye Blink Detection using Facial
  Landmarks", CVWW 2016, eq. (1): ``(|p2-p6| + |p3-p5|) / (2 |p1-p4|)``, mean of both eyes;
  about 0.25-0.35 open, under ~0.15 closed.
- Shape: landmarks normalised for position, scale and in-plane rotation (by the eye corners), so
  that what is left between frames is the face's own non-rigid motion (speech, expression,
  blinks) plus a little detector noise: near zero for a photo.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

Points = npt.NDArray[np.float32]

NOSE_TIP, CHIN, EYE_OUTER_LEFT, EYE_OUTER_RIGHT, MOUTH_LEFT, MOUTH_RIGHT = 30, 8, 36, 45, 48, 54
POSE_POINTS = (NOSE_TIP, CHIN, EYE_OUTER_LEFT, EYE_OUTER_RIGHT, MOUTH_LEFT, MOUTH_RIGHT)
# A generic adult face in millimetres-ish units, camera axes (x to the image's right, y down,
# z away from the camera), nose tip at the origin; the order of POSE_POINTS.
FACE_MODEL = np.array(
    [
        (0.0, 0.0, 0.0),
        (0.0, 330.0, 65.0),
        (-225.0, -170.0, 135.0),
        (225.0, -170.0, 135.0),
        (-150.0, 150.0, 125.0),
        (150.0, 150.0, 125.0),
    ],
    dtype=np.float64,
)
LEFT_EYE = slice(36, 42)
RIGHT_EYE = slice(42, 48)


def camera_matrix(width: int, height: int) -> npt.NDArray[np.float64]:
    """Pinhole intrinsics of an uncalibrated webcam: focal length = frame width, centred."""
    return np.array([[width, 0, width / 2], [0, width, height / 2], [0, 0, 1]], dtype=np.float64)


def head_yaw(landmarks: Points, width: int, height: int) -> float | None:
    """Head yaw in degrees: positive when the person turns to *their* left (nose to image right).

    The sign is for the camera's own, unmirrored image, as frames arrive from the browser; a
    preview the person sees mirrored shows the turn on the same side as their own left.
    """
    image_points = np.ascontiguousarray(landmarks[list(POSE_POINTS)], dtype=np.float64)
    ok, rvec, _ = cv2.solvePnP(
        FACE_MODEL,
        image_points,
        camera_matrix(width, height),
        np.zeros(4),
        flags=cv2.SOLVEPNP_ITERATIVE,
    )
    if not ok:
        return None
    rotation, _ = cv2.Rodrigues(rvec)
    # R = Rz Ry Rx; rotation about y is asin(-R[2,0]). A positive one turns the nose to the
    # image's left, which is the person's right: negate for "positive = the person's left".
    about_y = math.degrees(math.asin(max(-1.0, min(1.0, -float(rotation[2, 0])))))
    return -about_y


def eye_aspect_ratio(landmarks: Points) -> float:
    """Mean eye aspect ratio of both eyes (Soukupová and Čech 2016, eq. 1)."""

    def ear(eye: Points) -> float:
        p1, p2, p3, p4, p5, p6 = eye.astype(np.float64)
        width = float(np.linalg.norm(p1 - p4))
        if width == 0:
            return 0.0
        return float((np.linalg.norm(p2 - p6) + np.linalg.norm(p3 - p5)) / (2 * width))

    return (ear(landmarks[LEFT_EYE]) + ear(landmarks[RIGHT_EYE])) / 2


def normalised_shape(landmarks: Points) -> npt.NDArray[np.float64]:
    """Landmarks with the eye corners' midpoint at the origin, eye corners level, 1 apart."""
    points = landmarks.astype(np.float64)
    left, right = points[EYE_OUTER_LEFT], points[EYE_OUTER_RIGHT]
    axis = right - left
    span = float(np.hypot(*axis))
    if span == 0:
        return np.zeros_like(points)
    cos, sin = axis / span
    rotate = np.array([[cos, sin], [-sin, cos]])
    normalised: npt.NDArray[np.float64] = ((points - (left + right) / 2) @ rotate.T) / span
    return normalised


def shape_motion(shapes: npt.NDArray[np.float64]) -> float:
    """RMS deviation of normalised shapes (n, 68, 2) from their mean: the non-rigid motion."""
    if len(shapes) < 2:
        return 0.0
    deviation = shapes - shapes.mean(axis=0)
    return float(np.sqrt((deviation**2).sum(axis=2).mean()))
