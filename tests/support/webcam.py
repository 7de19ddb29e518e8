"""A synthetic webcam for video identification tests: the face clip, then a document, then a tilt.

The person in front of it is :class:`Performer`: it shows what the session's current step asks
for (like a person following the page's instructions): the speaker shot of the test clip while
the face and liveness steps run, then a rendered passport whose portrait is a still of the same
speaker (with a valid MRZ), then the same passport tilted back and forth. ``photo`` mode is the
attack: one still of the speaker, repeated. :class:`Led` is a person an agent leads: they sit down
and show their document when told.

:class:`SyntheticCamera` is an aiortc ``VideoStreamTrack`` (30 fps) over a performer, and
:class:`SyntheticMicrophone` their voice;
:func:`write_y4m` writes a fixed sequence for Chromium's fake capture device (YUV4MPEG2, C420).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import av
import cv2
import numpy as np
from aiortc import AudioStreamTrack, VideoStreamTrack

from tests.support.documents import Holder, render
from videoid import faces
from videoid.document.mrz import MRZFormat

TESTDATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "testdata"
CLIP = TESTDATA / "video" / "short_hamilton_clip.mp4"
SPEAKER = range(85, 213)  # the shot where the speaker faces the camera and turns his head
# The most typical frontal frame of that shot: its descriptor is at most 0.53 from every other
# frontal frame of the shot (all of them are within 0.56 of each other). It is the document's
# photo, and the person looks straight at the camera like this first, as the page asks.
PORTRAIT_FRAME = 149
HOLD = 60  # frames (2 s at 30 fps) of looking straight at the camera before moving
WIDTH, HEIGHT = 640, 480
BACKGROUND = 40  # a dark desk: the document's outline stands out


def to_webcam(frame: np.ndarray) -> np.ndarray:
    """640x360 padded to 640x480, the size a webcam sends."""
    return cv2.copyMakeBorder(frame, 60, 60, 0, 0, cv2.BORDER_CONSTANT)


def speaker_frames() -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(CLIP))
    frames, index = [], 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if index in SPEAKER:
            frames.append(to_webcam(frame))
        index += 1
    capture.release()
    if len(frames) != len(SPEAKER):
        raise RuntimeError(f"expected {len(SPEAKER)} frames of the speaker shot in {CLIP}, got {len(frames)}")
    return frames


def portrait_file(directory: Path) -> Path:
    """A still of the speaker cropped like a passport photo (35:45, the face filling most of it),
    written as JPEG: the document's photo."""
    capture = cv2.VideoCapture(str(CLIP))
    capture.set(cv2.CAP_PROP_POS_FRAMES, PORTRAIT_FRAME)
    ok, frame = capture.read()
    capture.release()
    if not ok:
        raise RuntimeError(f"cannot read frame {PORTRAIT_FRAME} of {CLIP}")
    box = faces.single_face(frame).box
    width = box.width * 2.0
    height = width * 45 / 35
    cx, cy = (box.left + box.right) / 2, (box.top + box.bottom) / 2 - 0.05 * height
    top, left = max(0, int(cy - height / 2)), max(0, int(cx - width / 2))
    crop = frame[top : int(cy + height / 2), left : int(cx + width / 2)]
    path = directory / "portrait.jpg"
    cv2.imwrite(str(path), crop)
    return path


def document_frame(document: np.ndarray, *, tilt: float = 0.0) -> np.ndarray:
    """The document held up to the camera on a dark background; ``tilt`` in -1..1 turns it about
    its vertical axis (one side foreshortened)."""
    canvas = np.full((HEIGHT, WIDTH, 3), BACKGROUND, np.uint8)
    h, w = document.shape[:2]
    scale = min((WIDTH - 40) / w, (HEIGHT - 40) / h)
    dw, dh = w * scale, h * scale
    x0, y0 = (WIDTH - dw) / 2, (HEIGHT - dh) / 2
    shrink = 0.35 * dh * abs(tilt) / 2
    left = shrink if tilt < 0 else 0.0
    right = shrink if tilt > 0 else 0.0
    corners = np.array(
        [[x0, y0 + left], [x0 + dw, y0 + right], [x0 + dw, y0 + dh - right], [x0, y0 + dh - left]],
        dtype=np.float32,
    )
    source = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(source, corners)
    warped = cv2.warpPerspective(document, matrix, (WIDTH, HEIGHT), flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.full((h, w), 255, np.uint8), matrix, (WIDTH, HEIGHT)) > 127
    canvas[mask] = warped[mask]
    return canvas


