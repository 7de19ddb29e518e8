"""What the server's end of the person's connection records (aiortc on both ends)."""

from __future__ import annotations

import asyncio
import contextlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.contrib.media import MediaRecorder
from aiortc.mediastreams import MediaStreamError
from av import VideoFrame

from tests.support.videoid_client import AGENT_PITCH
from tests.support.webcam import SyntheticMicrophone, pitch_amplitude
from videoid.media import Monotonic, VideoFirst
from videoid.sound import level_dbfs
from videoid.webrtc import Receiver


async def _until(condition: object, what: str, timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.05)


async def test_without_a_microphone_the_recording_keeps_what_the_agent_said(tmp_path: Path) -> None:
    """An agent-led session of a person whose device has no microphone: their page only hears.
    The recording then has the agent's voice as its sound, not nothing."""
    receiver = Receiver(on_frame=lambda image: None, record_to=tmp_path / "rec.mp4", talk_back=True)
    person = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    person.addTrack(VideoStreamTrack())
    person.addTransceiver("audio", direction="recvonly")  # as the page does without a microphone
    agent = SyntheticMicrophone(amplitude=0.2, frequency=AGENT_PITCH)
    try:
        await person.setLocalDescription(await person.createOffer())
        sdp, kind = await receiver.answer(sdp=person.localDescription.sdp, kind="offer")
        await person.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
        assert receiver.voice is not None and not receiver.has_audio
        await _until(lambda: receiver.frames >= 10, "the person's video arrives")
        await asyncio.sleep(0.5)  # silence first
        assert receiver.talk(agent)
        await asyncio.sleep(2.0)  # the agent talks for two seconds
        receiver.hush(agent)
        await asyncio.sleep(0.5)
        recording = await receiver.close()
    finally:
        await person.close()
        agent.stop()
    assert recording is not None
    assert recording.audio is False and recording.agent_voice is True
    with av.open(str(recording.path)) as container:
        assert sorted(stream.type for stream in container.streams) == ["audio", "video"]
        frames = list(container.decode(container.streams.audio[0]))
    said = [pitch_amplitude(frame, AGENT_PITCH) for frame in frames]
    talking = sum(a > 0.1 for a in said) * frames[0].samples / frames[0].sample_rate
    # most of the two seconds, and silence around them
    assert 1.0 < talking < 3.0, talking
    assert min(level_dbfs(frame) for frame in frames) < -60


class _Stamped(MediaStreamTrack):
    """Video frames with the given timestamps (90 kHz), then the end of the track."""

    kind = "video"

    def __init__(self, stamps: list[int]) -> None:
        super().__init__()
        self._stamps = list(stamps)

    async def recv(self) -> VideoFrame:
        if not self._stamps:
            self.stop()
            raise MediaStreamError
        frame = VideoFrame.from_ndarray(
            np.full((120, 160, 3), len(self._stamps) * 7 % 256, np.uint8), format="bgr24"
        )
        frame.pts, frame.time_base = self._stamps.pop(0), Fraction(1, 90_000)
        await asyncio.sleep(0.002)
        return frame


async def test_frames_reach_the_recorder_in_strictly_increasing_time() -> None:
    source = _Stamped([0, 3000, 3000, 6000, 4500, 9000, 9000, 12000])
    ordered = Monotonic(source)
    seen = []
    with contextlib.suppress(MediaStreamError):
        while True:
            seen.append((await ordered.recv()).pts)
    assert seen == [0, 3000, 6000, 9000, 12000]
    assert ordered.left_out == 3


async def test_frames_on_one_tick_of_the_recorder_count_as_one() -> None:
    """Distinct on the RTP clock, but 6.7 ms apart: both would be encoded at one 1/30 s tick."""
    ordered = Monotonic(_Stamped([0, 3000, 3600, 6000, 7400, 9000]), tick=Fraction(1, 30))
    seen = []
    with contextlib.suppress(MediaStreamError):
        while True:
            seen.append((await ordered.recv()).pts)
    assert seen == [0, 3000, 6000, 9000]


async def test_a_repeated_timestamp_does_not_cost_the_recording(tmp_path: Path) -> None:
    """One frame with its predecessor's time, one on its predecessor's tick: aiortc's recorder
    alone cannot finish the file (the encoder repeats a decoding time, the muxer refuses it);
    through the order the recorder's tracks are given in, the file is finished with every other
    frame."""
    stamps = [i * 3000 for i in range(20)]
    stamps.insert(15, stamps[14] + 600)  # 6.7 ms later: the same tick of the recorder's 1/30 s
    stamps.insert(10, stamps[9])

    async def record(path: Path, *, ordered: bool) -> None:
        source = _Stamped(stamps)
        recorder = MediaRecorder(str(path), format="mp4")
        recorder.addTrack(VideoFirst().video(source) if ordered else source)
        await recorder.start()
        await _until(lambda: source.readyState == "ended", "the frames are all handed on")
        await asyncio.sleep(0.1)  # the recorder encodes the last one
        await recorder.stop()

    with pytest.raises(av.error.ArgumentError):  # the cause, shown without the fix
        await record(tmp_path / "bare.mp4", ordered=False)
    await record(tmp_path / "rec.mp4", ordered=True)
    with av.open(str(tmp_path / "rec.mp4")) as container:
        assert len(list(container.decode(video=0))) == 20
