"""The frame pipeline of a live session: newest frame first, analysis off the event loop.

A WebRTC track (aiortc) decodes frames on the event loop and calls :meth:`FramePipeline.push`
with each one (a BGR array, typically 640x480). Frames go through a queue of one
(:class:`LatestFrame`): a frame still waiting when the next arrives is replaced and counted as
dropped, so analysis never falls behind the camera. One worker per session takes the newest
frame and analyses it in a thread (:class:`FrameAnalyser`: face tracking and 68 landmarks on
every analysed frame, a 128-d descriptor only on a few chosen frames), then feeds the
observation to the session's :class:`videoid.liveness.LivenessSession`. It keeps the best face
stills (sharp, frontal, eyes open) for the evidence and the document match.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field

import cv2
import numpy as np

from videoid import faces, landmarks
from videoid.faces import Box, Embedding, Face, Image
from videoid.liveness import Decision, LivenessSession, Observation, Verdict
from videoid.tracking import FaceTracker

# A frame is good for a descriptor and a still when the face is frontal, eyes open and large
# enough: descriptors of turned or tiny faces drift by more than the match threshold from the
# same person's frontal ones (measured on the test clip: 0.60-0.64 against 0.56).
GOOD_YAW = 15.0  # degrees
OPEN_EYES = 0.18  # eye aspect ratio; some open eyes measure under 0.2 (biden/2.jpg: 0.199)
GOOD_FACE_PX = 80
STILL_GAP = 1.0  # seconds: one still kept per moment this long


class PipelineClosedError(Exception):
    """The session's pipeline was closed; no more frames will come."""


class LatestFrame:
    """An asyncio queue of one: :meth:`put` replaces a waiting frame and counts it as dropped.

    Used from the event loop's thread only (where aiortc delivers frames).
    """

    def __init__(self) -> None:
        self._item: tuple[Image, float] | None = None
        self._ready = asyncio.Event()
        self._closed = False
        self.received = 0
        self.dropped = 0

    def put(self, frame: Image, t: float) -> None:
        if self._closed:
            raise PipelineClosedError("the pipeline is closed")
        self.received += 1
        if self._item is not None:
            self.dropped += 1
        self._item = (frame, t)
        self._ready.set()

    async def get(self) -> tuple[Image, float]:
        while self._item is None:
            if self._closed:
                raise PipelineClosedError("the pipeline is closed")
            self._ready.clear()
            await self._ready.wait()
        item, self._item = self._item, None
        return item

    def close(self) -> None:
        self._closed = True
        self._ready.set()


@dataclass(slots=True, frozen=True, eq=False)
class Still:
    """A face still kept for the evidence: the frame, the face, and how good it is."""

    t: float
    frame: Image
    face: Face
    sharpness: float  # variance of the Laplacian over the face box
    yaw: float | None
    ear: float

    @property
    def quality(self) -> float:
        return self.sharpness * max(0.0, 1 - abs(self.yaw or 0.0) / 45)


@dataclass(slots=True, frozen=True, eq=False)
class FrameAnalysis:
    observation: Observation
    face: Face | None
    faces_in_frame: int
    sharpness: float
    seconds: float  # analysis time of this frame


def sharpness(gray: Image, face: Face) -> float:
    """Variance of the Laplacian over the face box (Pech-Pacheco et al. 2000): blur scores low."""
    b = face.box
    region = gray[max(0, b.top) : max(0, b.bottom), max(0, b.left) : max(0, b.right)]
    if region.size == 0:
        return 0.0
    return float(cv2.Laplacian(region, cv2.CV_64F).var())


def _centre_gap(a: Box, b: Box) -> float:
    dx, dy = (a.left + a.right - b.left - b.right) / 2, (a.top + a.bottom - b.top - b.bottom) / 2
    return float(np.hypot(dx, dy))


def frame_digest(frame: Image) -> bytes:
    """A digest of the frame's pixels (every other row and column): equal for identical frames."""
    return hashlib.blake2b(np.ascontiguousarray(frame[::2, ::2]).data, digest_size=16).digest()


