"""Calibration of the face match threshold from labelled descriptors.

Terms as in ISO/IEC 19795-1 (biometric performance testing): a *genuine* pair is two samples of
the same person, an *impostor* pair two samples of different people; the false-accept rate (FAR)
is the share of impostor pairs at or under the threshold, the false-reject rate (FRR) the share
of genuine pairs above it.

The rule used for :data:`videoid.faces.MATCH_THRESHOLD` is "false accepts first"
(:func:`false_accept_first_threshold`): the closest impostor pair of the calibration set must
lie at least ``margin`` above the threshold, so that a shift of distances between the
calibration photos and live webcam frames against document portraits does not turn into false
accepts; the false rejects that costs are reported next to it, as is the equal-error threshold
for comparison.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from videoid import faces
from videoid.faces import Embedding

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(slots=True, frozen=True)
class PairDistances:
    """Descriptor distances of every genuine and every impostor pair of a labelled set."""

    genuine: tuple[float, ...]
    impostor: tuple[float, ...]


@dataclass(slots=True, frozen=True)
class ErrorRates:
    """False accepts and rejects of one threshold on one set of pairs."""

    threshold: float
    false_accepts: int
    impostor_pairs: int
    false_rejects: int
    genuine_pairs: int

    @property
    def far(self) -> float:
        return self.false_accepts / self.impostor_pairs if self.impostor_pairs else 0.0

    @property
    def frr(self) -> float:
        return self.false_rejects / self.genuine_pairs if self.genuine_pairs else 0.0


def embed_people(folders: Iterable[Path]) -> dict[str, list[Embedding]]:
    """The descriptor of the one face in each image of each person's folder (name = folder name)."""
    people: dict[str, list[Embedding]] = {}
    for folder in sorted(folders):
        images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        people[folder.name] = [faces.encode(faces.read_image(p)).embedding for p in images]
    return people


def pair_distances(groups: Mapping[str, Sequence[Embedding]]) -> PairDistances:
    """All genuine pairs (within a person) and impostor pairs (across people) of ``groups``."""
    genuine = [
        float(np.linalg.norm(a - b))
        for samples in groups.values()
        for a, b in itertools.combinations(samples, 2)
    ]
    impostor = [
        float(np.linalg.norm(a - b))
        for first, second in itertools.combinations(groups.values(), 2)
        for a in first
        for b in second
    ]
    return PairDistances(tuple(genuine), tuple(impostor))


def template_distances(groups: Mapping[str, Sequence[Embedding]], size: int) -> PairDistances:
    """Distances from the mean of every ``size`` descriptors of a person (a liveness session's
    face template, :mod:`videoid.liveness`): to that person's other descriptors (genuine) and to
    every other person's (impostor)."""
    if size < 1:
        raise ValueError(f"a template needs at least one descriptor, got {size}")
    genuine: list[float] = []
    impostor: list[float] = []
    for name, samples in groups.items():
        others = [e for other, group in groups.items() if other != name for e in group]
        for chosen in itertools.combinations(range(len(samples)), size):
            template = np.mean([samples[i] for i in chosen], axis=0)
            genuine += [float(np.linalg.norm(template - e)) for i, e in enumerate(samples) if i not in chosen]
            impostor += [float(np.linalg.norm(template - e)) for e in others]
    return PairDistances(tuple(genuine), tuple(impostor))


def error_rates(pairs: PairDistances, threshold: float) -> ErrorRates:
    """FAR and FRR of ``distance <= threshold`` as the match rule."""
    return ErrorRates(
        threshold=threshold,
        false_accepts=sum(d <= threshold for d in pairs.impostor),
        impostor_pairs=len(pairs.impostor),
        false_rejects=sum(d > threshold for d in pairs.genuine),
        genuine_pairs=len(pairs.genuine),
    )


def false_accept_first_threshold(pairs: PairDistances, *, margin: float = 0.10, step: float = 0.01) -> float:
    """The threshold ``margin`` under the closest impostor pair, rounded down to ``step``."""
    if not pairs.impostor:
        raise ValueError("calibration needs impostor pairs (at least two people)")
    return math.floor(round((min(pairs.impostor) - margin) / step, 6)) * step


def equal_error_threshold(pairs: PairDistances) -> float:
    """The candidate threshold where FAR and FRR are closest (the midpoint of a gap, if any)."""
    if not pairs.genuine or not pairs.impostor:
        raise ValueError("calibration needs genuine and impostor pairs")
    if max(pairs.genuine) < min(pairs.impostor):  # separable: every point of the gap has EER 0
        return (max(pairs.genuine) + min(pairs.impostor)) / 2
    genuine, impostor = np.sort(pairs.genuine), np.sort(pairs.impostor)
    candidates = np.union1d(genuine, impostor)
    far = np.searchsorted(impostor, candidates, side="right") / impostor.size
    frr = 1 - np.searchsorted(genuine, candidates, side="right") / genuine.size
    return float(candidates[int(np.argmin(np.abs(far - frr)))])