def held_still(document: np.ndarray, *, seed: int) -> np.ndarray:
    """One frame of ``document`` held still in front of the camera, with the sensor's noise."""
    frame = document_frame(document).astype(np.float64)
    noise = np.random.default_rng(seed).normal(0, 2, frame.shape)
    return np.clip(frame + noise, 0, 255).astype(np.uint8)


def card_sides(card: np.ndarray, holder: Holder) -> tuple[np.ndarray, np.ndarray]:
    """The front of an identity card (photo and printed data, no MRZ) and its back (the MRZ, no
    photo), from a synthetic card that has both on one side."""
    mm = card.shape[1] / 85.6
    band = card.shape[0] - round(19 * mm)  # ICAO 9303 Part 5: the TD1 MRZ is the bottom 17.78 mm
    front = card.copy()
    front[band:, :] = card[band - round(2 * mm) : band - round(mm), :].mean(axis=(0, 1)).astype(np.uint8)
    back = render(MRZFormat.TD1, replace(holder, portrait=None)).image
    return front, back


@dataclass
class Performer:
    """What the person shows; ``mode`` is face, document, tilt or photo."""

    directory: Path
    holder: Holder | None = None
    fmt: MRZFormat = MRZFormat.TD3
    mode: str = "face"
    seed: int = 7
    faces: list[np.ndarray] = field(init=False)
    document: np.ndarray = field(init=False)
    # an identity card (TD1) has two sides: the photo on the front, the MRZ on the back
    back: np.ndarray | None = field(init=False, default=None)
    _i: int = 0

    def __post_init__(self) -> None:
        self.faces = speaker_frames()
        holder = self.holder or Holder(
            surname="NOVAK", given_names="ANA", portrait=portrait_file(self.directory)
        )
        self.document = render(self.fmt, holder).image
        if self.fmt is MRZFormat.TD1:
            self.document, self.back = card_sides(self.document, holder)
        self._rng = np.random.default_rng(self.seed)

    def next_frame(self) -> np.ndarray:
        self._i += 1
        if self.mode == "face":
            if self._i <= HOLD:  # still, but a live camera: sensor noise
                return self._noisy(self.faces[PORTRAIT_FRAME - SPEAKER.start])
            return self.faces[(self._i - HOLD) % len(self.faces)]
        if self.mode == "photo":
            return self.faces[PORTRAIT_FRAME - SPEAKER.start]
        tilt = math.sin(self._i / 6.0) if self.mode == "tilt" else 0.0
        shown = self.back if self.mode == "back" and self.back is not None else self.document
        frame = document_frame(shown, tilt=tilt)
        # a hand holding it: a pixel of shake
        frame = np.roll(frame, (int(self._rng.integers(-1, 2)), int(self._rng.integers(-1, 2))), axis=(0, 1))
        return self._noisy(frame)

    def _noisy(self, frame: np.ndarray) -> np.ndarray:
        return np.clip(frame + self._rng.normal(0, 2, frame.shape), 0, 255).astype(np.uint8)

    def follow(self, status: dict[str, object]) -> None:
        """Do what the page asks: the step in the session's status."""
        step = status.get("step")
        if self.mode == "photo":
            return
        if step in ("face", "liveness"):
            self.mode = "face"
        elif step == "document_front":
            self.mode = "document"
        elif step == "document_back":
            self.mode = "back" if self.back is not None else "document"
        elif step == "tilt":
            self.mode = "tilt"


