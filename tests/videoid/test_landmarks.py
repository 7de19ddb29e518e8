"""Head yaw, eye aspect ratio and shape normalisation from the 68 landmarks."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from videoid import landmarks

W, H = 640, 480


def projected(yaw_about_y: float, *, distance: float = 3000.0) -> landmarks.Points:
    """The generic model rotated about the camera's vertical axis and projected, as 68 points."""
    t = math.radians(yaw_about_y)
    rotation = np.array([[math.cos(t), 0, math.sin(t)], [0, 1, 0], [-math.sin(t), 0, math.cos(t)]])
    rvec, _ = cv2.Rodrigues(rotation)
    points, _ = cv2.projectPoints(
        landmarks.FACE_MODEL, rvec, np.array([0, 0, distance]), landmarks.camera_matrix(W, H), np.zeros(4)
    )
    out = np.zeros((68, 2), dtype=np.float32)
    out[list(landmarks.POSE_POINTS)] = points.reshape(-1, 2)
    return out


@pytest.mark.parametrize("angle", [-40, -25, -10, 0, 10, 25, 40])
def test_yaw_is_recovered_from_a_projected_head(angle: float) -> None:
    # a rotation turning the nose to the image's left is the person turning to their right
    assert landmarks.head_yaw(projected(angle), W, H) == pytest.approx(-angle, abs=0.5)


def test_yaw_sign_follows_the_nose() -> None:
    points = projected(-30)  # the person's left
    nose_x = points[landmarks.NOSE_TIP, 0]
    eyes_x = (points[landmarks.EYE_OUTER_LEFT, 0] + points[landmarks.EYE_OUTER_RIGHT, 0]) / 2
    assert nose_x > eyes_x  # nose toward the image's right
    assert landmarks.head_yaw(points, W, H) > 20


def eye(width: float, opening: float, x0: float = 0.0) -> list[tuple[float, float]]:
    """Six eye points p1..p6 (corner, two upper, corner, two lower)."""
    return [
        (x0, 0),
        (x0 + width / 3, -opening / 2),
        (x0 + 2 * width / 3, -opening / 2),
        (x0 + width, 0),
        (x0 + 2 * width / 3, opening / 2),
        (x0 + width / 3, opening / 2),
    ]


@pytest.mark.parametrize(("opening", "expected"), [(9.0, 0.3), (3.0, 0.1), (0.0, 0.0)])
def test_eye_aspect_ratio(opening: float, expected: float) -> None:
    points = np.zeros((68, 2), dtype=np.float32)
    points[36:42] = eye(30, opening)
    points[42:48] = eye(30, opening, x0=60)
    assert landmarks.eye_aspect_ratio(points) == pytest.approx(expected)


def test_normalised_shape_ignores_position_scale_and_roll() -> None:
    rng = np.random.default_rng(7)
    points = rng.uniform(100, 300, (68, 2)).astype(np.float32)
    angle = math.radians(20)
    roll = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    moved = ((points @ roll.T) * 1.7 + np.array([55.0, -30.0])).astype(np.float32)
    a, b = landmarks.normalised_shape(points), landmarks.normalised_shape(moved)
    np.testing.assert_allclose(a, b, atol=1e-4)
    assert landmarks.shape_motion(np.array([a, b])) < 1e-4
    assert landmarks.shape_motion(np.array([a, a + 0.05])) == pytest.approx(0.05 * math.sqrt(2) / 2, rel=1e-6)
