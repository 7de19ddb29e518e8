"""Face detection, descriptors and the match decision on the shared photos."""

from __future__ import annotations

import itertools
import threading

import cv2
import numpy as np
import pytest

from idp.errors import FaceError, IdPError
from tests.videoid.testdata import FACES
from videoid import calibration, faces
from videoid.faces import Embedding
from videoid.liveness import Policy


def test_genuine_pairs_of_each_named_person_match(named_people: dict[str, list[Embedding]]) -> None:
    assert {name: len(v) for name, v in named_people.items()} == {
        "obama": 3,
        "biden": 2,
        "kit_harington": 2,
        "rose_leslie": 2,
    }
    for name, samples in named_people.items():
        for a, b in itertools.combinations(samples, 2):
            result = faces.compare(a, b)
            assert result.match, (name, result)
            assert result.threshold == faces.MATCH_THRESHOLD


def test_pairs_across_named_people_do_not_match(named_people: dict[str, list[Embedding]]) -> None:
    for (p, first), (q, second) in itertools.combinations(named_people.items(), 2):
        for a in first:
            for b in second:
                result = faces.compare(a, b)
                assert not result.match, (p, q, result)
                assert result.distance > faces.MATCH_THRESHOLD


def test_the_threshold_in_the_code_is_the_calibrated_one(johns: dict[str, list[Embedding]]) -> None:
    pairs = calibration.pair_distances(johns)
    assert (len(pairs.genuine), len(pairs.impostor)) == (5 * 55, 10 * 121)
    assert calibration.false_accept_first_threshold(pairs) == pytest.approx(faces.MATCH_THRESHOLD)
    rates = calibration.error_rates(pairs, faces.MATCH_THRESHOLD)
    assert rates.false_accepts == 0
    assert rates.frr < 0.01
    # the false-accept-first choice is stricter than the equal-error point, never looser
    assert faces.MATCH_THRESHOLD < calibration.equal_error_threshold(pairs)


def test_the_liveness_template_separates_people_at_the_identity_threshold(
    johns: dict[str, list[Embedding]],
) -> None:
    """The liveness continuity check compares a frame with the mean of the session's first
    descriptors: on the calibration set, no other person comes within its threshold of such a
    template, and none of the person's own photos lies beyond it."""
    policy = Policy()
    pairs = calibration.template_distances(johns, policy.template_descriptors)
    assert len(pairs.genuine) == 5 * 165 * 8 and len(pairs.impostor) == 5 * 165 * 44
    rates = calibration.error_rates(pairs, policy.identity_threshold)
    assert (rates.false_accepts, rates.false_rejects) == (0, 0)
    # the template is no closer to another person than the margin the match threshold keeps
    assert min(pairs.impostor) > policy.identity_threshold + 0.03


def test_a_template_is_the_mean_of_its_descriptors() -> None:
    groups = {"a": [np.zeros(2), np.array([2.0, 0.0])], "b": [np.array([1.0, 3.0])]}
    pairs = calibration.template_distances(groups, 2)  # type: ignore[arg-type]
    assert pairs.genuine == ()  # a's two descriptors are both in the template
    assert pairs.impostor == pytest.approx((3.0,))  # b from a's mean (1, 0)
    with pytest.raises(ValueError, match="at least one"):
        calibration.template_distances(groups, 0)  # type: ignore[arg-type]


def test_error_rates_and_thresholds_on_known_distances() -> None:
    pairs = calibration.PairDistances(genuine=(0.2, 0.4, 0.7), impostor=(0.5, 0.8, 0.9, 1.0))
    rates = calibration.error_rates(pairs, 0.45)
    assert (rates.false_accepts, rates.false_rejects) == (0, 1)
    assert rates.far == 0 and rates.frr == pytest.approx(1 / 3)
    assert calibration.false_accept_first_threshold(pairs, margin=0.1) == pytest.approx(0.4)
    assert calibration.equal_error_threshold(pairs) in (0.4, 0.5)
    separable = calibration.PairDistances(genuine=(0.2, 0.3), impostor=(0.7,))
    assert calibration.equal_error_threshold(separable) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="impostor"):
        calibration.false_accept_first_threshold(calibration.PairDistances((0.1,), ()))


