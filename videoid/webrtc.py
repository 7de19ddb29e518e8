"""The server's end of the WebRTC connection (aiortc): receive the camera, record it, hand frames on.

Signalling is one offer/answer exchange over HTTPS (no trickle ICE: aiortc gathers its candidates
before the answer is returned, and the page waits for its own gathering before sending the
offer). The ICE servers (STUN/TURN) come from ``IDP_VIDEOID_ICE_SERVERS``; with none configured
only host candidates are used (aiortc would otherwise fall back to a public STUN server, which
the IdP must not contact unasked).

The received video track is split (:class:`aiortc.contrib.media.MediaRelay`): one consumer
converts each frame to a BGR array and calls ``on_frame`` (the session's queue of one drops what
analysis cannot take); the other, while consent holds, is aiortc's ``MediaRecorder`` writing an
MP4 file. :meth:`Receiver.close` stops both and returns the recording's SHA-256. A further
consumer, :meth:`Receiver.subscribe`, is the agent's live view of an agent-led session
(:mod:`videoid.live_view`).

The person's microphone, when the page sends it and the session wants sound (``sound``: an agent
listens, live or to the recording; otherwise the answer declines the audio, which is then neither
received nor recorded), is split the same way: into the recording (the person reads out their
document number, and the agent who reviews the recording hears it), to the agent watching live
(:meth:`Receiver.subscribe_audio`), and to a listener that keeps :class:`Sound` (whether sound
arrives, and when a voice was last heard). The analysis uses none of it.

In an agent-led session the person also hears the agent: the answer sends them a :class:`Voice`
on the audio section their page offered, silence until an agent watching live talks into their
microphone (:meth:`Receiver.talk`, from :mod:`videoid.live_view`). The recording then keeps the
conversation: the person's sound with the agent's voice mixed in (:class:`Conversation`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import hashlib
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRecorder, MediaRelay
from aiortc.mediastreams import MediaStreamError
from av import AudioFifo, AudioFrame, AudioResampler, VideoFrame
from av.frame import Frame

from idp.errors import VideoIdError
from videoid.faces import Image

log = logging.getLogger("videoid.webrtc")
MAX_SDP = 64 * 1024


class SignallingError(VideoIdError):
    """The offer could not be used (not SDP, no video, already answered)."""

    def __init__(self, message: str) -> None:
        super().__init__("invalid_offer", message)


def check_offer(sdp: object, kind: object) -> str:
    """The offer's SDP if it is one with video (a :class:`SignallingError` saying why not)."""
    if kind != "offer" or not isinstance(sdp, str) or not sdp.startswith("v=0") or len(sdp) > MAX_SDP:
        raise SignallingError("expected an SDP offer (type 'offer', sdp starting with 'v=0')")
    if "m=video" not in sdp:
        raise SignallingError("the offer has no video")
    return sdp


def unusable(exc: Exception) -> str:
    """What to say about an offer that aiortc could not apply."""
    return f"the offer could not be used: {type(exc).__name__} {exc}".rstrip()


def ice_servers(config: Sequence[Mapping[str, Any]]) -> list[RTCIceServer]:
    """``[{"urls": "turn:…", "username": …, "credential": …}]`` (the W3C RTCIceServer dictionary)."""
    return [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
        for s in config
    ]


@dataclass(slots=True, frozen=True)
class Recording:
    path: Path
    sha256: str
    size: int
    audio: bool  # the person's microphone is in it
    agent_voice: bool = False  # and the agent's voice, mixed in (agent-led sessions)


# A voice: speech at a microphone measures -40 to -20 dBFS; a quiet room with the browser's noise
# suppression under -60.
VOICE_DBFS = -45.0
VOICE_RECENT = 2.0  # seconds: a voice heard this recently is "speaking"
_FULL_SCALE = {"s16": 32768.0, "s32": 2147483648.0}  # float formats are already -1..1


