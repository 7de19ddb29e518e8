"""The person's video identification page in Chromium, with a fake webcam playing a .y4m file.

The file (made in the test's temporary directory, never committed) shows the speaker of the test
clip looking at the camera and turning his head, then a passport with his photo held still, then
tilted; Chromium loops it. The page checks the camera, connects over WebRTC, follows the steps
and takes the SMS code; the test types the code from the SMS outbox and waits for the decision.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Connection, select

from idp import proofing
from idp.storage import tables
from tests.support.browser import CHROMIUM, LAUNCH_ARGS, on_browser_thread
from tests.support.server import ServedApp, serve, settings_factory_for
from tests.support.videoid_client import advanced_person, signed_in_cookie, sms_code
from tests.support.webcam import Performer, SyntheticMicrophone, write_y4m, y4m_sequence
from videoid import evidence, policy
from videoid.liveness import Challenge
from videoid.policy import Mode, TenantPolicy

FPS = 15
pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served_videoid(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path, tls: tuple[Path, Path]
) -> Iterator[ServedApp]:
    directory = tmp_path_factory.mktemp("videoid-page")
    shutil.copy(sqlite_template, directory / "idp.db")
    url = f"sqlite+aiosqlite:///{directory / 'idp.db'}"
    with serve(settings_factory_for(url, directory), tls=tls, outbox=directory / "mail") as app:
        app.state.videoid.challenges = lambda: (Challenge.TURN_RIGHT, Challenge.TURN_LEFT)
        yield app


@pytest.fixture(scope="module")
def camera_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("camera")
    path = directory / "webcam.y4m"
    frames = write_y4m(path, y4m_sequence(Performer(directory), fps=FPS), fps=FPS)
    assert frames > 200
    return path


def with_fake_devices(browser: Browser, camera_file: Path) -> Browser:
    """Chromium whose camera plays ``camera_file`` (and whose fake microphone beeps), with host
    candidates as IP addresses."""
    return browser.browser_type.launch(
        executable_path=CHROMIUM,
        args=[
            *LAUNCH_ARGS,
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={camera_file}",
            "--disable-features=WebRtcHideLocalIpsWithMdns",
        ],
    )


def signed_in_page(camera: Browser, served: ServedApp, cookie: str) -> Page:
    """A page of ``camera`` signed in with ``cookie``, in English."""
    context = camera.new_context(ignore_https_errors=True, locale="en-GB")
    context.add_cookies([{"name": "__Host-idp_session", "value": cookie, "url": served.issuer + "/"}])
    return context.new_page()


@on_browser_thread
def test_the_page_takes_a_person_through_to_the_decision(
    browser: Browser, served_videoid: ServedApp, camera_file: Path
) -> None:
    served = served_videoid
    person = advanced_person(served)
    cookie = signed_in_cookie(served, person)
    camera = with_fake_devices(browser, camera_file)
    try:
        page = signed_in_page(camera, served, cookie)
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.goto(served.issuer + "/videoid/start")
        page.get_by_label(re.compile("I agree that the session is recorded")).check()
        page.get_by_role("button", name="Agree and continue").click()
        expect(page.locator("#check-camera")).to_have_attribute("data-state", "ok", timeout=15_000)
        expect(page.locator("#check-resolution")).to_have_attribute("data-state", "ok")
        expect(page.locator("#check-resolution .value")).to_have_text("640\u00d7480")
        expect(page.locator("#check-light")).to_have_attribute("data-state", re.compile("ok|problem"))
        # a fully automated session: nobody listens, so the page asks for no microphone
        expect(page.locator("#check-microphone")).to_have_count(0)
        page.get_by_role("button", name="Start").click()
        expect(page.locator("#steps")).to_be_visible(timeout=20_000)
        expect(page.locator("#code-form")).to_be_visible(timeout=150_000)
        expect(page.locator("#code-phone")).to_have_text(re.compile(r"\+386"))
        page.locator("#code").fill(sms_code(served))
        page.get_by_role("button", name="Confirm").click()
        expect(page.locator("#result")).to_have_attribute(
            "data-outcome", re.compile("approved|rejected"), timeout=20_000
        )
        assert page.url.endswith("/result")
        if page.locator("#result").get_attribute("data-outcome") != "approved":
            steps = served.run(served.state.db.read(lambda conn: step_events(conn, person.id)))
            sid, secret = page.url.split("/videoid/", 1)[1].split("/", 1)[0], served.settings.secret_key
            report = served.run(
                served.state.db.read(lambda conn: evidence.report_of(conn, secret=secret, session_id=sid))
            )
            said = (
                {k: report.get(k) for k in ("automated", "face", "liveness", "document")} if report else None
            )
            raise AssertionError(f"rejected: {said}; steps {steps}")
        assert not [p for p in problems if "Content Security Policy" in p], problems
    finally:
        camera.close()
    # no sound in the recording
    record = served.run(served.state.db.read(lambda conn: proofing.current(conn, person.id)))
    assert record is not None
    secret, session_id = served.settings.secret_key, record.evidence_id
    report = served.run(
        served.state.db.read(lambda conn: evidence.report_of(conn, secret=secret, session_id=session_id))
    )
    assert report is not None and report["recording"]["audio"] is False, report["recording"]


def started_with_microphone(camera: Browser, served: ServedApp, mode: Mode) -> tuple[Page, str]:
    """A new person of a tenant in ``mode`` who consented, passed the device check with a
    microphone and started: their page and the session's id."""
    person = advanced_person(served)
    served.write(lambda tx: policy.save(tx, tenant_id=person.tenant_id, policy=TenantPolicy(mode=mode)))
    page = signed_in_page(camera, served, signed_in_cookie(served, person))
    page.goto(served.issuer + "/videoid/start")
    page.get_by_label(re.compile("I agree that the session is recorded")).check()
    page.get_by_role("button", name="Agree and continue").click()
    expect(page.locator("#check-microphone")).to_have_attribute("data-state", "ok", timeout=15_000)
    session_id = page.url.split("/videoid/", 1)[1].split("/", 1)[0]
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#steps")).to_be_visible(timeout=20_000)
    return page, session_id


