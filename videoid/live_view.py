"""The agent's live view of an agent-led session: a second peer connection that sends the video.

ETSI TS 119 461 (attended remote identity proofing) has the operator see the person while the
session runs, and lead them by voice. The agent's page offers to *receive* video (a ``recvonly``
section, no trickle ICE, like the person's page) and sound, and to send its microphone on the same
audio section (``sendrecv``) when it has one: what arrives there is what the person hears
(:meth:`videoid.webrtc.Receiver.talk`) until the viewer closes. The server answers with new
consumers of the session's :class:`~aiortc.contrib.media.MediaRelay`
(:meth:`videoid.webrtc.Receiver.subscribe` and :meth:`~videoid.webrtc.Receiver.subscribe_audio`:
the agent hears the person read out their document number), so the analysis and the recording
keep their own consumers and are not slowed down by the agent: the relay hands the viewer only
the newest frame, which aiortc encodes again for the agent's browser.

:class:`Viewers` holds at most one viewer per session: a second watch replaces the first. A
viewer closes itself, its peer connection and its relay consumer when the person's video ends
(the capture is over or the person left), when the agent's connection fails or closes, or when
the agent says so (:meth:`Viewers.stop`); :meth:`Viewers.close` closes all at shutdown.

Who may watch, and the consent rule, are decided before a viewer is made
(:meth:`videoid.service.VideoIdService.watch`, :func:`videoid.agents.conducted`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiortc import MediaStreamTrack, RTCConfiguration, RTCSessionDescription

from idp.errors import VideoIdError
from videoid.ice_consent import ConsentingPeerConnection
from videoid.webrtc import Receiver, SignallingError, check_offer, ice_servers, unusable

log = logging.getLogger("videoid.live_view")
NOT_LIVE = "the person's video is not running (not started yet, or over)"
_AUDIO = re.compile(r"^m=audio ", re.MULTILINE)
_DIRECTION = re.compile(r"^a=(sendrecv|sendonly|recvonly|inactive)\s*$", re.MULTILINE)


def check_watch_offer(sdp: object, kind: object) -> str:
    """The agent's offer if its video sections only receive and its audio sections receive, or
    receive and send the agent's microphone (RFC 8866 §6.7: no direction attribute means
    ``sendrecv``): the server decodes no video of theirs."""
    text = check_offer(sdp, kind)
    sections = re.split(r"\r?\n(?=m=)", text)[1:]
    for section in sections:
        found = _DIRECTION.findall(section)
        direction = found[-1] if found else "sendrecv"
        media = section.split(" ", 1)[0].removeprefix("m=")
        allowed = ("recvonly", "sendrecv") if media == "audio" else ("recvonly",)
        if direction not in allowed:
            raise SignallingError(
                f"the agent's page receives the person's {media} and sends no other; "
                f"its {media} is {direction}, not {' or '.join(allowed)}"
            )
    return text


class Viewer:
    """One agent's peer connection sending the person's video."""

    def __init__(
        self,
        *,
        source: Receiver,
        ice: Sequence[Mapping[str, Any]] = (),
        on_close: Callable[[Viewer], None] | None = None,
    ) -> None:
        self._source = source
        self._on_close = on_close
        self._pc = ConsentingPeerConnection(RTCConfiguration(iceServers=ice_servers(ice)))
        self._track: MediaStreamTrack | None = None
        self._voice: MediaStreamTrack | None = None
        self._microphone: MediaStreamTrack | None = None  # the agent's, once it arrives
        self._watchdog: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()
        self._pc.on("connectionstatechange", self._on_state)
        self._pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._microphone is None and self._source.talk(track):
            self._microphone = track

    @property
    def state(self) -> str:
        return "closed" if self.closed.is_set() else str(self._pc.connectionState)

    async def answer(self, *, sdp: str, kind: str) -> tuple[str, str]:
        """Answer the agent's offer (RFC 8829 §5.3) with the person's video, and their sound when
        the offer asks for it and the person sends it, as the sent tracks."""
        offer = check_watch_offer(sdp, kind)
        track = self._source.subscribe()
        if track is None:
            await self.close()
            raise VideoIdError("not_live", NOT_LIVE)
        self._track = track
        if _AUDIO.search(offer):
            self._voice = self._source.subscribe_audio()
        try:
            # added before the offer is applied: aiortc gives each track to the offer's section of its kind
            self._pc.addTrack(track)
            if self._voice is not None:
                self._pc.addTrack(self._voice)
            await self._pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            await self._pc.setLocalDescription(await self._pc.createAnswer())
        except Exception as exc:  # aiortc's parser fails on hostile SDP in many ways
            await self.close()
            raise SignallingError(unusable(exc)) from None
        self._watchdog = asyncio.ensure_future(self._until_source_ends())
        local = self._pc.localDescription
        return local.sdp, local.type

    async def _until_source_ends(self) -> None:
        await self._source.ended.wait()
        await self.close()

    async def _on_state(self) -> None:
        if self._pc.connectionState in ("failed", "closed"):
            await self.close()

    async def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        if self._on_close is not None:
            self._on_close(self)
        for sent in (self._track, self._voice):
            if sent is not None:
                sent.stop()  # leaves the relay: it stops handing this viewer frames
        if self._microphone is not None:
            self._source.hush(self._microphone)  # the person hears silence again
        await self._pc.close()
        watchdog = self._watchdog
        if watchdog is not None and watchdog is not asyncio.current_task():
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog


class Viewers:
    """The live viewers of one process, at most one per session."""

    def __init__(self, *, ice: Sequence[Mapping[str, Any]] = ()) -> None:
        self._ice = list(ice)
        self._by_session: dict[str, Viewer] = {}

    def __len__(self) -> int:
        return len(self._by_session)

    def get(self, session_id: str) -> Viewer | None:
        return self._by_session.get(session_id)

    async def watch(self, session_id: str, source: Receiver, *, sdp: str, kind: str) -> tuple[str, str]:
        """A viewer of ``source`` for the agent's offer; it replaces the session's earlier one once
        it has answered (a refused offer leaves the earlier one watching)."""
        viewer = Viewer(source=source, ice=self._ice, on_close=lambda v: self._forget(session_id, v))
        answer = await viewer.answer(sdp=sdp, kind=kind)
        if viewer.closed.is_set():  # the person's video ended meanwhile
            raise VideoIdError("not_live", NOT_LIVE)
        previous = self._by_session.get(session_id)
        self._by_session[session_id] = viewer
        if previous is not None:
            await previous.close()
        return answer

    def _forget(self, session_id: str, viewer: Viewer) -> None:
        if self._by_session.get(session_id) is viewer:
            del self._by_session[session_id]

    async def stop(self, session_id: str) -> bool:
        """Close the session's viewer (the agent left); whether there was one."""
        viewer = self._by_session.pop(session_id, None)
        if viewer is None:
            return False
        await viewer.close()
        return True

    async def close(self) -> None:
        viewers, self._by_session = list(self._by_session.values()), {}
        for viewer in viewers:
            with contextlib.suppress(Exception):
                await viewer.close()