def test_large_photo_is_detected_downscaled_and_mapped_back(face_models: faces.FaceModels) -> None:
    image = faces.read_image(FACES / "obama" / "3.jpg")
    assert max(image.shape) > 2 * faces.MAX_DETECT_SIDE
    face = faces.single_face(image)
    assert face.landmarks.shape == (68, 2)
    box = face.box
    assert box.right <= image.shape[1] and box.bottom <= image.shape[0]
    # the landmarks were found on the full image: they lie in (a margin around) the mapped box
    xs, ys = face.landmarks[:, 0], face.landmarks[:, 1]
    margin = box.width * 0.25
    assert box.left - margin < xs.min() and xs.max() < box.right + margin
    assert box.top - margin < ys.min() and ys.max() < box.bottom + margin


def test_same_image_gives_the_same_descriptor(face_models: faces.FaceModels) -> None:
    image = faces.read_image(FACES / "biden" / "1.jpg")
    a, b = faces.encode(image), faces.encode(image.copy())
    assert a.embedding.shape == (128,)
    assert faces.compare(a.embedding, b.embedding).distance == pytest.approx(0.0, abs=1e-6)
    assert faces.compare(a.embedding, b.embedding).match


def test_two_faces_are_refused_where_one_is_required(face_models: faces.FaceModels) -> None:
    left = cv2.resize(faces.read_image(FACES / "obama" / "1.jpg"), (400, 500))
    right = cv2.resize(faces.read_image(FACES / "biden" / "2.jpg"), (400, 500))
    both = np.hstack([left, right])
    assert len(faces.detect_faces(both)) == 2
    with pytest.raises(FaceError, match="expected one face, found 2") as caught:
        faces.encode(both)
    assert caught.value.code == "several_faces"
    assert isinstance(caught.value, IdPError)


def test_no_face(face_models: faces.FaceModels) -> None:
    blank = np.full((480, 640, 3), 127, dtype=np.uint8)
    noise = np.random.default_rng(4).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    for image in (blank, noise):
        assert faces.detect_faces(image) == []
        with pytest.raises(FaceError, match="no face") as caught:
            faces.encode(image)
        assert caught.value.code == "no_face"


@pytest.mark.parametrize(
    "data",
    [b"", b"GIF89a not really", b"\xff\xd8\xff\xe0" + b"\x00" * 64, b"%PDF-1.7\n" + b"x" * 100],
    ids=["empty", "fake-gif", "truncated-jpeg", "pdf"],
)
def test_garbage_bytes_are_unreadable(data: bytes) -> None:
    with pytest.raises(FaceError) as caught:
        faces.decode_image(data)
    assert caught.value.code == "unreadable_image"


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((480, 640, 3), dtype=np.float32),
        np.zeros((480, 640, 4), dtype=np.uint8),
        np.zeros((4, 4, 3), dtype=np.uint8),
        np.zeros((10,), dtype=np.uint8),
        "not an array",
    ],
    ids=["float", "four-channels", "tiny", "one-dimensional", "string"],
)
def test_arrays_that_are_not_images_are_refused(array: object) -> None:
    with pytest.raises(FaceError, match="expected an 8-bit BGR or grey image") as caught:
        faces.detect_faces(array)  # type: ignore[arg-type]
    assert caught.value.code == "unreadable_image"


def test_missing_file_is_unreadable() -> None:
    with pytest.raises(FaceError, match="cannot read") as caught:
        faces.read_image("/nonexistent/face.jpg")
    assert caught.value.code == "unreadable_image"


def test_descriptors_of_the_wrong_shape_are_refused() -> None:
    with pytest.raises(ValueError, match=r"shape \(127,\), expected \(128,\)"):
        faces.compare(np.zeros(128), np.zeros(127))


def test_grey_photo_is_accepted(face_models: faces.FaceModels) -> None:
    grey = cv2.cvtColor(faces.read_image(FACES / "obama" / "1.jpg"), cv2.COLOR_BGR2GRAY)
    colour = faces.encode(faces.read_image(FACES / "obama" / "2.jpg"))
    assert faces.compare(faces.encode(grey).embedding, colour.embedding).match


def test_models_load_once_across_threads() -> None:
    seen: list[faces.FaceModels] = []
    threads = [threading.Thread(target=lambda: seen.append(faces.models())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 4 and all(m is seen[0] for m in seen)
