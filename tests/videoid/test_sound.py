"""What the server knows of the person's microphone (the level of a frame, whether they speak), the
frames a viewer gets, and what the person hears of the agent (:class:`videoid.sound.Voice`)."""

from __future__ import annotations

import asyncio
import math
import time
from fractions import Fraction

import av
import numpy as np
import pytest
from aiortc import MediaStreamTrack
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError

from tests.support.webcam import pitch_amplitude
from videoid.media import own_copy
from videoid.sound import VOICE_RECENT, Conversation, Sound, Voice, level_dbfs


def tone(amplitude: float, *, layout: str = "mono", fmt: str = "s16") -> av.AudioFrame:
    t = np.arange(960) / 48000
    wave = amplitude * np.sin(2 * np.pi * 440 * t)
    channels = 2 if layout == "stereo" else 1
    if fmt == "s16":
        samples = np.tile((wave * 32767).astype(np.int16), channels).reshape(1, -1)
    else:  # planar float, as a decoder may give it
        samples = np.tile(wave.astype(np.float32), (channels, 1))
    frame = av.AudioFrame.from_ndarray(samples, format=fmt, layout=layout)
    frame.sample_rate = 48000
    return frame


def test_the_level_of_a_sine_is_its_rms_in_dbfs() -> None:
    # a sine's RMS is its amplitude over the square root of two: 0.1 -> -23.0 dBFS
    for frame in (tone(0.1), tone(0.1, layout="stereo"), tone(0.1, fmt="fltp")):
        assert math.isclose(level_dbfs(frame), 20 * math.log10(0.1 / math.sqrt(2)), abs_tol=0.1)
    assert level_dbfs(tone(0.0)) == -math.inf  # digital silence


def test_a_voice_counts_for_a_while_and_silence_does_not() -> None:
    sound = Sound()
    sound.hear(tone(0.0005), now=10.0)  # a quiet room: -69 dBFS
    assert sound.frames == 1 and sound.voice_frames == 0 and not sound.speaking(10.0)
    sound.hear(tone(0.1), now=11.0)
    assert sound.voice_frames == 1 and sound.speaking(11.0) and sound.speaking(11.0 + VOICE_RECENT)
    assert not sound.speaking(11.0 + VOICE_RECENT + 0.1)


def test_a_viewer_gets_its_own_frames_whose_time_the_recorder_cannot_move() -> None:
    picture = av.VideoFrame.from_ndarray(np.full((480, 640, 3), 90, np.uint8), format="bgr24").reformat(
        format="yuv420p"
    )
    for frame in (picture, tone(0.1, layout="stereo")):
        frame.pts, frame.time_base = 3000, Fraction(1, 90000)
        copy = own_copy(frame)
        assert copy is not frame and (copy.pts, copy.time_base) == (3000, Fraction(1, 90000))
        assert np.array_equal(copy.to_ndarray(), frame.to_ndarray())
        frame.pts, frame.time_base = 1, Fraction(1, 30)  # what an encoder's rebase does in place
        assert (copy.pts, copy.time_base) == (3000, Fraction(1, 90000))


class Microphone(MediaStreamTrack):
    """The agent's microphone as the viewer's connection delivers it: ``count`` frames of a tone
    (in the decoder's 48 kHz stereo or, to be resampled, 16 kHz mono), one every 20 ms of the
    clock, then the track ends."""

    kind = "audio"

    def __init__(
        self, count: int, *, rate: int = 48000, layout: str = "stereo", pitch: float = 440.0
    ) -> None:
        super().__init__()
        self.count, self.rate, self.layout, self.pitch = count, rate, layout, pitch
        self.sent = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.sent >= self.count:
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        await asyncio.sleep(max(0.0, self._start + (self.sent + 1) * 0.02 - time.monotonic()))
        n = self.rate // 50
        wave = (
            0.2 * 32767 * np.sin(2 * np.pi * self.pitch * (np.arange(n) + self.sent * n) / self.rate)
        ).astype(np.int16)
        channels = 2 if self.layout == "stereo" else 1
        frame = av.AudioFrame.from_ndarray(
            np.repeat(wave, channels).reshape(1, -1), format="s16", layout=self.layout
        )
        frame.sample_rate, frame.pts, frame.time_base = self.rate, self.sent * n, Fraction(1, self.rate)
        self.sent += 1
        return frame


