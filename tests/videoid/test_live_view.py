"""The agent's live view of an agent-led session (issue 4 item 6), through the served app.

One aiortc client is the person's webcam (:class:`tests.support.webcam.SyntheticCamera`), a
second one the agent's browser (:class:`tests.support.videoid_client.LiveViewer`, receive-only
like ``agent_live.js``). The person is led by the agent: they sit down in front of the camera
once the agent watches, and show their document when the agent has done what the test checks
while the video runs. The agent sees the person's face (matched against the document photo with
:mod:`videoid.faces`) while the session's own analysis carries on to its end.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import re
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aioice.ice
import aioice.stun
import av
import cv2
import httpx
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from idp import audit, eids, tenants
from idp.errors import VideoIdError
from idp.storage import tables
from idp.storage.database import Tx
from tests.support.agents import make_agents
from tests.support.flows import form_value
from tests.support.server import ServedApp
from tests.support.videoid_client import (
    AGENT_PITCH,
    AIOICE_CONSENT_FAILURES,
    Hearing,
    LiveViewer,
    advanced_person,
    broken_offers,
    identify,
    recvonly_offer,
    signed_in,
    start_session,
    watch_once,
)
from tests.support.webcam import HEIGHT, WIDTH, Led, pitch_amplitude
from videoid import evidence, faces, policy, records
from videoid.live_view import check_watch_offer
from videoid.policy import Mode, TenantPolicy
from videoid.records import Session, Status
from videoid.sound import level_dbfs
from videoid.webrtc import SignallingError

T = TypeVar("T")


@dataclasses.dataclass
class People:
    person: eids.EID
    agent: eids.EID
    other_agent: eids.EID
    outsider: eids.EID


def agent_led_tenant(served: ServedApp) -> People:
    person = advanced_person(served)
    tenant = served.run(served.state.db.read(lambda conn: tenants.get(conn, person.tenant_id)))
    served.write(lambda tx: policy.save(tx, tenant_id=tenant.id, policy=TenantPolicy(mode=Mode.AGENT_LED)))
    people = People(
        person,
        served.user(tenant, "agent1@example.com", given_name="Ema"),
        served.user(tenant, "agent2@example.com", given_name="Luka"),
        served.user(tenant, "someone@example.com"),
    )
    make_agents(served, tenant.id, people.agent, people.other_agent)
    return people


async def eventually(check: Callable[[], Awaitable[bool]], what: str, *, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.1)


def session_of(served: ServedApp, session_id: str) -> Session:
    return served.run(served.state.db.read(lambda conn: records.get(conn, session_id)))


def trail(served: ServedApp, session_id: str) -> list[dict[str, Any]]:
    return served.run(served.state.db.read(lambda conn: audit.export_transaction(conn, session_id)))


async def take_next(agent: httpx.AsyncClient) -> httpx.Response:
    page = await agent.get("/agent")
    assert page.status_code == 200, page.text[:500]
    return await agent.post("/agent/next", data={"csrf_token": form_value(page.text, "csrf_token")})


def page_csrf(html: str) -> str:
    found = re.search(r'data-csrf="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def best_match(frames: list[np.ndarray], portrait: faces.EncodedFace) -> float | None:
    """The smallest distance of a face in ``frames`` to the document photo's."""
    best = None
    for frame in frames:
        try:
            seen = faces.encode(frame)
        except faces.FaceError:
            continue
        d = faces.distance(seen.embedding, portrait.embedding)
        best = d if best is None else min(best, d)
    return best