class FrameAnalyser:
    """Analyses one session's frames, one at a time (run it in a worker thread)."""

    def __init__(self, *, keep_stills: int = 5, embed_every: float = 2.0) -> None:
        self.tracker = FaceTracker()
        self.keep_stills = keep_stills
        self.embed_every = embed_every
        self.stills: list[Still] = []
        self.embeddings = 0
        self._last_embedding_t: float | None = None
        self._last_box: Box | None = None
        self._fresh = True  # a face not yet checked against the session's earlier descriptors

    def analyse(self, frame: Image, t: float, *, want_embedding: bool) -> FrameAnalysis:
        started = time.perf_counter()
        frame = faces.checked_image(frame)
        digest = frame_digest(frame)
        gray = faces.to_gray(frame)
        found = self.tracker.find(gray)
        if found.face is None:
            self._fresh = True
            observation = Observation(t=t, face=False, frame_digest=digest)
            return FrameAnalysis(observation, None, 0, 0.0, time.perf_counter() - started)
        face = found.face
        last = self._last_box
        if last is not None and (
            _centre_gap(face.box, last) > face.box.width or not 2 / 3 < face.box.width / last.width < 3 / 2
        ):
            self._fresh = True  # the face jumped or changed size between frames: maybe not the same one
        self._last_box = face.box
        height, width = gray.shape[:2]
        yaw = landmarks.head_yaw(face.landmarks, width, height)
        ear = landmarks.eye_aspect_ratio(face.landmarks)
        sharp = sharpness(gray, face)
        good = (
            yaw is not None and abs(yaw) <= GOOD_YAW and ear >= OPEN_EYES and face.box.width >= GOOD_FACE_PX
        )
        if good:
            self._keep(Still(t, frame.copy(), face, sharp, yaw, ear))
        due = self._last_embedding_t is None or t - self._last_embedding_t >= self.embed_every
        embedding: Embedding | None = None
        if good and (want_embedding or due or self._fresh):
            embedding = faces.embed(frame, face)
            self.embeddings += 1
            self._last_embedding_t = t
            self._fresh = False
        observation = Observation(
            t=t,
            face=True,
            yaw=yaw,
            ear=ear,
            shape=landmarks.normalised_shape(face.landmarks),
            embedding=embedding,
            frame_digest=digest,
        )
        return FrameAnalysis(observation, face, found.faces_in_frame, sharp, time.perf_counter() - started)

    def _keep(self, still: Still) -> None:
        """Keep the best stills of different moments: each :data:`STILL_GAP` of the session keeps
        its best still, and the best of those moments are kept, so the set spans the session (the
        straight look of the face step as well as the sharpest frames of the head turns)."""
        moment = int(still.t // STILL_GAP)
        same = next((s for s in self.stills if int(s.t // STILL_GAP) == moment), None)
        if same is not None:
            if still.quality <= same.quality:
                return
            self.stills.remove(same)
        elif len(self.stills) >= self.keep_stills:
            weakest = min(self.stills, key=lambda s: s.quality)
            if still.quality <= weakest.quality:
                return
            self.stills.remove(weakest)
        self.stills.append(still)
        self.stills.sort(key=lambda s: s.quality, reverse=True)


@dataclass(slots=True)
class PipelineStats:
    analysed: int = 0
    analysis_seconds: float = 0.0
    decided_at: float | None = None  # perf_counter when the decision became final
    per_frame: list[float] = field(default_factory=list)


class FramePipeline:
    """One session's queue of one, analysis worker and liveness state machine.

    ``push`` from the event loop; ``await run()`` until the liveness decision is final (or the
    pipeline is closed). ``executor`` runs the analysis (default: the loop's thread pool).
    """

    def __init__(
        self,
        liveness: LivenessSession,
        *,
        executor: Executor | None = None,
        analyser: FrameAnalyser | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.liveness = liveness
        self.analyser = analyser or FrameAnalyser()
        self.queue = LatestFrame()
        self.stats = PipelineStats()
        self._executor = executor
        self._clock = clock

    def push(self, frame: Image, t: float | None = None) -> None:
        """Hand over a decoded frame (never blocks; replaces a frame still waiting)."""
        self.queue.put(frame, self._clock() if t is None else t)

    def close(self) -> None:
        self.queue.close()

    @property
    def stills(self) -> list[Still]:
        """The best stills of the face, from the liveness anchor on."""
        return list(self.analyser.stills)

    def _drop_stills_before_anchor(self) -> None:
        """Stills from before the liveness anchor may show another face; dropped as soon as the
        anchor is known or moves, they also leave their places to the frames after it."""
        anchor = self.liveness.anchored_at
        if anchor is not None and any(s.t < anchor for s in self.analyser.stills):
            self.analyser.stills = [s for s in self.analyser.stills if s.t >= anchor]

    async def run(self) -> Decision:
        loop = asyncio.get_running_loop()
        while self.liveness.decision.verdict is Verdict.IN_PROGRESS:
            try:
                frame, t = await self.queue.get()
            except PipelineClosedError:
                break
            analysis = await loop.run_in_executor(
                self._executor,
                functools.partial(
                    self.analyser.analyse, frame, t, want_embedding=self.liveness.wants_embedding
                ),
            )
            self.stats.analysed += 1
            self.stats.analysis_seconds += analysis.seconds
            self.stats.per_frame.append(analysis.seconds)
            self.liveness.observe(analysis.observation)
            self._drop_stills_before_anchor()
        self.stats.decided_at = time.perf_counter()
        return self.liveness.decision
