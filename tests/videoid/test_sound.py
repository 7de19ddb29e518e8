"""What the server knows of the person's microphone (the level of a frame, whether they speak), and
the frames a viewer gets."""

from __future__ import annotations

import math
from fractions import Fraction

import av
import numpy as np

from videoid.webrtc import VOICE_RECENT, Sound, level_dbfs, own_copy


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
