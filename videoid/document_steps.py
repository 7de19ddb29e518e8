"""The document steps of a live session: the photo page, then the side with the MRZ if it is another.

``front``: the photo page; the MRZ is read (TD3 passports have it on this page) and the portrait
cut out. OCR costs 1.5-2.5 s, so it runs in a worker thread on the newest frame that shows a
document outline, one read at a time: a few chosen frames, never every frame. ``back``: for
identity cards (TD1), the side with the MRZ.

Either way, the fields without a check digit (names, issuing state, nationality, sex) do not rest
on one read: once a read's check digits validate, further frames of the same side are read, at
most :data:`CONFIRM_READS` more, until every character of those fields is confirmed by a vote over
the reads (:mod:`videoid.document.consensus`). When the step's time or the reads run out first,
the vote stands and the step's event and the report say what was not confirmed, for the agent who
reviews it.

The live face is compared with the portrait as soon as the front is read, so that the decision
needs no heavy work after the last capture.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from idp.errors import DocumentError, FaceError, MRZNotFoundError
from videoid import faces, tilt
from videoid.capture import Capture
from videoid.document.consensus import Combined, combine
from videoid.document.mrz import MRZFormat
from videoid.document.portrait import Portrait, find_portrait
from videoid.document.reader import DocumentReading, read_document
from videoid.faces import Embedding, Image
from videoid.frames import Still

FRONT_RETRIES = 2  # reads of a photo page without an MRZ before it counts as a card's front
# OCR reads after the first whose check digits validate, to confirm the fields without a check
# digit: one when two reads agree (the usual case), two or three when a read has misread them
CONFIRM_READS = 4

NextFrame = Callable[[float], Awaitable[Image | None]]


@dataclass(slots=True, frozen=True)
class Passed:
    """A document step that passed, with what its event says."""

    details: dict[str, Any]


@dataclass(slots=True, frozen=True)
class _FrontResult:
    reading: DocumentReading | None
    portrait: Portrait | None
    seconds: float


class DocumentSteps:
    """The reads of one session's document, and the steps that take them.

    ``next_frame(deadline)`` gives the newest camera frame, or None once ``deadline`` (on
    ``clock``) has passed. Each step returns :class:`Passed` or the message it failed with.
    """

    def __init__(
        self,
        capture: Capture,
        *,
        next_frame: NextFrame,
        today: date,
        executor: Executor | None,
        clock: Callable[[], float],
        step_timeout: float,
    ) -> None:
        self.capture = capture
        self.today = today
        self.step_timeout = step_timeout
        self._next_frame = next_frame
        self._executor = executor
        self._clock = clock
        self.needs_back = False  # the MRZ is on the other side (an identity card)
        self.quad_seen = False  # the last frame looked at showed a document outline
        self.confirming = False  # a valid read is in; further reads confirm its unchecked fields
        self.reads: list[tuple[DocumentReading, Image]] = []  # every MRZ read, with its frame
        self.still_embeddings: list[tuple[Still, Embedding]] = []  # the live face, for the portrait

    async def front(self) -> Passed | str:
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
                self.reads.append((reading, frame))
            if reading is not None and reading.mrz.format is MRZFormat.TD1 and portrait is None:
                self.needs_back = True  # the back came first: keep it, still ask for the photo side
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
                self.needs_back = False
                self._take(await self._confirm(deadline, reading.mrz.format))
                confirmation = self._confirmation()
            else:
                self.needs_back = True
                self._take(self._combined(MRZFormat.TD1))  # a back seen first, if any
            await loop.run_in_executor(self._executor, self._match_face)
            return Passed(
                {
                    "mrz": None if reading is None else str(reading.mrz.format),
                    "portrait": True,
                    "ocr_seconds": round(result.seconds, 2),
                    **confirmation,
                }
            )

    async def back(self) -> Passed | str:
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
        return Passed({"mrz": str(mrz.format), "valid": mrz.valid, **self._confirmation()})

    def in_view(self, frame: Image) -> tilt.Quad | None:
        """The document outline in ``frame``, if any (remembered for the page's status)."""
        quad = tilt.find_quad(faces.to_gray(frame))
        self.quad_seen = quad is not None
        return quad

    def _read_front(self, frame: Image) -> _FrontResult:
        started = time.perf_counter()
        if self.in_view(frame) is None:
            return _FrontResult(None, None, time.perf_counter() - started)
        self.capture.ocr_reads += 1
        try:
            reading = read_document(frame, today=self.today)
        except MRZNotFoundError:
            return _FrontResult(None, find_portrait(frame), time.perf_counter() - started)
        except DocumentError:
            return _FrontResult(None, None, time.perf_counter() - started)
        return _FrontResult(reading, reading.portrait, time.perf_counter() - started)

    def _match_face(self) -> None:
        portrait = self.capture.portrait
        if portrait is None or not self.still_embeddings:
            return
        found = faces.detect_faces(portrait.image, upsample=1)
        if not found:
            return
        try:
            reference = faces.embed(portrait.image, found[0])
        except FaceError:
            return
        distances = [(faces.distance(reference, e), s) for s, e in self.still_embeddings]
        distance, still = min(distances, key=lambda d: d[0])
        self.capture.face_distance, self.capture.still = distance, still

    async def _confirm(self, deadline: float, fmt: MRZFormat) -> Combined:
        """Read further frames until the fields without a check digit are confirmed, within the
        step's ``deadline`` and :data:`CONFIRM_READS` more OCR reads; the vote so far otherwise."""
        budget = self.capture.ocr_reads + CONFIRM_READS
        combined = self._combined(fmt)
        assert combined is not None  # the caller has a read of this format
        self.confirming = True  # the page asks the person to hold the document a moment longer
        try:
            while not combined.confirmed and self.capture.ocr_reads < budget:
                if not await self._read_next(deadline):
                    break
                combined = self._combined(fmt) or combined
        finally:
            self.confirming = False
        return combined

    async def _read_next(self, deadline: float) -> bool:
        """Read the MRZ on the next frame (kept in ``reads`` when read); False when time is up."""
        frame = await self._next_frame(deadline)
        if frame is None:
            return False
        loop = asyncio.get_running_loop()
        reading = await loop.run_in_executor(self._executor, functools.partial(self._read_mrz, frame))
        if reading is not None:
            self.reads.append((reading, frame))
        return True

    def _read_mrz(self, frame: Image) -> DocumentReading | None:
        if self.in_view(frame) is None:
            return None
        self.capture.ocr_reads += 1
        try:  # the portrait is the front's, found already (a card's back has none)
            return read_document(frame, today=self.today, portrait=False)
        except DocumentError:
            return None

    def _combined(self, fmt: MRZFormat | None = None) -> Combined | None:
        """The reads so far (of ``fmt`` only, when given) combined; None without any."""
        chosen = [i for i, (r, _) in enumerate(self.reads) if fmt is None or r.mrz.format is fmt]
        combined = combine([self.reads[i][0] for i in chosen])
        if combined is not None:
            combined = replace(combined, anchor=chosen[combined.anchor])
        return combined

    def _take(self, combined: Combined | None, *, back: bool = False) -> None:
        self.capture.reading = None if combined is None else combined.reading
        self.capture.consensus = combined
        if back and combined is not None:
            self.capture.back_frame = self.reads[combined.anchor][1]

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