async def test_the_person_hears_silence_then_the_agent_then_silence_on_one_steady_clock() -> None:
    voice = Voice()
    started = time.monotonic()
    heard: list[av.AudioFrame] = []
    try:
        for _ in range(10):
            heard.append(await voice.recv())  # type: ignore[arg-type]
        assert not voice.talking and all(level_dbfs(f) == -math.inf for f in heard)
        microphone = Microphone(25)
        voice.attach(microphone)
        assert voice.talking
        for _ in range(40):
            heard.append(await voice.recv())  # type: ignore[arg-type]
        loud = [level_dbfs(f) > -20 for f in heard[10:]]
        assert sum(loud) >= 20 and voice.relayed == sum(loud), (sum(loud), voice.relayed)
        assert not voice.talking  # the agent's track ended: silence again, on its own
        assert all(level_dbfs(f) == -math.inf for f in heard[-5:])
    finally:
        voice.stop()
    took = time.monotonic() - started
    # one frame every 20 ms, each with the same format, and a pts that counts the samples
    assert all(
        (f.samples, f.sample_rate, f.format.name, f.layout.name) == (960, 48000, "s16", "stereo")
        for f in heard
    )
    assert [f.pts for f in heard] == [960 * i for i in range(50)]
    assert all(f.time_base == Fraction(1, 48000) for f in heard)
    assert 0.9 <= took < 3.0, took  # 49 frames paced: about 0.98 s (a busy machine only adds)


async def test_another_rate_is_resampled_and_a_backlog_is_dropped_not_played_late() -> None:
    voice = Voice()
    try:
        microphone = Microphone(30, rate=16000, layout="mono")
        voice.attach(microphone)
        await asyncio.sleep(0.8)  # the agent's sound arrives while the person's side does not read
        first = await voice.recv()
        assert first.format.name == "s16" and first.layout.name == "stereo" and first.sample_rate == 48000
        # at most MAX_LATENCY seconds of it waited: the rest was dropped from the oldest end
        assert voice._fifo.samples <= int(Voice.MAX_LATENCY * Voice.RATE)
        replaced = Microphone(1000)
        voice.attach(replaced)  # a second agent's page (a reload) replaces the first
        voice.detach(microphone)  # the first viewer closing does not silence the second
        assert voice.talking
        voice.detach(replaced)
        assert not voice.talking
    finally:
        voice.stop()
    with pytest.raises(MediaStreamError):
        await voice.recv()


async def test_what_waited_goes_out_at_once_and_then_at_the_pace_it_arrives() -> None:
    voice = Voice()
    try:
        microphone = Microphone(400)
        voice.attach(microphone)
        await asyncio.sleep(0.25)  # a stall on the person's side: the agent's sound piles up
        assert voice._fifo.samples >= 8 * Voice.SAMPLES
        started = time.monotonic()
        for _ in range(10):  # what waited goes out at once, none of it lost
            frame = await voice.recv()
            assert level_dbfs(frame) > -20  # type: ignore[arg-type]
        assert time.monotonic() - started < 0.1
        for _ in range(50):  # then one frame as each arrives
            await voice.recv()
        assert voice._fifo.samples < 2 * Voice.SAMPLES, voice._fifo.samples
        assert voice.relayed == 60
    finally:
        voice.stop()


async def test_the_recording_mixes_the_agents_voice_into_the_persons_sound() -> None:
    person = Microphone(30, layout="mono")  # 440 Hz, as a relay of the person's track gives it
    agent = Voice()
    agent.attach(Microphone(1000, pitch=880.0))
    relay = MediaRelay()  # as on the server: the person's connection and the recording share it
    mixed = Conversation(person, relay.subscribe(agent))
    reader = asyncio.ensure_future(_drain(relay.subscribe(agent, buffered=False)))
    try:
        frames = [await mixed.recv() for _ in range(30)]
    finally:
        reader.cancel()
        mixed.stop()
        agent.stop()
    assert [f.pts for f in frames] == [960 * i for i in range(30)]
    assert all((f.format.name, f.layout.name, f.sample_rate) == ("s16", "stereo", 48000) for f in frames)
    # the person's 0.2 in every frame, upmixed to stereo at -3 dB
    assert all(0.12 < pitch_amplitude(f, 440.0) < 0.16 for f in frames)
    # the agent's 0.2 in the frames after the first few (the agent's sound starts 20 ms late);
    # a frame of the person's that comes before the agent's of the same moment (a busy loop) has
    # less of it or none, and those samples go into the next frame
    agent = [pitch_amplitude(f, 880.0) for f in frames[5:]]
    assert sum(0.18 < a < 0.22 for a in agent) >= 0.8 * len(agent) and max(agent) < 0.22, agent


async def _drain(track: MediaStreamTrack) -> None:
    while True:
        await track.recv()
