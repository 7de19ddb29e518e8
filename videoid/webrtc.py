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
(:meth:`Receiver.subscribe_audio`), and to a listener that keeps :class:`videoid.sound.Sound`
(whether sound arrives, and when a voice was last heard). The analysis uses none of it.

In an agent-led session the person also hears the agent: the answer sends them a
:class:`videoid.sound.Voice` on the audio section their page offered, silence until an agent
watching live talks into their microphone (:meth:`Receiver.talk`, from :mod:`videoid.live_view`).
The recording then keeps the conversation: the person's sound with the agent's voice mixed in
(:class:`videoid.sound.Conversation`); from a person without a microphone, the agent's voice alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRecorder, MediaRelay
from aiortc.mediastreams import MediaStreamError

from idp.errors import VideoIdError
from videoid.faces import Image
from videoid.ice_consent import ConsentingPeerConnection
from videoid.media import OwnFrames, VideoFirst
from videoid.sound import Conversation, Sound, Voice

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
    agent_voice: bool = False  # the agent's voice (agent-led sessions): mixed in, or alone without the first


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
        self._pc = ConsentingPeerConnection(RTCConfiguration(iceServers=ice_servers(ice)))
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
        self._voice_copy: MediaStreamTrack | None = None
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
        order = VideoFirst()
        self._recorder.addTrack(order.video(self._relay.subscribe(self._track)))
        if self._audio is not None:
            person = self._relay.subscribe(self._audio)
            if self.voice is not None:  # the conversation: what each of them said
                self._conversation = Conversation(person, self._relay.subscribe(self.voice))
                self._recorder.addTrack(order.sound(self._conversation))
                self._recorded_agent = True
            else:
                self._recorder.addTrack(order.sound(person))
            self._recorded_audio = True
        elif self.voice is not None:
            # no microphone, but the person hears the agent: the recording keeps what the agent
            # said, on the voice's own clock (silence while the agent does not talk)
            self._voice_copy = self._relay.subscribe(self.voice)
            self._recorder.addTrack(order.sound(self._voice_copy))
            self._recorded_agent = True
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
            voice_copy, self._voice_copy = self._voice_copy, None
            if voice_copy is not None:
                voice_copy.stop()
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
