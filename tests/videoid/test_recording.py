"""What the server's end of the person's connection records (aiortc on both ends)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import av
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack

from tests.support.videoid_client import AGENT_PITCH
from tests.support.webcam import SyntheticMicrophone, pitch_amplitude
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
