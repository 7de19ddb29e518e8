"""The live part of one video identification: the guided capture steps over the incoming frames.

Steps, in order (each reported to the page through :meth:`LiveSession.status`):

1. ``face``: a frontal face, good enough for a descriptor, in front of the camera;
2. ``liveness``: the random challenges (:mod:`videoid.liveness`) through the frame pipeline
   (:class:`videoid.frames.FramePipeline`, a queue of one: frames are dropped rather than fall
   behind). A face that leaves the frame restarts the current challenge;
3. ``document_front``: the photo page, its MRZ and portrait, and the live face compared with it;
4. ``document_back``: for identity cards (TD1), the side with the MRZ. Both document steps, and
   the further reads that confirm the fields no check digit covers, are
   :mod:`videoid.document_steps`;
5. ``tilt``: the document turned so that its outline changes perspective (:mod:`videoid.tilt`).

Then the capture is over; the SMS code (the second channel) and the decision are handled by
:mod:`videoid.service`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from datetime import date
from typing import Any

from videoid import faces, tilt
from videoid.capture import Capture, Step
from videoid.document_steps import DocumentSteps, Passed
from videoid.faces import Embedding, Image
from videoid.frames import (
    FrameAnalyser,
    FrameAnalysis,
    FramePipeline,
    LatestFrame,
    PipelineClosedError,
    Still,
)
from videoid.liveness import Challenge, LivenessSession, Policy, Verdict

STEP_TIMEOUT = 60.0  # seconds for each document step
# A WebRTC stream starts at a low bitrate and its quality ramps up over the first second
# (congestion control); descriptors taken from those frames drift from the person's later ones,
# and the first descriptor is the first identity reference. So the first second is not analysed.
WARMUP = 1.0
OnStep = Callable[[str, bool, dict[str, Any]], Awaitable[None]]


class _WatchedAnalyser(FrameAnalyser):
    """Keeps the last analysis for the status (face visible, how many faces)."""

    last: FrameAnalysis | None = None

    def analyse(self, frame: Image, t: float, *, want_embedding: bool) -> FrameAnalysis:
        result = FrameAnalyser.analyse(self, frame, t, want_embedding=want_embedding)
        self.last = result
        return result


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
        self.documents = DocumentSteps(
            self.capture,
            next_frame=self._next_frame,
            today=today,
            executor=executor,
            clock=clock,
            step_timeout=step_timeout,
        )
        self._step = Step.FACE
        self._tilt = tilt.TiltCheck()
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
            "document_seen": self.documents.quad_seen,
            "needs_back": self.documents.needs_back,
            "confirming_document": self.documents.confirming,
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
        self.documents.still_embeddings = await loop.run_in_executor(self._executor, self._embed_stills)
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
        for step in (Step.DOCUMENT_FRONT, Step.DOCUMENT_BACK):
            if step is Step.DOCUMENT_BACK and not self.documents.needs_back:
                continue
            try:
                failed = await self._document_step(step)
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

    async def _document_step(self, step: Step) -> str | None:
        """The front or back of the document (:mod:`videoid.document_steps`): the message it failed
        with, or None when it passed and the session went on to the next step."""
        passed = await (self.documents.front() if step is Step.DOCUMENT_FRONT else self.documents.back())
        if not isinstance(passed, Passed):
            return passed
        back_next = step is Step.DOCUMENT_FRONT and self.documents.needs_back
        following = Step.DOCUMENT_BACK if back_next else Step.TILT
        await self._enter(following, passed_step=str(step), **passed.details)
        return None

    async def _tilt_step(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = self._clock() + self.step_timeout
        while not self._tilt.passed:
            frame = await self._next_frame(deadline)
            if frame is None:
                return
            self._tilt.add(await loop.run_in_executor(self._executor, self.documents.in_view, frame))
