"""Frames handed from one consumer of a received track to another, each with its own copy.

:class:`aiortc.contrib.media.MediaRelay` gives every consumer the same frame object, and an
encoder rebases a frame's time in place (PyAV): the recorder encodes on the event loop while a
viewer's encoder runs in a thread, so a consumer that encodes gets copies (:class:`OwnFrames`).
"""

from __future__ import annotations

import asyncio

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


class VideoFirst:
    """The order in which the recorder's tracks begin. aiortc's recorder writes the file's
    header with the first frame any track hands it, and sizes the video stream from the video's
    first frame: sound that comes first (the agent's voice is there at once; the person's
    microphone often before the first picture is decoded) leaves the video stream unsized, and
    the file then holds sound only. :meth:`video` announces the first picture; :meth:`sound`
    holds the sound back until then (its frames wait in the relay, none is lost)."""

    def __init__(self) -> None:
        self._seen = asyncio.Event()

    def video(self, source: MediaStreamTrack) -> MediaStreamTrack:
        return _Announcing(source, self._seen)

    def sound(self, source: MediaStreamTrack) -> MediaStreamTrack:
        return _Waiting(source, self._seen)


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
