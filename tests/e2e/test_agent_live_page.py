"""The agent's live view in Chromium: an agent takes a running agent-led session from the console,
the page connects by itself and plays the person's video and sound, sends the agent's microphone
(a file of speech-like sound through Chromium's fake capture device) for the person to hear, shows
the session's live status beside it, and goes on to the review page once the session's checks are
done.

The person is an aiortc client with the synthetic webcam (``tests/support/webcam.py``) on a thread
of its own; they wait with their document until the agent's page has shown the video playing.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Browser, expect

from idp import tenants
from tests.support.agents import make_agents, session_cookie
from tests.support.browser import CHROMIUM, LAUNCH_ARGS, on_browser_thread
from tests.support.server import ServedApp, serve, settings_factory_for
from tests.support.videoid_client import Hearing, advanced_person, identify, signed_in, start_session
from tests.support.webcam import Led
from videoid import policy, records
from videoid.liveness import Challenge
from videoid.policy import Mode, TenantPolicy
from videoid.records import Status

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served_live(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path, tls: tuple[Path, Path]
) -> Iterator[ServedApp]:
    directory = tmp_path_factory.mktemp("agent-live")
    shutil.copy(sqlite_template, directory / "idp.db")
    url = f"sqlite+aiosqlite:///{directory / 'idp.db'}"
    with serve(settings_factory_for(url, directory), tls=tls, outbox=directory / "mail") as app:
        app.state.videoid.challenges = lambda: (Challenge.TURN_RIGHT, Challenge.TURN_LEFT)
        yield app


class Person(threading.Thread):
    """The person's side of the session, on its own event loop."""

    def __init__(self, served: ServedApp, person: Any, performer: Led) -> None:
        super().__init__(name="person", daemon=True)
        self.served, self.person, self.performer = served, person, performer
        self.session_id: str | None = None
        self.started = threading.Event()
        self.final: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self.hearing = Hearing()  # what the person's speaker plays

    def run(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.started.set()

    async def _run(self) -> None:
        async with signed_in(self.served, self.person) as browser:
            session_id, csrf = await start_session(browser)
            self.session_id = session_id
            self.started.set()
            done = await identify(
                self.served, browser, self.performer, session_id=session_id, csrf=csrf, hearing=self.hearing
            )
            self.final = done.final


def speech_like(path: Path, *, seconds: float = 3.0, rate: int = 48000) -> Path:
    """A WAV file the agent's fake microphone plays in a loop: a tone gliding between 200 and
    600 Hz in syllables of a quarter second (a steady tone is what noise suppression removes)."""
    t = np.arange(int(seconds * rate)) / rate
    pitch = 400 + 200 * np.sin(2 * np.pi * 0.7 * t)
    envelope = 0.5 + 0.5 * np.abs(np.sin(2 * np.pi * 2 * t))
    samples = 0.5 * envelope * np.sin(2 * np.pi * np.cumsum(pitch) / rate)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((samples * 32767).astype("<i2").tobytes())
    return path


def until(check: Any, what: str, *, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.1)


def status_of(served: ServedApp, session_id: str) -> Status:
    return served.run(served.state.db.read(lambda conn: records.get(conn, session_id))).status


@on_browser_thread
def test_the_agent_sees_the_person_live_and_then_reviews(
    browser: Browser, served_live: ServedApp, tmp_path: Path
) -> None:
    served = served_live
    person = advanced_person(served)
    tenant = served.run(served.state.db.read(lambda conn: tenants.get(conn, person.tenant_id)))
    served.write(lambda tx: policy.save(tx, tenant_id=tenant.id, policy=TenantPolicy(mode=Mode.AGENT_LED)))
    agent = served.user(tenant, "agent@example.com", given_name="Ema")
    make_agents(served, tenant.id, agent)
    performer = Led(tmp_path, present=True)
    side = Person(served, person, performer)
    side.start()
    # the agent's browser: host candidates as IP addresses, as the person's page test does, and a
    # microphone that plays a file
    voice = speech_like(tmp_path / "agent.wav")
    chromium = browser.browser_type.launch(
        executable_path=CHROMIUM,
        args=[
            *LAUNCH_ARGS,
            "--disable-features=WebRtcHideLocalIpsWithMdns",
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={voice}",
        ],
    )
    try:
        assert side.started.wait(30) and side.session_id is not None, side.error
        session_id = side.session_id
        deadline = time.monotonic() + 30
        while status_of(served, session_id) is not Status.CAPTURING and time.monotonic() < deadline:
            time.sleep(0.1)  # the person's page is connecting
        assert status_of(served, session_id) is Status.CAPTURING, side.error
        context = chromium.new_context(ignore_https_errors=True, locale="en-GB")
        context.add_cookies(
            [
                {
                    "name": "__Host-idp_session",
                    "value": session_cookie(served, agent),
                    "url": served.issuer + "/",
                }
            ]
        )
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.goto(served.issuer + "/agent")
        page.click("#next")
        assert page.url.endswith(f"/agent/sessions/{session_id}/live")
        # the page connects by itself once the video runs, and plays it
        expect(page.locator("#connection")).to_have_attribute("data-state", "live", timeout=30_000)
        video = page.locator("#live-video").element_handle()
        page.wait_for_function(
            "v => v.videoWidth > 0 && v.currentTime > 0 && !v.paused", arg=video, timeout=30_000
        )
        size = page.evaluate("v => [v.videoWidth, v.videoHeight]", video)
        assert size == [640, 480], size
        expect(page.locator("#live-state")).to_have_text("Capturing")
        # the person's sound arrives with the picture; the agent turns it on with a click
        page.wait_for_function(
            "v => v.srcObject && v.srcObject.getAudioTracks().length === 1"
            " && v.srcObject.getVideoTracks().length === 1",
            arg=video,
            timeout=10_000,
        )
        expect(page.locator("#live-sound")).to_have_text("speaking", timeout=10_000)
        assert page.evaluate("v => v.muted", video)
        page.get_by_role("button", name="Turn the sound on").click()
        assert not page.evaluate("v => v.muted", video)
        expect(page.locator("#sound")).to_have_attribute("aria-pressed", "true")
        page.get_by_role("button", name="Turn the sound off").click()
        assert page.evaluate("v => v.muted", video)
        # the person hears the agent; muted, the agent's microphone sends silence
        expect(page.locator("#live-hears")).to_have_text("yes", timeout=10_000)
        hearing = side.hearing
        until(lambda: hearing.loudest > -40, "the person hears the agent")
        page.get_by_role("button", name="Mute my microphone").click()
        expect(page.locator("#mute")).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#live-hears")).to_have_text("no, your microphone is muted")
        until(hearing.hears_silence, "the person hears silence")
        page.get_by_role("button", name="Unmute my microphone").click()
        until(hearing.hears_voice, "the person hears the agent again")
        expect(page.locator("#live-step")).not_to_have_text("\u2013")  # the empty dash
        assert served.state.videoid.viewers.get(session_id) is not None
        # the agent asks for the document; when the checks are done the review page opens
        performer.document_shown = True
        expect(page.locator("#document-number")).to_have_text("PA1234567", timeout=150_000)
        assert page.url.endswith(f"/agent/sessions/{session_id}")
        assert not [p for p in problems if "Content Security Policy" in p], problems
    finally:
        performer.document_shown = True
        side.join(timeout=160)
        chromium.close()
    assert side.error is None, side.error
    assert side.final is not None and side.final["status"] == "awaiting_review", side.final
    assert served.state.videoid.viewers.get(session_id) is None  # closed with the video