def level_dbfs(frame: AudioFrame) -> float:
    """The frame's RMS level in dB relative to full scale (-inf for digital silence)."""
    values = frame.to_ndarray().astype(np.float32)
    full_scale = _FULL_SCALE.get(frame.format.name.removesuffix("p"), 1.0)  # planar or packed alike
    rms = float(np.sqrt(np.mean(np.square(values)))) / full_scale if values.size else 0.0
    return 20 * math.log10(rms) if rms > 0 else -math.inf


@dataclass(slots=True)
class Sound:
    """What the listener knows of the person's microphone."""

    frames: int = 0
    voice_frames: int = 0
    last_voice: float | None = None  # time.monotonic() of the last frame at voice level

    def hear(self, frame: AudioFrame, now: float) -> None:
        self.frames += 1
        if level_dbfs(frame) >= VOICE_DBFS:
            self.voice_frames += 1
            self.last_voice = now

    def speaking(self, now: float) -> bool:
        return self.last_voice is not None and now - self.last_voice <= VOICE_RECENT


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


class OwnFrames(MediaStreamTrack):
    """A relay consumer that hands on copies. The relay gives every consumer the same frame object,
    and an encoder rebases a frame's time in place (PyAV): the recorder encodes on the event loop
    while a viewer's encoder runs in a thread, so on a shared frame each can see the other's
    rebased timestamp (the likely cause of a CI run in which libvpx refused a frame of the agent's
    view: ``avcodec_send_frame()``, invalid data)."""

    def __init__(self, source: MediaStreamTrack) -> None:
        super().__init__()
        self.kind = source.kind
        self._source = source

    async def recv(self) -> Frame:
        frame = await self._source.recv()
        if not isinstance(frame, Frame):
            raise TypeError("a relay hands on decoded frames")
        return own_copy(frame)

    def stop(self) -> None:
        super().stop()
        self._source.stop()


