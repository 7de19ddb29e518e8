"""The live part of one video identification: the guided capture steps over the incoming frames.

Steps, in order (each reported to the page through :meth:`LiveSession.status`):

1. ``face``: a frontal face, good enough for a descriptor, in front of the camera;
2. ``liveness``: the random challenges (:mod:`videoid.liveness`) through the frame pipeline
   (:class:`videoid.frames.FramePipeline`, a queue of one: frames are dropped rather than fall
   behind). A face that leaves the frame restarts the current challenge;
3. ``document_front``: the photo page; the MRZ is read (TD3 passports have it on this page) and
   the portrait cut out. OCR costs 1.5-2.5 s, so it runs in a worker thread on the newest frame
   that shows a document outline, one read at a time: a few chosen frames, never every frame;
4. ``document_back``: for identity cards (TD1), the side with the MRZ;

   either way, the fields without a check digit (names, issuing state, nationality, sex) do not
   rest on one read: once a read's check digits validate, further frames of the same side are
   read, at most :data:`CONFIRM_READS` more, until every character of those fields is confirmed
   by a vote over the reads (:mod:`videoid.document.consensus`). When the step's time or the
   reads run out first, the vote stands and the step's event and the report say what was not
   confirmed, for the agent who reviews it;
5. ``tilt``: the document turned so that its outline changes perspective (:mod:`videoid.tilt`).

Then the capture is over; the SMS code (the second channel) and the decision are handled by
:mod:`videoid.service`. The live face is compared with the portrait as soon as the front is read,
so that the decision needs no heavy work after the last capture.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum
from typing import Any

from idp.errors import DocumentError, FaceError, MRZNotFoundError
from videoid import faces, tilt
from videoid.document.consensus import Combined, combine
from videoid.document.mrz import MRZFormat
from videoid.document.portrait import Portrait, find_portrait
from videoid.document.reader import DocumentReading, read_document
from videoid.faces import Embedding, Image
from videoid.frames import (
    FrameAnalyser,
    FrameAnalysis,
    FramePipeline,
    LatestFrame,
    PipelineClosedError,
    Still,
)
from videoid.liveness import Challenge, Decision, LivenessSession, Policy, Verdict

STEP_TIMEOUT = 60.0  # seconds for each document step
# A WebRTC stream starts at a low bitrate and its quality ramps up over the first second
# (congestion control); descriptors taken from those frames drift from the person's later ones,
# and the first descriptor is the first identity reference. So the first second is not analysed.
WARMUP = 1.0
FRONT_RETRIES = 2  # reads of a photo page without an MRZ before it counts as a card's front
# OCR reads after the first whose check digits validate, to confirm the fields without a check
# digit: one when two reads agree (the usual case), two or three when a read has misread them
CONFIRM_READS = 4


class Step(StrEnum):
    FACE = "face"
    LIVENESS = "liveness"
    DOCUMENT_FRONT = "document_front"
    DOCUMENT_BACK = "document_back"
    TILT = "tilt"
    CAPTURED = "captured"  # the camera's part is done
    FAILED = "failed"
    CLOSED = "closed"  # the connection went away before the end


OnStep = Callable[[str, bool, dict[str, Any]], Awaitable[None]]


@dataclass(slots=True)
class Capture:
    """What the camera part established."""

    liveness: Decision | None = None
    reading: DocumentReading | None = None  # the reading whose MRZ counts (front for TD3, back for TD1)
    consensus: Combined | None = None  # how ``reading`` was combined from the reads of its side
    portrait: Portrait | None = None
    front_frame: Image | None = None
    back_frame: Image | None = None
    still: Still | None = None  # the live still closest to the portrait
    face_distance: float | None = None
    tilt_change: float = 0.0
    tilt_passed: bool = False
    failed: Step | None = None
    failure: str | None = None
    captured_at: float | None = None  # perf_counter when the last capture step ended
    ocr_reads: int = 0
    timings: dict[str, float] = field(default_factory=dict)  # seconds each step took, by step


class _WatchedAnalyser(FrameAnalyser):
    """Keeps the last analysis for the status (face visible, how many faces)."""

    last: FrameAnalysis | None = None

    def analyse(self, frame: Image, t: float, *, want_embedding: bool) -> FrameAnalysis:
        result = FrameAnalyser.analyse(self, frame, t, want_embedding=want_embedding)
        self.last = result
        return result


@dataclass(slots=True, frozen=True)
class _FrontResult:
    reading: DocumentReading | None
    portrait: Portrait | None
    seconds: float


class LiveSession:
    """One person's capture; ``push`` frames from the WebRTC track, ``await run()`` for the result."""

    def __init__(
        self,
        challenges: Sequence[Challenge],
        *,
        today: date,
        executor: Executor | None = None,
        clock: Callable[[], float] = time.monotonic,
        liveness_policy: Policy | None = None,
        step_timeout: float = STEP_TIMEOUT,
        on_step: OnStep | None = None,
        warmup: float = WARMUP,
    ) -> None:
        self.today = today
        self.step_timeout = step_timeout
        self._executor = executor
        self._clock = clock
        self._on_step = on_step
        self.analyser = _WatchedAnalyser()
        self.pipeline = FramePipeline(
            LivenessSession(challenges, started_at=clock(), policy=liveness_policy),
            executor=executor,
            analyser=self.analyser,
            clock=clock,
        )
        self.frames = LatestFrame()
        self.capture = Capture()
        self._step = Step.FACE
        self._tilt = tilt.TiltCheck()
        self._still_embeddings: list[tuple[Still, Embedding]] = []
        self._needs_back = False
        self._quad_seen = False
        self._reads: list[tuple[DocumentReading, Image]] = []  # every MRZ read, with its frame
        self._confirming = False  # a valid read is in; further reads confirm its unchecked fields
        self.received = 0
        self.started = clock()
        self.warmup = warmup
        self._first_frame: float | None = None
        self._step_since = self.started

    # -- input ------------------------------------------------------------------------------------

    def push(self, frame: Image) -> None:
        """A decoded BGR frame from the camera (called on the event loop; never blocks)."""
        self.received += 1
        now = self._clock()
        if self._first_frame is None:
            self._first_frame = now
        if now - self._first_frame < self.warmup:
            return
        step = self.step
        try:
            if step in (Step.FACE, Step.LIVENESS):
                self.pipeline.push(frame)
            elif step in (Step.DOCUMENT_FRONT, Step.DOCUMENT_BACK, Step.TILT):
                self.frames.put(frame, self._clock())
        except PipelineClosedError:
            pass  # the session is closing: frames that arrive meanwhile are dropped

    def close(self) -> None:
        self.pipeline.close()
        self.frames.close()

    # -- state ------------------------------------------------------------------------------------

    @property
    def step(self) -> Step:
        if self._step is Step.FACE and self.analyser.embeddings > 0:
            return Step.LIVENESS  # a good frontal face was seen: the challenges begin
        return self._step

    def status(self) -> dict[str, Any]:
        """What the page shows: the step, the challenge, live hints."""
        decision = self.pipeline.liveness.decision
        last = self.analyser.last
        analysed = self.pipeline.stats.analysed
        elapsed = max(self._clock() - self.started, 1e-6)
        return {
            "step": str(self.step),
            "challenge": str(self.pipeline.liveness.current or "") or None,
            "challenges": [str(c) for c in decision.challenges],
            "passed": [str(c) for c in decision.passed],
            "restarts": decision.restarts,
            "face": bool(last is not None and last.face is not None),
            "faces_in_frame": last.faces_in_frame if last is not None else 0,
            "document_seen": self._quad_seen,
            "needs_back": self._needs_back,
            "confirming_document": self._confirming,
            "tilt": round(min(1.0, self._tilt.change / self._tilt.min_change), 2),
            "frames": {"received": self.received, "analysed": analysed, "fps": round(analysed / elapsed, 1)},
            "failure": self.capture.failure,
        }

    async def _enter(self, step: Step, *, passed_step: str | None = None, **details: Any) -> None:
        now = self._clock()
        if passed_step is not None:
            self.capture.timings[passed_step] = now - self._step_since
        self._step_since = now
        if passed_step is not None and self._on_step is not None:
            await self._on_step(passed_step, True, details)
        self._step = step

    async def _fail(self, step: Step, message: str, **details: Any) -> Capture:
        self.capture.failed, self.capture.failure = step, message
        self._step = Step.FAILED
        if self._on_step is not None:
            await self._on_step(str(step), False, {"message": message, **details})
        self.close()
        return self.capture

    # -- the steps --------------------------------------------------------------------------------

    async def run(self) -> Capture:
        """Drive the steps until the capture is done, failed, or the frames stop."""
        decision = await self.pipeline.run()
        self.capture.liveness = decision
        if decision.verdict is Verdict.IN_PROGRESS:
            self._step = Step.CLOSED
            return self.capture
        if decision.verdict is Verdict.FAILED:
            return await self._fail(
                Step.LIVENESS, decision.message, reason=str(decision.reason), restarts=decision.restarts
            )
        loop = asyncio.get_running_loop()
        self._still_embeddings = await loop.run_in_executor(self._executor, self._embed_stills)
        await self._enter(
            Step.DOCUMENT_FRONT,
            passed_step=str(Step.LIVENESS),
            challenges=[str(c) for c in decision.challenges],
            restarts=decision.restarts,
            motion=round(decision.motion, 4),
            identity_distance=None
            if decision.identity_distance is None
            else round(decision.identity_distance, 3),
        )
        for step, reader in ((Step.DOCUMENT_FRONT, self._front), (Step.DOCUMENT_BACK, self._back)):
            if step is Step.DOCUMENT_BACK and not self._needs_back:
                continue
            try:
                failed = await reader()
            except PipelineClosedError:
                self._step = Step.CLOSED
                return self.capture
            if failed is not None:
                return await self._fail(step, failed)
        try:
            await self._tilt_step()
        except PipelineClosedError:
            self._step = Step.CLOSED
            return self.capture
        self.capture.captured_at = time.perf_counter()
        self.capture.tilt_change, self.capture.tilt_passed = self._tilt.change, self._tilt.passed
        if not self._tilt.passed:
            return await self._fail(
                Step.TILT, "the document was not tilted", change=round(self._tilt.change, 3)
            )
        await self._enter(Step.CAPTURED, passed_step=str(Step.TILT), change=round(self._tilt.change, 3))
        self.close()
        return self.capture

    def _embed_stills(self) -> list[tuple[Still, Embedding]]:
        stills = self.pipeline.stills
        self.capture.still = stills[0] if stills else None  # the best, until the portrait picks one
        return [(s, faces.embed(s.frame, s.face)) for s in stills]

    async def _next_frame(self, deadline: float) -> Image | None:
        remaining = deadline - self._clock()
        if remaining <= 0:
            return None
        try:
            frame, _ = await asyncio.wait_for(self.frames.get(), timeout=remaining)
        except TimeoutError:
            return None
        return frame

    async def _front(self) -> str | None:
        loop = asyncio.get_running_loop()
        deadline = self._clock() + self.step_timeout
        portrait_only = 0
        while True:
            frame = await self._next_frame(deadline)
            if frame is None:
                return "no document photo page was read in time"
            result = await loop.run_in_executor(self._executor, functools.partial(self._read_front, frame))
            reading, portrait = result.reading, result.portrait
            if reading is not None:
                self._reads.append((reading, frame))
            if reading is not None and reading.mrz.format is MRZFormat.TD1 and portrait is None:
                self._needs_back = True  # the back came first: keep it, still ask for the photo side
                continue
            if portrait is None:
                continue
            if reading is None and portrait_only < FRONT_RETRIES:
                # a passport's MRZ may just have been unreadable in this frame (blur, the bitrate
                # still ramping up): read again before taking it for an identity card's front
                portrait_only += 1
                continue
            self.capture.portrait, self.capture.front_frame = portrait, frame
            confirmation: dict[str, Any] = {}
            if reading is not None and reading.mrz.valid:
                self._needs_back = False
                self._take(await self._confirm(deadline, reading.mrz.format))
                confirmation = self._confirmation()
            else:
                self._needs_back = True
                self._take(self._combined(MRZFormat.TD1))  # a back seen first, if any
            await loop.run_in_executor(self._executor, self._match_face)
            await self._enter(
                Step.DOCUMENT_BACK if self._needs_back else Step.TILT,
                passed_step=str(Step.DOCUMENT_FRONT),
                mrz=None if reading is None else str(reading.mrz.format),
                portrait=True,
                ocr_seconds=round(result.seconds, 2),
                **confirmation,
            )
            return None

    def _read_front(self, frame: Image) -> _FrontResult:
        started = time.perf_counter()
        if not self._document_in_view(frame):
            return _FrontResult(None, None, time.perf_counter() - started)
        self.capture.ocr_reads += 1
        try:
            reading = read_document(frame, today=self.today)
        except MRZNotFoundError:
            return _FrontResult(None, find_portrait(frame), time.perf_counter() - started)
        except DocumentError:
            return _FrontResult(None, None, time.perf_counter() - started)
        return _FrontResult(reading, reading.portrait, time.perf_counter() - started)

    def _document_in_view(self, frame: Image) -> bool:
        quad = tilt.find_quad(faces.to_gray(frame))
        self._quad_seen = quad is not None
        return self._quad_seen

    def _match_face(self) -> None:
        portrait = self.capture.portrait
        if portrait is None or not self._still_embeddings:
            return
        found = faces.detect_faces(portrait.image, upsample=1)
        if not found:
            return
        try:
            reference = faces.embed(portrait.image, found[0])
        except FaceError:
            return
        distances = [(faces.distance(reference, e), s) for s, e in self._still_embeddings]
        distance, still = min(distances, key=lambda d: d[0])
        self.capture.face_distance, self.capture.still = distance, still

    async def _back(self) -> str | None:
        deadline = self._clock() + self.step_timeout
        combined = self._combined()
        while combined is None or not combined.reading.mrz.valid:
            if not await self._read_next(deadline):
                break
            combined = self._combined()
        if combined is None:
            return "the side of the document with the machine-readable zone was not read in time"
        if combined.reading.mrz.valid:
            combined = await self._confirm(deadline, combined.reading.mrz.format)
        self._take(combined, back=True)
        mrz = combined.reading.mrz
        await self._enter(
            Step.TILT,
            passed_step=str(Step.DOCUMENT_BACK),
            mrz=str(mrz.format),
            valid=mrz.valid,
            **self._confirmation(),
        )
        return None

    async def _confirm(self, deadline: float, fmt: MRZFormat) -> Combined:
        """Read further frames until the fields without a check digit are confirmed, within the
        step's ``deadline`` and :data:`CONFIRM_READS` more OCR reads; the vote so far otherwise."""
        budget = self.capture.ocr_reads + CONFIRM_READS
        combined = self._combined(fmt)
        assert combined is not None  # the caller has a read of this format
        self._confirming = True  # the page asks the person to hold the document a moment longer
        try:
            while not combined.confirmed and self.capture.ocr_reads < budget:
                if not await self._read_next(deadline):
                    break
                combined = self._combined(fmt) or combined
        finally:
            self._confirming = False
        return combined

    async def _read_next(self, deadline: float) -> bool:
        """Read the MRZ on the next frame (kept in ``_reads`` when read); False when time is up."""
        frame = await self._next_frame(deadline)
        if frame is None:
            return False
        loop = asyncio.get_running_loop()
        reading = await loop.run_in_executor(self._executor, functools.partial(self._read_mrz, frame))
        if reading is not None:
            self._reads.append((reading, frame))
        return True

    def _read_mrz(self, frame: Image) -> DocumentReading | None:
        if not self._document_in_view(frame):
            return None
        self.capture.ocr_reads += 1
        try:  # the portrait is the front's, found already (a card's back has none)
            return read_document(frame, today=self.today, portrait=False)
        except DocumentError:
            return None

    def _combined(self, fmt: MRZFormat | None = None) -> Combined | None:
        """The reads so far (of ``fmt`` only, when given) combined; None without any."""
        chosen = [i for i, (r, _) in enumerate(self._reads) if fmt is None or r.mrz.format is fmt]
        combined = combine([self._reads[i][0] for i in chosen])
        if combined is not None:
            combined = replace(combined, anchor=chosen[combined.anchor])
        return combined

    def _take(self, combined: Combined | None, *, back: bool = False) -> None:
        self.capture.reading = None if combined is None else combined.reading
        self.capture.consensus = combined
        if back and combined is not None:
            self.capture.back_frame = self._reads[combined.anchor][1]

    def _confirmation(self) -> dict[str, Any]:
        """What the step's event says about the reads behind the MRZ."""
        combined = self.capture.consensus
        if combined is None:
            return {}
        return {
            "reads": combined.reads,
            "names_confirmed": combined.names_confirmed,
            "unconfirmed_fields": list(combined.unconfirmed),
        }

    async def _tilt_step(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = self._clock() + self.step_timeout
        while not self._tilt.passed:
            frame = await self._next_frame(deadline)
            if frame is None:
                return
            quad = await loop.run_in_executor(self._executor, self._quad_of, frame)
            self._quad_seen = quad is not None
            self._tilt.add(quad)

    @staticmethod
    def _quad_of(frame: Image) -> tilt.Quad | None:
        return tilt.find_quad(faces.to_gray(frame))
