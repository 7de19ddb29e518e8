"""Sound in a video identification: the person's microphone as the server hears it, and what the
person hears of the agent.

- :func:`level_dbfs` and :class:`Sound`: whether sound arrives from the person and when a voice
  was last heard (shown to the agent; the analysis uses no sound).
- :class:`Voice`: the track the server sends the person in an agent-led session, silence until
  the agent watching live talks into their microphone.
- :class:`Conversation`: the recording's sound in such a session, the person's with the agent's
  mixed in.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import math
import time
from dataclasses import dataclass

import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import AudioFifo, AudioFrame, AudioResampler
from av.frame import Frame

from videoid.media import own_copy

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