class Voice(MediaStreamTrack):
    """What the person hears: the agent's microphone while one talks (:meth:`attach`), silence
    otherwise, in 20 ms frames of 48 kHz stereo with timestamps that run on without a gap.

    While an agent's microphone is attached its sound sets the pace: a frame goes out as soon as
    20 ms of it has arrived, so what a busy moment holds up arrives late but whole, and the person's
    browser's jitter buffer evens it out (a track on its own clock would send silence for the late
    frames instead, and then have a backlog to drop). When none arrives for :attr:`GAP` seconds
    past its time (a stalled connection, a microphone that sends nothing while muted), silence
    goes out on the track's clock, which also paces the silence when no agent talks; a reader that
    comes late to silence skips ahead rather than sending a burst of it.

    What waits is capped at :attr:`MAX_LATENCY` seconds: a longer backlog is dropped from the
    oldest end rather than heard ever later."""

    kind = "audio"
    RATE = 48_000
    SAMPLES = 960  # 20 ms, Opus's usual frame
    MAX_LATENCY = 0.2
    GAP = 0.06

    def __init__(self) -> None:
        super().__init__()
        self._fifo = AudioFifo()
        self._arrived = asyncio.Event()
        self._stopped = asyncio.Event()  # wakes a reader at once: a relay's reading task then ends
        self._source: MediaStreamTrack | None = None
        self._feeder: asyncio.Task[None] | None = None
        self._start: float | None = None
        self._pts = 0
        self.relayed = 0  # frames of the agent's sound handed on

    @property
    def talking(self) -> bool:
        """Whether an agent's microphone is attached."""
        return self._source is not None

    def attach(self, source: MediaStreamTrack) -> None:
        """The agent's microphone from now on (it replaces an earlier one)."""
        self.detach()
        self._source = source
        self._feeder = asyncio.ensure_future(self._feed(source))

    def detach(self, source: MediaStreamTrack | None = None) -> None:
        """Silence again; with ``source``, only if that is still the one attached."""
        if self._source is None or (source is not None and source is not self._source):
            return
        feeder, self._feeder, self._source = self._feeder, None, None
        if feeder is not None:
            feeder.cancel()
        self._fifo = AudioFifo()
        self._arrived.set()  # a reader waiting for the agent goes on with silence

    async def _feed(self, source: MediaStreamTrack) -> None:
        resampler = AudioResampler(format="s16", layout="stereo", rate=self.RATE)
        limit = int(self.MAX_LATENCY * self.RATE)
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await source.recv()
                if not isinstance(frame, AudioFrame):
                    continue
                fifo = self._fifo
                for out in resampler.resample(frame):
                    out.pts = None  # the FIFO keeps its own time
                    fifo.write(out)
                if fifo.samples > limit:
                    fifo.read(fifo.samples - limit)
                self._arrived.set()
        if self._source is source:  # the agent's connection ended its track
            self.detach()

    async def _agent_frame(self, deadline: float) -> AudioFrame | None:
        """20 ms of the agent's sound once it has arrived, or None at ``deadline``."""
        while self._source is not None and self._fifo.samples < self.SAMPLES:
            wait = deadline - time.monotonic()
            if wait <= 0:
                return None
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), wait)
            except TimeoutError:
                return None
        return self._fifo.read(self.SAMPLES) if self._fifo.samples >= self.SAMPLES else None

    async def recv(self) -> Frame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        due = self._start + self._pts / self.RATE
        frame = await self._agent_frame(max(due, now) + self.GAP) if self._source is not None else None
        now = time.monotonic()
        if self.readyState != "live":
            raise MediaStreamError
        if frame is not None:
            self.relayed += 1
            self._start = now - self._pts / self.RATE  # the agent's sound set this frame's time
        else:
            if due > now:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), due - now)
                if self.readyState != "live":
                    raise MediaStreamError
            elif now - due > self.GAP:  # late: no burst of silence to catch up
                self._start = now - self._pts / self.RATE
            frame = AudioFrame(format="s16", layout="stereo", samples=self.SAMPLES)
            for plane in frame.planes:
                plane.update(bytes(plane.buffer_size))
        frame.sample_rate = self.RATE
        frame.pts, frame.time_base = self._pts, fractions.Fraction(1, self.RATE)
        self._pts += self.SAMPLES
        return frame

    def stop(self) -> None:
        super().stop()
        self.detach()
        self._stopped.set()
        self._arrived.set()


def _stereo_samples(frames: list[AudioFrame]) -> np.ndarray:
    """The interleaved s16 stereo samples of resampled frames, as one int32 row (room to add)."""
    rows = [f.to_ndarray().reshape(-1) for f in frames]
    return np.concatenate(rows).astype(np.int32) if rows else np.zeros(0, np.int32)


class Conversation(MediaStreamTrack):
    """The recording's sound in an agent-led session: the person's microphone with the agent's
    voice (what :class:`Voice` sends them) added in, on the person's clock: each of their frames
    sets the time and the length, the agent's sound waits in a FIFO of at most
    :attr:`Voice.MAX_LATENCY` seconds, and silence stands in when there is none."""

    kind = "audio"

    def __init__(self, person: MediaStreamTrack, agent: MediaStreamTrack) -> None:
        super().__init__()
        self._person, self._agent = person, agent
        self._resampler = AudioResampler(format="s16", layout="stereo", rate=Voice.RATE)
        self._fifo = AudioFifo()
        self._feeder = asyncio.ensure_future(self._feed())

    async def _feed(self) -> None:
        limit = int(Voice.MAX_LATENCY * Voice.RATE)
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await self._agent.recv()
                if not isinstance(frame, AudioFrame):
                    continue
                frame = own_copy(frame)  # Voice's frames are 48 kHz s16 stereo already
                frame.pts = None
                self._fifo.write(frame)  # type: ignore[arg-type]
                if self._fifo.samples > limit:
                    self._fifo.read(self._fifo.samples - limit)

    async def recv(self) -> Frame:
        frame = await self._person.recv()
        if not isinstance(frame, AudioFrame) or frame.pts is None or frame.time_base is None:
            raise MediaStreamError  # a relay of a received track hands on timed audio frames
        mixed = _stereo_samples(self._resampler.resample(frame))
        count = mixed.size // 2
        if count == 0:
            return await self.recv()  # the resampler holds the samples back until the next frame
        agent = self._fifo.read(min(count, self._fifo.samples)) if self._fifo.samples else None
        if agent is not None:
            voice = _stereo_samples([agent])
            mixed[: voice.size] += voice
        out = AudioFrame.from_ndarray(
            np.clip(mixed, -32768, 32767).astype(np.int16).reshape(1, -1), format="s16", layout="stereo"
        )
        out.sample_rate = Voice.RATE
        out.pts = int(frame.pts * frame.time_base * Voice.RATE)
        out.time_base = fractions.Fraction(1, Voice.RATE)
        return out

    def stop(self) -> None:
        super().stop()
        self._feeder.cancel()
        self._person.stop()
        self._agent.stop()

    async def close(self) -> None:
        """Stop, and wait for the agent's side to be read no more."""
        self.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await self._feeder