@on_browser_thread
def test_where_an_agent_listens_the_page_sends_the_microphone(
    browser: Browser, served_videoid: ServedApp, camera_file: Path
) -> None:
    """A reviewed session: the device check lists the microphone (Chromium's fake one), and the
    sound reaches the server with the picture."""
    served = served_videoid
    camera = with_fake_devices(browser, camera_file)
    try:
        page, session_id = started_with_microphone(camera, served, Mode.REVIEWED)
        expect(page.locator("#check-microphone .value")).not_to_have_text("…")
        deadline = time.monotonic() + 20
        while (served.state.videoid.sound(session_id) or {}).get("microphone") is not True:
            assert time.monotonic() < deadline, served.state.videoid.sound(session_id)
            time.sleep(0.2)
        receiver = served.state.videoid.live[session_id].receiver
        assert receiver is not None
        while receiver.sound.frames < 50:  # a second of sound, decoded on the server
            assert time.monotonic() < deadline, receiver.sound
            time.sleep(0.2)
    finally:
        camera.close()


# the RMS level (dBFS) of what an audio element plays, measured over a second with Web Audio
LEVEL_OF = """async (audio) => {
  const context = new AudioContext();
  await context.resume();
  const analyser = context.createAnalyser();
  analyser.fftSize = 2048;
  context.createMediaStreamSource(audio.srcObject).connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  let loudest = -Infinity;
  for (let i = 0; i < 20; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const x of samples) sum += x * x;
    loudest = Math.max(loudest, 10 * Math.log10(sum / samples.length || 1e-12));
  }
  await context.close();
  return loudest;
}"""


@on_browser_thread
def test_where_an_agent_leads_the_person_hears_them(
    browser: Browser, served_videoid: ServedApp, camera_file: Path
) -> None:
    """An agent-led session: the page says an agent will speak, takes the sound the server sends
    back, and plays the agent's voice once one talks (an aiortc tone put on the session's
    :class:`~videoid.sound.Voice` on the server, as an agent's live view does)."""
    served = served_videoid
    camera = with_fake_devices(browser, camera_file)
    try:
        page, session_id = started_with_microphone(camera, served, Mode.AGENT_LED)
        line = page.locator("#agent-line")
        expect(line).to_have_text(re.compile("An agent leads this session"))
        deadline = time.monotonic() + 20
        while (served.state.videoid.sound(session_id) or {}).get("hears_agent") is not True:
            assert time.monotonic() < deadline, served.state.videoid.sound(session_id)
            time.sleep(0.2)
        speaker = page.locator("#agent-voice").element_handle()
        page.wait_for_function(
            "a => a.srcObject && a.srcObject.getAudioTracks().length === 1", arg=speaker, timeout=10_000
        )
        quiet = page.evaluate(LEVEL_OF, speaker)
        assert quiet < -60, quiet  # silence until an agent talks

        async def agent_talks() -> bool:
            receiver = served.state.videoid.live[session_id].receiver
            return receiver is not None and receiver.talk(SyntheticMicrophone(amplitude=0.2))

        assert served.run(agent_talks())
        expect(line).to_have_attribute("data-talking", "yes", timeout=10_000)
        expect(line).to_have_text("The agent can speak with you now.")
        loud = page.evaluate(LEVEL_OF, speaker)
        assert loud > -30, loud  # the tone, at -17 dBFS when sent
    finally:
        camera.close()


def step_events(conn: Connection, eid_id: str) -> list[tuple[str, object]]:
    a = tables.audit_events.c
    query = select(a.event_type, a.details).where((a.eid_id == eid_id) & a.event_type.like("videoid.step%"))
    return [(r.event_type, r.details) for r in conn.execute(query.order_by(a.seq))]
