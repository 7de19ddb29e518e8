"""Frames handed from one consumer of a received track to another, each with its own copy.

:class:`aiortc.contrib.media.MediaRelay` gives every consumer the same frame object, and an
encoder rebases a frame's time in place (PyAV): the recorder encodes on the event loop while a
viewer's encoder runs in a thread, so a consumer that encodes gets copies (:class:`OwnFrames`).
"""

from __future__ import annotations

import asyncio
import math
from fractions import Fraction

from aiortc import MediaStreamTrack
from av import AudioFrame, VideoFrame
from av.frame import Frame


def own_copy(frame: Frame) -> Frame:
    """A new frame with the pixels or samples and the time of ``frame``."""
    if isinstance(frame, VideoFrame):
        if frame.format.name != "yuv420p":
            return frame.reformat(format="yuv420p")  # a new frame already
        copy: Frame = VideoFrame.from_ndarray(frame.to_ndarray(), format="yuv420p")
    elif isinstance(frame, AudioFrame):
        audio = AudioFrame.from_ndarray(
            frame.to_ndarray(), format=frame.format.name, layout=frame.layout.name
        )
        audio.sample_rate = frame.sample_rate
        copy = audio
    else:
        raise TypeError(f"not a video or audio frame: {type(frame).__name__}")
    copy.pts, copy.time_base = frame.pts, frame.time_base
    return copy


class _Wrapper(MediaStreamTrack):
    """A track that hands on another's frames; stopping it stops the other."""

    def __init__(self, source: MediaStreamTrack) -> None:
        super().__init__()
        self.kind = source.kind
        self._source = source

    def stop(self) -> None:
        super().stop()
        self._source.stop()


class OwnFrames(_Wrapper):
    """A relay consumer that hands on copies. The relay gives every consumer the same frame object,
    and an encoder rebases a frame's time in place (PyAV): the recorder encodes on the event loop
    while a viewer's encoder runs in a thread, so on a shared frame each can see the other's
    rebased timestamp (the likely cause of a CI run in which libvpx refused a frame of the agent's
    view: ``avcodec_send_frame()``, invalid data)."""

    async def recv(self) -> Frame:
        frame = await self._source.recv()
        if not isinstance(frame, Frame):
            raise TypeError("a relay hands on decoded frames")
        return own_copy(frame)


#: aiortc's recorder encodes video at this time base (``add_stream(..., rate=30)``).
RECORDER_VIDEO_TICK = Fraction(1, 30)


class Monotonic(_Wrapper):
    """Hands on only the frames whose time is later than that of the last one handed on, in
    whole ``tick``s when one is given (the time base the encoder rounds the frame's time to).

    A muxer takes no packet at or before the time of the one before. aiortc's recorder encodes
    every frame it is handed, and one frame with the time of the frame before it made the H.264
    encoder emit a repeated decoding time: the file could then not be finished when the session
    ended, and the whole recording was lost (seen in a browser test; aiortc issue 546 shows the
    same). Two frames can also differ on the RTP clock (1/90000 s) and still fall on one tick of
    the recorder's 1/30 s. A frame left out would have been shown at the same instant as the one
    before it."""

    def __init__(self, source: MediaStreamTrack, *, tick: Fraction | None = None) -> None:
        super().__init__(source)
        self._tick = tick
        self._last: Fraction | int | None = None
        self.left_out = 0

    async def recv(self) -> Frame:
        while True:
            frame = await self._source.recv()
            if not isinstance(frame, Frame) or frame.pts is None or frame.time_base is None:
                return frame  # type: ignore[return-value]  # nothing to order by: the encoder stamps it
            at: Fraction | int = frame.pts * frame.time_base
            if self._tick is not None:  # rounded to the nearest tick, halves up, as FFmpeg rescales
                at = math.floor(at / self._tick + Fraction(1, 2))
            if self._last is None or at > self._last:
                self._last = at
                return frame
            self.left_out += 1


class VideoFirst:
    """The order in which the recorder's tracks begin. aiortc's recorder writes the file's
    header with the first frame any track hands it, and sizes the video stream from the video's
    first frame: sound that comes first (the agent's voice is there at once; the person's
    microphone often before the first picture is decoded) leaves the video stream unsized, and
    the file then holds sound only. :meth:`video` announces the first picture; :meth:`sound`
    holds the sound back until then (its frames wait in the relay, none is lost). Both hand on
    their frames in strictly increasing time (:class:`Monotonic`), as the file needs them."""

    def __init__(self) -> None:
        self._seen = asyncio.Event()

    def video(self, source: MediaStreamTrack) -> MediaStreamTrack:
        return _Announcing(Monotonic(source, tick=RECORDER_VIDEO_TICK), self._seen)

    def sound(self, source: MediaStreamTrack) -> MediaStreamTrack:
        return _Waiting(Monotonic(source), self._seen)


class _Announcing(_Wrapper):
    def __init__(self, source: MediaStreamTrack, seen: asyncio.Event) -> None:
        super().__init__(source)
        self._seen = seen

    async def recv(self) -> Frame:
        frame = await self._source.recv()
        self._seen.set()  # the recorder sizes the stream and encodes it before it awaits again
        return frame  # type: ignore[return-value]


class _Waiting(_Wrapper):
    def __init__(self, source: MediaStreamTrack, seen: asyncio.Event) -> None:
        super().__init__(source)
        self._seen = seen

    async def recv(self) -> Frame:
        if not self._seen.is_set():
            await self._seen.wait()
            await asyncio.sleep(0)  # the video's recorder task runs on to its encoder first
        return await self._source.recv()  # type: ignore[return-value]
