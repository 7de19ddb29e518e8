"""What the camera part of a video identification established, step by step."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from videoid.document.consensus import Combined
from videoid.document.portrait import Portrait
from videoid.document.reader import DocumentReading
from videoid.faces import Image
from videoid.frames import Still
from videoid.liveness import Decision


class Step(StrEnum):
    FACE = "face"
    LIVENESS = "liveness"
    DOCUMENT_FRONT = "document_front"
    DOCUMENT_BACK = "document_back"
    TILT = "tilt"
    CAPTURED = "captured"  # the camera's part is done
    FAILED = "failed"
    CLOSED = "closed"  # the connection went away before the end


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