class Receiver:
    """One peer connection receiving one video track."""

    def __init__(
        self,
        *,
        on_frame: Callable[[Image], None],
        ice: Sequence[Mapping[str, Any]] = (),
        record_to: Path | None = None,
        sound: bool = True,
        talk_back: bool = False,
    ) -> None:
        self._on_frame = on_frame
        self._sound = sound
        self._talk_back = talk_back
        self.voice: Voice | None = None  # what the person hears, once the answer sends it
        self._pc = RTCPeerConnection(RTCConfiguration(iceServers=ice_servers(ice)))
        self._relay = MediaRelay()
        self._record_to = record_to
        self._recorder: MediaRecorder | None = None
        self._track: MediaStreamTrack | None = None
        self._audio: MediaStreamTrack | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._recording: asyncio.Future[None] | None = None
        self._recorded_audio = False
        self._recorded_agent = False
        self._conversation: Conversation | None = None
        self._answered = False
        self.frames = 0
        self.sound = Sound()
        self.ended = asyncio.Event()
        self._pc.on("track", self._on_track)
        self._pc.on("connectionstatechange", self._on_state)

    @property
    def state(self) -> str:
        return str(self._pc.connectionState)

    async def answer(self, *, sdp: str, kind: str) -> tuple[str, str]:
        """Take the page's offer (RFC 8829 §5.2), return the answer ``(sdp, type)``."""
        if self._answered:
            raise SignallingError("this session already has a connection")
        check_offer(sdp, kind)
        self._answered = True
        try:
            await self._pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            if not self._sound:
                for transceiver in self._pc.getTransceivers():
                    if transceiver.kind == "audio":
                        transceiver.direction = "inactive"  # declined: no sound is received
            elif self._talk_back and any(t.kind == "audio" for t in self._pc.getTransceivers()):
                self.voice = Voice()
                # on the page's audio section, through the relay: the recording mixes it in too
                self._pc.addTrack(self._relay.subscribe(self.voice, buffered=False))
            await self._pc.setLocalDescription(await self._pc.createAnswer())
        except Exception as exc:  # aiortc's parser fails on hostile SDP in many ways (assert, None...)
            await self._pc.close()
            raise SignallingError(unusable(exc)) from None
        if self.voice is not None and not any(
            t.kind == "audio" and t.currentDirection in ("sendrecv", "sendonly")
            for t in self._pc.getTransceivers()
        ):
            self.voice.stop()  # the page offered to send sound but not to hear any
            self.voice = None
        self._start_recording()  # the offer's tracks have all arrived (aiortc emits them while applying it)
        local = self._pc.localDescription
        return local.sdp, local.type

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._audio is None and self._sound:
            self._audio = track
            self._listener = asyncio.ensure_future(self._listen(self._relay.subscribe(track, buffered=False)))
        elif track.kind == "video" and self._consumer is None:
            self._track = track
            self._consumer = asyncio.ensure_future(
                self._consume(self._relay.subscribe(track, buffered=False))
            )

    def _start_recording(self) -> None:
        if self._record_to is None or self._track is None:
            return
        self._record_to.parent.mkdir(parents=True, exist_ok=True)
        self._recorder = MediaRecorder(str(self._record_to), format="mp4")
        self._recorder.addTrack(self._relay.subscribe(self._track))
        if self._audio is not None:
            person = self._relay.subscribe(self._audio)
            if self.voice is not None:  # the conversation: what each of them said
                self._conversation = Conversation(person, self._relay.subscribe(self.voice))
                self._recorder.addTrack(self._conversation)
                self._recorded_agent = True
            else:
                self._recorder.addTrack(person)
            self._recorded_audio = True
        self._recording = asyncio.ensure_future(self._recorder.start())

    @property
    def has_video(self) -> bool:
        """Whether the person's video has arrived and not ended."""
        return self._track is not None and not self.ended.is_set()

    def subscribe(self) -> MediaStreamTrack | None:
        """A new consumer of the received video (latest frame only: a slow one skips frames and
        holds nothing up; its own copies, :class:`OwnFrames`, to encode as it likes); None before
        the video arrives or after it ended."""
        if self._track is None or not self.has_video:
            return None
        return OwnFrames(self._relay.subscribe(self._track, buffered=False))

    def subscribe_audio(self) -> MediaStreamTrack | None:
        """A new consumer of the person's microphone (as :meth:`subscribe`); None without one."""
        if self._audio is None or not self.has_video:
            return None
        return OwnFrames(self._relay.subscribe(self._audio, buffered=False))

    @property
    def has_audio(self) -> bool:
        return self._audio is not None

    def talk(self, microphone: MediaStreamTrack) -> bool:
        """Let the person hear ``microphone`` (the agent's) instead of silence; whether they can
        (an agent-led session whose page accepted sound, still running)."""
        if self.voice is None or not self.has_video:
            return False
        self.voice.attach(microphone)
        return True

    def hush(self, microphone: MediaStreamTrack) -> None:
        """Silence again, if ``microphone`` is still the one the person hears."""
        if self.voice is not None:
            self.voice.detach(microphone)

    async def _listen(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                self.sound.hear(frame, time.monotonic())  # type: ignore[arg-type]

    async def _consume(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                self.frames += 1
                self._on_frame(frame.to_ndarray(format="bgr24"))  # type: ignore[union-attr]
        except MediaStreamError:
            pass  # the browser ended the track: the normal end of a capture
        finally:
            self.ended.set()

    async def _on_state(self) -> None:
        if self._pc.connectionState in ("failed", "closed"):
            self.ended.set()

    async def stop_recording(self) -> Recording | None:
        """Stop the recorder (consent withdrawn or the capture is over); hash the file."""
        recorder, self._recorder = self._recorder, None
        if recorder is None or self._record_to is None:
            return None
        path = self._record_to
        try:
            await recorder.stop()
        except Exception:
            # the container could not be finished (e.g. no frame reached it): the session is
            # decided on what was analysed; the evidence then says no recording was kept
            log.warning("the recording of %s could not be finished; none is kept", path.name, exc_info=True)
            path.unlink(missing_ok=True)
            return None
        finally:
            conversation, self._conversation = self._conversation, None
            if conversation is not None:  # the recorder does not stop the tracks it read
                await conversation.close()
        if not path.exists():
            return None
        digest, size = await asyncio.to_thread(_sha256, path)
        return Recording(path, digest, size, audio=self._recorded_audio, agent_voice=self._recorded_agent)

    async def close(self) -> Recording | None:
        recording = await self.stop_recording()
        if self.voice is not None:
            self.voice.stop()
        for task in (self._consumer, self._listener):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self._pc.close()
        self.ended.set()
        return recording


def _sha256(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size