async def test_the_agent_watches_the_person_live_while_the_checks_run(
    videoid_app: ServedApp, performer_dir: Path
) -> None:
    served = videoid_app
    viewers = served.state.videoid.viewers
    people = agent_led_tenant(served)
    person = Led(performer_dir)
    portrait = faces.encode(cv2.imread(str(performer_dir / "portrait.jpg")))
    watching: list[LiveViewer] = []
    async with (
        signed_in(served, people.person) as browser,
        signed_in(served, people.agent) as agent,
        signed_in(served, people.other_agent) as other,
    ):
        session_id, csrf = await start_session(browser)
        hearing = Hearing()
        run = asyncio.ensure_future(
            identify(served, browser, person, session_id=session_id, csrf=csrf, hearing=hearing)
        )
        try:
            await eventually(
                lambda: _is(served, session_id, Status.CAPTURING), "the person's video arrives", timeout=20
            )
            # the running agent-led session goes to an agent first, and to them only
            taken = await take_next(agent)
            live_url = f"/agent/sessions/{session_id}/live"
            assert taken.status_code == 303 and taken.headers["location"] == live_url
            assert (await take_next(other)).headers["location"] == "/agent?notice=empty"
            queue = (await agent.get("/agent")).text
            assert f'id="continue-live" href="{live_url}"' in queue and "conducted by you" in queue
            assert "an agent conducts it" in (await other.get("/agent")).text
            # while it runs, its page is the live view
            early = await agent.get(f"/agent/sessions/{session_id}")
            assert early.status_code == 303 and early.headers["location"] == live_url
            page = await agent.get(live_url)
            assert page.status_code == 200 and 'id="live-video"' in page.text
            agent_csrf = page_csrf(page.text)
            status_url = f"/agent/sessions/{session_id}/live/status"
            await eventually(
                lambda: _json_says(agent, status_url, "video", True), "the status says the video runs"
            )

            first = LiveViewer()
            watching.append(first)
            answer = await first.watch(agent, session_id, agent_csrf)
            assert answer.status_code == 200, answer.text
            assert answer.json()["type"] == "answer" and "a=sendonly" in answer.json()["sdp"]
            await first.wait_for_frames(5)
            # the agent tells the person to sit down: the agent sees them, as the document shows them
            person.present = True
            seen_from = first.received
            await first.wait_for_frames(seen_from + 50)
            frames = list(first.kept)
            assert frames and all(f.shape == (HEIGHT, WIDTH, 3) for f in frames)
            distance = await asyncio.to_thread(best_match, frames[-8:], portrait)
            assert distance is not None and distance <= faces.MATCH_THRESHOLD, distance
            status = (await agent.get(status_url)).json()
            assert status["status"] == "capturing" and status["viewer"] == "connected", status
            # the agent hears the person too (they will read out their document number); this
            # agent has no microphone, so the person hears silence
            assert status["sound"] == {
                "microphone": True,
                "voice": True,
                "hears_agent": True,
                "agent_talking": False,
            }, status
            assert first.heard > 0 and first.loudest > -30, (first.heard, first.loudest)
            await eventually(_async(hearing.hears_silence), "the person hears silence")

            # while it runs: another agent, and offers that do not only receive, are refused
            other_page = await other.get(live_url)
            assert other_page.status_code == 403
            refused = await watch_once(other, session_id, agent_csrf)
            assert refused.status_code == 403, refused.text
            for offer in (
                {"sdp": "v=0\r\nnot sdp", "type": "offer"},
                {"sdp": (await recvonly_offer())["sdp"], "type": "answer"},
                {"sdp": _sending_offer(), "type": "offer"},
                {"sdp": "v=0\r\n" + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\n", "type": "offer"},
                {"sdp": 7, "type": "offer"},
                *await broken_offers(direction="recvonly"),
            ):
                bad = await agent.post(
                    f"/agent/sessions/{session_id}/watch", json=offer, headers={"X-CSRF-Token": agent_csrf}
                )
                assert bad.status_code == 400 and bad.json()["error"] == "invalid_offer", bad.text
            assert viewers.get(session_id) is not None and len(viewers) == 1  # the first still watches

            # a second watch (a reload, now with the agent's microphone) replaces the first;
            # the person hears the agent
            second = LiveViewer(microphone=True)
            watching.append(second)
            assert (await second.watch(agent, session_id, agent_csrf)).status_code == 200
            await second.wait_for_frames(10)
            await asyncio.wait_for(first.ended.wait(), 20)
            assert len(viewers) == 1
            await eventually(_async(hearing.hears_voice), "the person hears the agent")
            assert hearing.loudest > -30, hearing.loudest
            await asyncio.sleep(2.0)  # the agent talks for two seconds
            await eventually(
                lambda: _json_says_sound(agent, status_url, "agent_talking", True), "the status says so"
            )
            # the agent leaves: their connection's end frees the server's side, and the person
            # hears silence again
            await second.close()
            await eventually(lambda: _none(viewers, session_id), "the server closes the viewer")
            await eventually(_async(hearing.hears_silence), "the person hears silence again")
            await eventually(
                lambda: _json_says_sound(agent, status_url, "agent_talking", False), "the status says so"
            )
            ended = await agent.post(
                f"/agent/sessions/{session_id}/watch/end", headers={"X-CSRF-Token": agent_csrf}
            )
            assert ended.status_code == 200 and ended.json() == {"stopped": False}

            # back again; then the person shows the document and the session runs to its end
            third = LiveViewer()
            watching.append(third)
            assert (await third.watch(agent, session_id, agent_csrf)).status_code == 200
            await third.wait_for_frames(10)
            person.document_shown = True
            done = await asyncio.wait_for(run, 150)
        finally:
            for viewer in watching:
                await viewer.close()
            if not run.done():
                run.cancel()
        assert done.final["status"] == "awaiting_review", done.final
        assert done.final["reasons"] == [], done.final  # every automated check passed
        # the video ended with the capture: so did the agent's view
        await asyncio.wait_for(third.ended.wait(), 30)
        await eventually(lambda: _none(viewers, session_id), "the viewer closes with the video")
        gone = await watch_once(agent, session_id, agent_csrf)
        assert gone.status_code == 409 and gone.json()["error"] == "not_live"
        status = (await agent.get(status_url)).json()
        assert status == {"status": "awaiting_review", "review_url": f"/agent/sessions/{session_id}"}
        assert (await agent.get(live_url)).headers["location"] == f"/agent/sessions/{session_id}"
        # it waits for the agent who conducted it, who decides it on the review page
        queue = (await agent.get("/agent")).text
        assert f'id="continue-review" href="/agent/sessions/{session_id}"' in queue
        assert (await take_next(other)).headers["location"] == "/agent?notice=empty"
        review = await agent.get(f"/agent/sessions/{session_id}")
        assert review.status_code == 200 and "NOVAK" in review.text

    assert session_of(served, session_id).review["assigned_to"] == people.agent.id
    # an agent listens in this mode: the person's voice is in the recording with their picture
    secret = served.settings.secret_key
    items = served.run(
        served.state.db.read(lambda conn: evidence.items_of(conn, secret=secret, session_id=session_id))
    )
    recording = next(i for i in items if i.kind is evidence.Kind.RECORDING)
    with av.open(io.BytesIO(recording.data)) as container:
        assert sorted(stream.type for stream in container.streams) == ["audio", "video"]
        sound = container.streams.audio[0]
        assert sound.codec_context.name == "aac"
        frames = list(container.decode(sound))
    loudest = max(level_dbfs(frame) for frame in frames)
    assert loudest > -30, loudest  # the tone the client's microphone sent, not silence
    # the conversation: the person's voice (440 Hz) throughout, the agent's (880 Hz) mixed in
    # while the second viewer talked, and only then
    person_said = [pitch_amplitude(frame, 440.0) for frame in frames]
    agent_said = [pitch_amplitude(frame, AGENT_PITCH) for frame in frames]
    assert max(person_said) > 0.05 and max(agent_said) > 0.1, (max(person_said), max(agent_said))
    talking = sum(a > 0.1 for a in agent_said) * frames[0].samples / frames[0].sample_rate
    # seconds with the agent's voice in the recording, of the two and more they talked: what the
    # agent's connection delivered late, in a burst, beyond Voice.MAX_LATENCY is dropped
    assert 1.0 < talking < 30, talking
    report = served.run(
        served.state.db.read(lambda conn: evidence.report_of(conn, secret=secret, session_id=session_id))
    )
    assert report is not None and report["recording"]["audio"] is True
    assert report["recording"]["agent_voice"] is True
    events = trail(served, session_id)
    kinds = [e["event_type"] for e in events]
    assigned = [e for e in events if e["event_type"] == "videoid.review_assigned"]
    assert len(assigned) == 1 and assigned[0]["details"] == {"agent": people.agent.id, "live": True}
    watched = [e for e in events if e["event_type"] == "videoid.live_watched"]
    assert len(watched) == 3  # first, the replacement, and back again
    for event in watched:
        assert event["details"] == {"agent": people.agent.id}
        assert event["transaction_id"] == session_id and event["eid_id"] == people.person.id
        assert event["process_state"] == "capturing" and event["success"]
    assert kinds.index("videoid.consent_given") < kinds.index("videoid.live_watched")
    assert kinds.index("videoid.live_watched") < kinds.index("videoid.queued_for_review")


async def test_the_tests_connections_outlast_stalls_of_their_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both ends of the connections above run in this process, which stalls under load: an end
    that answers consent checks later than aioice waits for them, for more checks in a row than
    end a connection, leaves it up (tests.support.videoid_client.consent_outlasting_stalls).
    Faster than under load: a check every 20 ms with 50 ms for its answer, and the answering end
    (on its own event loop, as the served app is) stalls for a second."""
    interval, wait, stall = 0.02, 0.05, 1.0
    assert stall > AIOICE_CONSENT_FAILURES * (1.2 * interval + wait)  # longer than aioice would wait
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", interval)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="answering", daemon=True)
    thread.start()

    def there(coro: Awaitable[T]) -> Awaitable[T]:
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))  # type: ignore[arg-type]

    async def make_answerer() -> RTCPeerConnection:
        return RTCPeerConnection(RTCConfiguration(iceServers=[]))

    offerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    answerer = await there(make_answerer())
    channel = offerer.createDataChannel("still there?")
    arrived: asyncio.Queue[object] = asyncio.Queue()
    here = asyncio.get_running_loop()

    @answerer.on("datachannel")
    def _opened(incoming: Any) -> None:
        incoming.on("message", lambda message: here.call_soon_threadsafe(arrived.put_nowait, message))

    try:
        await offerer.setLocalDescription(await offerer.createOffer())
        await there(answerer.setRemoteDescription(offerer.localDescription))
        await there(answerer.setLocalDescription(await there(answerer.createAnswer())))
        await offerer.setRemoteDescription(answerer.localDescription)
        await eventually(_async(lambda: channel.readyState == "open"), "the connection is up")
        monkeypatch.setattr(aioice.stun, "RETRY_RTO", wait)  # read by each check from now on
        loop.call_soon_threadsafe(time.sleep, stall)  # the answering end's event loop stalls
        await there(asyncio.sleep(0))  # runs once the stall is over
        assert (offerer.connectionState, answerer.connectionState) == ("connected", "connected")
        channel.send("yes")
        assert await asyncio.wait_for(arrived.get(), 5) == "yes"
    finally:
        await offerer.close()
        await there(answerer.close())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


async def _is(served: ServedApp, session_id: str, status: Status) -> bool:
    session = await asyncio.wrap_future(
        asyncio.run_coroutine_threadsafe(
            served.state.db.read(lambda conn: records.get(conn, session_id)), served.loop
        )
    )
    return session.status is status


async def _json_says(client: httpx.AsyncClient, url: str, key: str, value: object) -> bool:
    answer = await client.get(url)
    return bool(answer.status_code == 200 and answer.json().get(key) == value)


async def _json_says_sound(client: httpx.AsyncClient, url: str, key: str, value: object) -> bool:
    answer = await client.get(url)
    return bool(answer.status_code == 200 and (answer.json().get("sound") or {}).get(key) == value)


def _async(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def checked() -> bool:
        return check()

    return checked


async def _none(viewers: Any, session_id: str) -> bool:
    return bool(viewers.get(session_id) is None)


def _sending_offer() -> str:
    """An offer whose video section also sends (the agent's own camera): refused."""
    return "\r\n".join(
        [
            "v=0",
            "o=- 1 1 IN IP4 0.0.0.0",
            "s=-",
            "t=0 0",
            "m=video 9 UDP/TLS/RTP/SAVPF 96",
            "c=IN IP4 0.0.0.0",
            "a=sendrecv",
            "a=rtpmap:96 VP8/90000",
            "",
        ]
    )


def crafted(
    served: ServedApp, person: eids.EID, *, to: Status, agent: eids.EID | None, mode: Mode = Mode.AGENT_LED
) -> Session:
    """A session of ``person`` moved to ``to`` through the domain functions, conducted by
    ``agent``: what the database says, with no video in the service."""

    def unit(tx: Tx) -> Session:
        session = records.create(
            tx,
            tenant_id=person.tenant_id,
            eid_id=person.id,
            browser="b" * 32,
            request_id=None,
            mode=mode,
            challenges=["turn_left"],
            retention_seconds=86400.0,
            client_ip=None,
        )
        path = {
            Status.CREATED: [],
            Status.CONSENTED: [Status.CONSENTED],
            Status.CAPTURING: [Status.CONSENTED, Status.CAPTURING],
            Status.AWAITING_REVIEW: [Status.CONSENTED, Status.CAPTURING, Status.AWAITING_REVIEW],
        }[to]
        for step in path:
            if step is Status.CONSENTED:
                records.consent(tx, session.id, client_ip=None)
            else:
                records.transition(tx, session.id, step, event_type="videoid.test")
        if agent is not None:
            c = tables.videoid_sessions.c
            tx.conn.execute(
                tables.videoid_sessions.update()
                .where(c.id == session.id)
                .values(review={"assigned_to": agent.id, "assigned_at": tx.now})
            )
        return records.get(tx.conn, session.id)

    return served.write(unit)


async def test_who_may_not_watch_gets_a_clear_refusal(videoid_app: ServedApp) -> None:
    served = videoid_app
    people = agent_led_tenant(served)
    running = crafted(served, people.person, to=Status.CAPTURING, agent=people.agent)
    offer = await recvonly_offer()

    async def watch(client: httpx.AsyncClient, session_id: str, **kwargs: Any) -> httpx.Response:
        page = await client.get("/")  # the browser cookie, for its CSRF token
        assert page.status_code in (200, 303)
        csrf = kwargs.pop("csrf", None) or _csrf_of(served, client)
        return await client.post(
            f"/agent/sessions/{session_id}/watch",
            json=kwargs.pop("json", offer),
            headers={"X-CSRF-Token": csrf},
        )

    async with (
        signed_in(served, people.agent) as agent,
        signed_in(served, people.other_agent) as other,
        signed_in(served, people.person) as person,
        signed_in(served, people.outsider) as outsider,
        httpx.AsyncClient(base_url=served.issuer, verify=served.ssl_context()) as anonymous,
    ):
        expected = {
            "another agent": (other, 403, "not_assigned"),
            "the person themself": (person, 403, "forbidden"),
            "a non-agent": (outsider, 403, "forbidden"),
            "nobody signed in": (anonymous, 403, "forbidden"),
        }
        for who, (client, status, error) in expected.items():
            answer = await watch(client, running.id)
            assert (answer.status_code, answer.json()["error"]) == (status, error), (who, answer.text)
            assert (await client.get(f"/agent/sessions/{running.id}/live/status")).status_code == 403, who
            assert (await client.get(f"/agent/sessions/{running.id}/live")).status_code == 403, who
        # the conducting agent: the database says capturing, but no video runs in the service
        not_live = await watch(agent, running.id)
        assert not_live.status_code == 409 and not_live.json()["error"] == "not_live", not_live.text
        status = (await agent.get(f"/agent/sessions/{running.id}/live/status")).json()
        assert status["video"] is False and status["viewer"] is None
        # no CSRF token, a forged one, not JSON
        no_csrf = await agent.post(f"/agent/sessions/{running.id}/watch", json=offer)
        assert no_csrf.status_code == 403 and no_csrf.json()["error"] == "csrf"
        assert (await watch(agent, running.id, csrf="forged")).status_code == 403
        not_json = await agent.post(
            f"/agent/sessions/{running.id}/watch",
            content=b"sdp=x",
            headers={
                "X-CSRF-Token": _csrf_of(served, agent),
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        assert not_json.status_code == 400 and not_json.json()["error"] == "invalid_request"
        for body in ([], {"sdp": None}, {"type": "offer"}):
            answer = await watch(agent, running.id, json=body)
            assert answer.status_code in (400, 409) and answer.status_code != 500, answer.text
        # awaiting review: over, on to the review page
        queued = crafted(served, people.person, to=Status.AWAITING_REVIEW, agent=people.agent)
        over = await watch(agent, queued.id)
        assert over.status_code == 409 and over.json()["error"] == "not_live"
        assert (await agent.get(f"/agent/sessions/{queued.id}/live")).headers["location"] == (
            f"/agent/sessions/{queued.id}"
        )
        # an agent-led session nobody conducts yet, and a reviewed one while it runs
        for session in (
            crafted(served, people.person, to=Status.CAPTURING, agent=None),
            crafted(served, people.person, to=Status.CAPTURING, agent=people.agent, mode=Mode.REVIEWED),
        ):
            answer = await watch(agent, session.id)
            assert answer.status_code == 403 and answer.json()["error"] == "not_assigned", answer.text
        # their own eID's session, even if it says they conduct it
        own = crafted(served, people.agent, to=Status.CAPTURING, agent=people.agent)
        answer = await watch(agent, own.id)
        assert answer.status_code == 403 and answer.json()["error"] == "own_session"
        # unknown and hostile session ids; another tenant's agent does not learn it exists
        for session_id in ("A" * 40, "short", "..%2F..%2Fetc", "x" * 300):
            answer = await watch(agent, session_id)
            assert answer.status_code == 404 and answer.json()["error"] == "not_found", session_id
        elsewhere = served.tenant()
        stranger = served.user(elsewhere, "agent@elsewhere.example")
        make_agents(served, elsewhere.id, stranger)
        async with signed_in(served, stranger) as foreign:
            assert (await watch(foreign, running.id)).status_code == 404
        ended = await agent.post(
            f"/agent/sessions/{running.id}/watch/end", headers={"X-CSRF-Token": _csrf_of(served, agent)}
        )
        assert ended.status_code == 200 and ended.json() == {"stopped": False}
        assert (
            await other.post(
                f"/agent/sessions/{running.id}/watch/end", headers={"X-CSRF-Token": _csrf_of(served, other)}
            )
        ).status_code == 403
    events = [e["event_type"] for e in trail(served, running.id)]
    assert "videoid.live_watched" not in events  # nothing was watched


async def test_no_consent_no_video(videoid_app: ServedApp) -> None:
    """The service's own rule, whatever the caller checked: before consent there is no video."""
    served = videoid_app
    people = agent_led_tenant(served)
    created = crafted(served, people.person, to=Status.CREATED, agent=people.agent)
    offer = await recvonly_offer()
    with pytest.raises(VideoIdError) as refused:
        await served.state.videoid.watch(created, sdp=offer["sdp"], kind="offer")
    assert refused.value.code == "no_consent"
    consented = crafted(served, people.person, to=Status.CONSENTED, agent=people.agent)
    with pytest.raises(VideoIdError) as not_yet:
        await served.state.videoid.watch(consented, sdp=offer["sdp"], kind="offer")
    assert not_yet.value.code == "not_live"  # consented, but the camera is not on yet


def _csrf_of(served: ServedApp, client: httpx.AsyncClient) -> str:
    from idp.web.browser import BROWSER_COOKIE, csrf_token

    return csrf_token(served.settings.secret_key, client.cookies[BROWSER_COOKIE])


RECVONLY = "v=0\r\ns=-\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=recvonly\r\n"


@pytest.mark.parametrize(
    ("sdp", "kind", "message"),
    [
        (RECVONLY.replace("a=recvonly", "a=sendrecv"), "offer", "its video is sendrecv, not recvonly"),
        (RECVONLY + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendonly\r\n", "offer", "its audio is sendonly"),
        (RECVONLY.replace("a=recvonly\r\n", ""), "offer", "its video is sendrecv"),  # no attribute
        (RECVONLY.replace("a=recvonly", "a=sendonly"), "offer", "sendonly"),
        (RECVONLY + "m=video 9 UDP/TLS/RTP/SAVPF 97\r\na=inactive\r\n", "offer", "inactive"),
        ("v=0\r\nm=audio 9 RTP/AVP 0\r\na=recvonly\r\n", "offer", "no video"),
        (RECVONLY, "answer", "expected an SDP offer"),
        ("<script>", "offer", "expected an SDP offer"),
        (None, "offer", "expected an SDP offer"),
    ],
)
def test_the_agents_offer_receives_video_and_sends_no_more_than_sound(
    sdp: object, kind: object, message: str
) -> None:
    with pytest.raises(SignallingError, match=re.escape(message)):
        check_watch_offer(sdp, kind)


def test_a_receive_only_offer_is_taken_and_the_agents_microphone_too() -> None:
    assert check_watch_offer(RECVONLY, "offer") == RECVONLY
    for audio in ("a=recvonly\r\n", "a=sendrecv\r\n", ""):  # no attribute: sendrecv
        talking = RECVONLY + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n" + audio
        assert check_watch_offer(talking, "offer") == talking
    two = RECVONLY + "m=video 9 UDP/TLS/RTP/SAVPF 97\r\na=recvonly\r\n"
    assert check_watch_offer(two, "offer") == two
