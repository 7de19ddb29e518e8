"""A person's browser for video identification tests, without a browser: httpx for the pages and
JSON endpoints, aiortc for the camera and microphone (:mod:`tests.support.webcam`); and the
agent's browser watching the person live (:class:`LiveViewer`)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aioice.ice
import httpx
import numpy as np
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from idp import eids, sessions
from idp.delivery.sms import read_outbox
from idp.storage.database import Tx
from levels_of_assurance.ladder import AMR, Level, acr_for
from levels_of_assurance.policy import Factor, Method
from tests.support.flows import form_value
from tests.support.server import ServedApp
from tests.support.webcam import Performer, SyntheticCamera, SyntheticMicrophone
from videoid.sound import level_dbfs

PHONE = "+38640123456"
AGENT_PITCH = 880.0  # Hz: the agent's synthetic voice; the person's is 440 Hz
#: aioice's own: this many consent checks in a row without an answer end a connection
AIOICE_CONSENT_FAILURES = aioice.ice.CONSENT_FAILURES


@contextlib.contextmanager
def consent_outlasting_stalls(*, seconds: float = 600.0) -> Iterator[None]:
    """Consent to send (RFC 7675) that lasts ``seconds`` without an answer, not aioice's 30 s, on
    the tests' own peer connections (aiortc's, standing in for the browsers).

    The server's ends do not need it: they follow RFC 7675 (:mod:`videoid.ice_consent`), where a
    late answer still counts, and read no ``CONSENT_FAILURES``. The tests' ends are aioice's:
    aioice checks consent every 5 s with one STUN request whose answer it waits 0.5 s for, and
    ends the connection after six in a row go unanswered. In the tests both ends of a connection
    run in one process (the served app's and the person's or the agent's): a stall of the process
    (a busy CI machine, threads contending for the GIL) delays the answer and the wait for it
    alike, so checks fail on both ends at once; between a browser and the server only the
    server's own stalls delay an answer, and the browser waits longer for it. Under load the
    live-view test's process stalled 0.5-1.9 s at a time while the person's face was analysed,
    checks failing on both ends together: six in a row end the person's connection, and the
    agent's viewer then gets no frames until the server notices and closes it. A peer that a test
    ends closes its connection, which the other end sees at once, without consent."""
    before = aioice.ice.CONSENT_FAILURES
    aioice.ice.CONSENT_FAILURES = math.ceil(seconds / aioice.ice.CONSENT_INTERVAL)
    try:
        yield
    finally:
        aioice.ice.CONSENT_FAILURES = before


def advanced_person(
    served: ServedApp, *, given: str = "Ana", family: str = "Novak", phone: str = PHONE
) -> eids.EID:
    """A tenant and an eID with a verified mobile number (what video identification needs)."""
    tenant = served.tenant()
    person = served.user(
        tenant, f"{tenant.slug}@example.com", given_name=given, family_name=family, phone_number=phone
    )
    served.write(lambda tx: eids.mark_verified(tx, eid_id=person.id, name="phone_number", method="sms"))
    return person


def signed_in_cookie(served: ServedApp, person: eids.EID) -> str:
    """The cookie of a new SSO session at the advanced level for ``person``."""

    def unit(tx: Tx) -> sessions.Issued:
        now = time.time()
        return sessions.authenticate(
            tx,
            previous=None,
            tenant_id=person.tenant_id,
            eid_id=person.id,
            username=person.username,
            acr=acr_for(Level.ADVANCED),
            amr=[AMR.PWD, "otp", AMR.MFA],
            ttl=3600,
            client_ip=None,
            method="password+totp",
            factors=[Factor(Method.PASSWORD, (AMR.PWD,), now), Factor(Method.TOTP, ("otp",), now)],
        )

    return served.write(unit).cookie_value


def signed_in(served: ServedApp, person: eids.EID) -> httpx.AsyncClient:
    """An async browser holding an SSO session at the advanced level for ``person``."""
    client = httpx.AsyncClient(
        base_url=served.issuer,
        verify=served.ssl_context(),
        timeout=20,
        headers={"Accept-Language": "en"},
        # idle connections are dropped before the server's keep-alive (uvicorn: 5 s) ends them: a
        # request sent on a connection the server is just closing fails ("disconnected without
        # sending a response"), which a busy test loop otherwise hits now and then
        limits=httpx.Limits(keepalive_expiry=2.0),
    )
    client.cookies.set(sessions.COOKIE_NAME, signed_in_cookie(served, person), domain="127.0.0.1")
    return client


async def start_session(browser: httpx.AsyncClient, *, request_id: str = "") -> tuple[str, str]:
    """Consent and start: returns ``(session_id, csrf_token)`` from the capture page."""
    page = await browser.get("/videoid/start", params={"request_id": request_id} if request_id else None)
    assert page.status_code == 200, page.text[:1000]
    started = await browser.post(
        "/videoid/start",
        data={"csrf_token": form_value(page.text, "csrf_token"), "request_id": request_id, "consent": "yes"},
    )
    assert started.status_code == 303, started.text[:1000]
    location = started.headers["location"]
    capture = await browser.get(location)
    assert capture.status_code == 200, capture.text[:1000]
    csrf = re.search(r'data-csrf="([^"]+)"', capture.text)
    assert csrf is not None
    return location.rsplit("/", 1)[1], csrf.group(1)


def last_sms(served: ServedApp, *, after: int = 0, phone: str = PHONE) -> str:
    """The text of the newest SMS to ``phone`` in the served app's outbox."""
    directory = Path(served.settings.sms_backend.removeprefix("file:"))
    messages = [m for m in read_outbox(directory)[after:] if m.to == phone]
    assert messages, "no SMS sent"
    return messages[-1].body


def sms_code(served: ServedApp, *, after: int = 0, phone: str = PHONE) -> str:
    body = last_sms(served, after=after, phone=phone)
    found = re.search(r"\b(\d{6})\b", body)
    assert found, body
    return found.group(1)


class Hearing:
    """What the person's speaker plays: the sound the server sends them (the agent's voice in an
    agent-led session), frame by frame."""

    def __init__(self) -> None:
        self.frames = 0
        self.loudest = -math.inf  # dBFS
        self.recent: list[float] = []  # the levels of the last 25 frames (half a second)
        self._task: asyncio.Task[None] | None = None

    def listen(self, track: MediaStreamTrack) -> None:
        self._task = asyncio.ensure_future(self._listen(track))

    async def _listen(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                level = level_dbfs(await track.recv())  # type: ignore[arg-type]
                self.frames += 1
                self.loudest = max(self.loudest, level)
                self.recent = [*self.recent, level][-25:]

    def hears_voice(self) -> bool:
        """Whether a voice (above -40 dBFS) is among the last frames."""
        return any(level > -40 for level in self.recent)

    def hears_silence(self) -> bool:
        return len(self.recent) == 25 and all(level < -60 for level in self.recent)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


@dataclass
class Run:
    session_id: str
    final: dict[str, Any]
    statuses: list[dict[str, Any]]
    camera: SyntheticCamera


async def identify(
    served: ServedApp,
    browser: httpx.AsyncClient,
    performer: Performer,
    *,
    session_id: str,
    csrf: str,
    timeout: float = 150.0,
    code: bool = True,
    phone: str = PHONE,
    microphone: bool = True,
    hearing: Hearing | None = None,
) -> Run:
    """Stream the performer over WebRTC (their voice too, unless ``microphone`` is false), follow
    the steps, read back the SMS code; returns the session's last status (with ``result_url``
    once decided). What the server sends back to hear goes to ``hearing``."""
    headers = {"X-CSRF-Token": csrf}
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    camera = SyntheticCamera(performer)
    pc.addTrack(camera)
    if microphone:
        pc.addTrack(SyntheticMicrophone())
    if hearing is not None:
        pc.on("track", lambda track: hearing.listen(track) if track.kind == "audio" else None)
    statuses: list[dict[str, Any]] = []
    try:
        await pc.setLocalDescription(await pc.createOffer())
        answer = await browser.post(
            f"/videoid/{session_id}/offer",
            json={"sdp": pc.localDescription.sdp, "type": pc.localDescription.type},
            headers=headers,
        )
        assert answer.status_code == 200, answer.text
        await pc.setRemoteDescription(RTCSessionDescription(**answer.json()))
        deadline = time.monotonic() + timeout
        sent_code = False
        while time.monotonic() < deadline:
            status = (await browser.get(f"/videoid/{session_id}/status")).json()
            statuses.append(status)
            if "result_url" in status:
                return Run(session_id, status, statuses, camera)
            performer.follow(status)
            if status["status"] == "awaiting_code" and "sms" in status and code and not sent_code:
                sent_code = True
                done = await browser.post(
                    f"/videoid/{session_id}/code",
                    json={"code": sms_code(served, phone=phone)},
                    headers=headers,
                )
                assert done.status_code == 200, done.text
            await asyncio.sleep(0.2)  # the page polls its status the same way
        raise AssertionError(f"no decision within {timeout} s; last status {statuses[-1:]}")
    finally:
        await pc.close()
        if hearing is not None:
            await hearing.close()


class LiveViewer:
    """The agent's browser watching a session live: an aiortc peer connection that receives video
    and sound (what ``templates/static/agent_live.js`` offers), keeping a few of the frames it gets
    and the loudest sound; with ``microphone``, it sends the agent's voice (an 880 Hz tone, an
    octave above the person's) on the audio section, as the page does when the agent has one."""

    def __init__(
        self, *, keep_every: int = 5, keep: int = 24, sound: bool = True, microphone: bool = False
    ) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTransceiver("video", direction="recvonly")
        self.microphone: SyntheticMicrophone | None = None
        if sound and microphone:
            self.microphone = SyntheticMicrophone(amplitude=0.2, frequency=AGENT_PITCH)
            self.pc.addTrack(self.microphone)  # sendrecv: it hears the person and talks
        elif sound:
            self.pc.addTransceiver("audio", direction="recvonly")
        self.received = 0
        self.heard = 0  # sound frames
        self.loudest = -math.inf  # dBFS
        self.kept: list[np.ndarray] = []
        self.ended = asyncio.Event()
        self._keep_every, self._keep = keep_every, keep
        self._reader: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._listener = asyncio.ensure_future(self._listen(track))
        else:
            self._reader = asyncio.ensure_future(self._read(track))

    async def _listen(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                self.heard += 1
                self.loudest = max(self.loudest, level_dbfs(frame))  # type: ignore[arg-type]

    async def _read(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                self.received += 1
                if self.received % self._keep_every == 0:
                    self.kept = [*self.kept, frame.to_ndarray(format="bgr24")][-self._keep :]  # type: ignore[union-attr]
        except MediaStreamError:
            pass
        finally:
            self.ended.set()

    async def offer(self) -> dict[str, str]:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return {"sdp": self.pc.localDescription.sdp, "type": self.pc.localDescription.type}

    async def watch(self, agent: httpx.AsyncClient, session_id: str, csrf: str) -> httpx.Response:
        """Offer, post it to ``/agent/sessions/{id}/watch``, apply the answer (when there is one)."""
        answer = await agent.post(
            f"/agent/sessions/{session_id}/watch", json=await self.offer(), headers={"X-CSRF-Token": csrf}
        )
        if answer.status_code == 200:
            await self.pc.setRemoteDescription(RTCSessionDescription(**answer.json()))
        return answer

    async def wait_for_frames(self, count: int, *, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.received < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.received} frames within {timeout} s, expected {count}; connection "
                    f"{self.pc.connectionState}, ICE {self.pc.iceConnectionState}, track {self._reader}"
                )
            await asyncio.sleep(0.1)

    async def close(self) -> None:
        await self.pc.close()
        for task in (self._reader, self._listener):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def recvonly_offer() -> dict[str, str]:
    """A receive-only video offer as the agent's page makes one (its connection closed again)."""
    viewer = LiveViewer()
    try:
        return await viewer.offer()
    finally:
        await viewer.close()


async def watch_once(agent: httpx.AsyncClient, session_id: str, csrf: str) -> httpx.Response:
    """One watch request from a viewer that is closed again at once (for refusals)."""
    viewer = LiveViewer()
    try:
        return await viewer.watch(agent, session_id, csrf)
    finally:
        await viewer.close()


async def broken_offers(*, direction: str) -> list[dict[str, str]]:
    """Offers (one video section, ``direction`` from the offerer's side) each with one line broken
    the way that makes aiortc's parser fail other than with ``ValueError``: a truncated media line
    (an assertion), an RTX format without its rtpmap (``RuntimeError``), an ``rtcp-fb`` without a
    value (``AttributeError``), ``setup`` without a role (``KeyError``)."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    if direction == "sendonly":
        pc.addTransceiver("video", direction="sendonly")
    else:
        pc.addTransceiver("video", direction="recvonly")
    try:
        await pc.setLocalDescription(await pc.createOffer())
        lines = pc.localDescription.sdp.split("\r\n")
    finally:
        await pc.close()
    media = next(i for i, line in enumerate(lines) if line.startswith("m=video"))
    rtx = next(i for i, line in enumerate(lines) if " rtx/" in line)
    feedback = next(i for i, line in enumerate(lines) if line.startswith("a=rtcp-fb:"))
    setup = next(i for i, line in enumerate(lines) if line.startswith("a=setup:"))
    broken = []
    for index, replacement in (
        (media, "m=video 9 UDP/TLS/RTP/"),
        (rtx, None),
        (feedback, "a=rtcp-fb"),
        (setup, "a=setup"),
    ):
        changed = list(lines)
        if replacement is None:
            del changed[index]
        else:
            changed[index] = replacement
        broken.append({"sdp": "\r\n".join(changed), "type": "offer"})
    return broken