@dataclass
class Led(Performer):
    """A person the agent leads: away from the camera until ``present``, then face and liveness;
    at the document steps an empty desk until ``document_shown``."""

    present: bool = False
    document_shown: bool = False
    _desks: list[np.ndarray] = field(default_factory=list, repr=False)
    _desk_shown: int = 0

    def next_frame(self) -> np.ndarray:
        if not self.present:
            self._i = 0  # the look into the camera starts when they sit down
            return self._desk()
        if self.mode != "face" and not self.document_shown:
            return self._desk()
        return super().next_frame()

    def _desk(self) -> np.ndarray:
        # a few noisy frames in turn: never two alike in a row, without making noise 30 times a second
        if not self._desks:
            self._desks = [self._noisy(np.full((HEIGHT, WIDTH, 3), BACKGROUND, np.uint8)) for _ in range(5)]
        self._desk_shown += 1
        return self._desks[self._desk_shown % len(self._desks)]


class SyntheticMicrophone(AudioStreamTrack):
    """A person speaking into the microphone: a 440 Hz tone at -23 dBFS (or what ``frequency`` and
    ``amplitude`` say), paced in real time like aiortc's silent ``AudioStreamTrack`` (20 ms frames)."""

    def __init__(self, *, amplitude: float = 0.1, frequency: float = 440.0) -> None:
        super().__init__()
        self.amplitude = amplitude
        self.frequency = frequency
        self.sent = 0
        self._samples = 0

    async def recv(self) -> av.AudioFrame:
        paced = await super().recv()  # silence with the right pts and time base, on time
        n, rate = paced.samples, paced.sample_rate
        t = (np.arange(n) + self._samples) / rate
        self._samples += n
        tone = (
            (self.amplitude * 32767 * np.sin(2 * np.pi * self.frequency * t)).astype(np.int16).reshape(1, -1)
        )
        frame = av.AudioFrame.from_ndarray(tone, format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, paced.pts, paced.time_base
        self.sent += 1
        return frame


def pitch_amplitude(frame: av.AudioFrame, hz: float) -> float:
    """The amplitude (full scale 1.0) of the ``hz`` component of a frame's first channel."""
    samples = frame.to_ndarray()
    channel = samples[0] if frame.format.is_planar else samples.reshape(-1)[:: len(frame.layout.channels)]
    x = channel.astype(np.float64)
    if frame.format.name.startswith("s16"):
        x /= 32768.0
    n = np.arange(x.size)
    return float(2 * abs(np.dot(x, np.exp(-2j * np.pi * hz * n / frame.sample_rate))) / max(x.size, 1))


class SyntheticCamera(VideoStreamTrack):
    """An aiortc video track that plays a performer at 30 fps."""

    def __init__(self, performer: Performer) -> None:
        super().__init__()
        self.performer = performer
        self.sent = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame.from_ndarray(self.performer.next_frame(), format="bgr24")
        frame.pts, frame.time_base = pts, time_base
        self.sent += 1
        return frame


def y4m_sequence(performer: Performer, *, fps: int) -> Iterator[np.ndarray]:
    """A fixed script for a file camera, which Chromium loops: looking straight at the camera
    (1.5 s, under the 2 s after which a face that does not move at all is a still image), the
    speaker shot twice, the document held still (6 s), then tilted (3 s)."""
    step = max(1, round(30 / fps))
    still = performer.faces[PORTRAIT_FRAME - SPEAKER.start]
    for _ in range(fps * 3 // 2):
        yield performer._noisy(still)
    yield from performer.faces[::step]
    yield from performer.faces[::step]
    performer.mode = "document"
    for _ in range(fps * 6):
        yield performer.next_frame()
    performer.mode = "tilt"
    for _ in range(fps * 3):
        yield performer.next_frame()


def write_y4m(path: Path, frames: Iterator[np.ndarray], *, fps: int) -> int:
    """YUV4MPEG2 with 4:2:0 chroma (header ``C420``), what Chromium's file capture reads."""
    count = 0
    with path.open("wb") as fh:
        fh.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F{fps}:1 Ip A1:1 C420\n".encode())
        for frame in frames:
            fh.write(b"FRAME\n")
            fh.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
            count += 1
    return count
