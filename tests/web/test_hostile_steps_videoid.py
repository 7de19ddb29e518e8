"""One hostile field at a time in video identification: the person's start page, the WebRTC offer
(hostile SDP too) and the SMS code read back, and the agent console's queue, decision and
release forms and its watch/end JSON (not the live media itself: tests/videoid).

The JSON endpoints answer ``{"error": …, "error_description": …}`` (:mod:`idp.web.page_json`), never
a page and never a 500; the forms answer pages, as in :mod:`tests.web.test_hostile_steps`.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
from aiortc import RTCConfiguration, RTCPeerConnection

from idp import sessions
from tests.oidc.conftest import Party, PartyFactory
from tests.oidc.test_advanced_login import PHONE, advanced_party
from tests.support.agents import make_agents, reviewed_session, session_cookie
from tests.support.hostile import (
    BODIES,
    NOT_TEXT,
    RAW_CASES,
    TEXT_CASES,
    Form,
    app,  # noqa: F401  (the module's served app, per engine)
    csrf_of,
    snapshot,
    sweep,
)
from tests.support.hostile import party as party
from tests.support.videoid_client import broken_offers, sms_code
from tests.videoid.test_live_view import crafted
from videoid import agents, records
from videoid.liveness import Challenge
from videoid.records import Status
from videoid.service import Live
from videoid.session import LiveSession


def _offer_sdp() -> str:
    """A browser's offer: video and sound sent to the server, as the capture page makes it."""

    async def make() -> str:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTransceiver("video", direction="sendonly")
        pc.addTransceiver("audio", direction="sendonly")
        try:
            await pc.setLocalDescription(await pc.createOffer())
            return str(pc.localDescription.sdp)
        finally:
            await pc.close()

    return asyncio.run(make())


def hostile_sdps(sdp: str) -> dict[str, str]:
    """The valid offer with one line broken at a time, the hostile way."""
    lines = sdp.split("\r\n")
    media = next(i for i, line in enumerate(lines) if line.startswith("m=video"))
    candidate = next((i for i, line in enumerate(lines) if line.startswith("a=candidate:")), media + 1)

    def with_line(index: int, value: str) -> str:
        changed = list(lines)
        changed[index] = value
        return "\r\n".join(changed)

    port = lines[media].split(" ")[1]
    return {
        "sdp nul in a line": with_line(media, lines[media] + "\x00"),
        "sdp port 1e309": with_line(media, lines[media].replace(f" {port} ", " 1e309 ", 1)),
        "sdp port negative": with_line(media, lines[media].replace(f" {port} ", " -1 ", 1)),
        "sdp port fullwidth": with_line(media, lines[media].replace(f" {port} ", " \uff19 ", 1)),
        "sdp port letters": with_line(media, lines[media].replace(f" {port} ", " abc ", 1)),
        "sdp media markup": with_line(media, 'm=video 9 "><script>x</script>'),
        "sdp candidate garbage": with_line(candidate, "a=candidate:1 1 udp 1e309 ab\x00cd 9 typ host"),
        "sdp whitespace lines": "\r\n".join(" " + line for line in lines),
        "sdp twice": sdp + sdp,
        "sdp 100 media": sdp + "".join(f"m=video {i} UDP/TLS/RTP/SAVPF 96\r\n" for i in range(100)),
        "sdp only header": "v=0\r\n",
    }


# -- the JSON endpoints -------------------------------------------------------------------------------


Send = Callable[[bytes, dict[str, str]], httpx.Response]


def json_variants(
    send: Send, fields: dict[str, Any], names: Sequence[str], headers: dict[str, str]
) -> Iterator[tuple[str, httpx.Response]]:
    """The JSON body ``fields`` with one of ``names`` hostile at a time, then hostile whole bodies and
    CSRF headers."""
    kind = {"Content-Type": "application/json"}

    def body(data: dict[str, Any]) -> bytes:
        return json.dumps(data).encode()

    for name in names:
        for case, value in {**TEXT_CASES, **NOT_TEXT}.items():
            yield f"{name}={case}", send(body({**fields, name: value}), {**headers, **kind})
        for case, raw in RAW_CASES.items():
            escaped = raw.decode("utf-8", "surrogateescape").encode("utf-8", "backslashreplace")
            text = body({k: v for k, v in fields.items() if k != name})[:-1]
            glue = b", " if len(fields) > 1 else b""
            raw_body = text + glue + f'"{name}": "'.encode() + escaped.replace(b"\\x", b"\\u00") + b'"}'
            yield f"{name}={case}", send(raw_body, {**headers, **kind})
        surrogate = body({**fields, name: "x"}).replace(b'"x"', b'"a\\ud800b"')
        yield f"{name}=escaped lone surrogate", send(surrogate, {**headers, **kind})
        repeated = body(fields)[:-1] + f', "{name}": "x"}}'.encode()
        yield f"{name} repeated", send(repeated, {**headers, **kind})
        yield (
            f"{name} missing",
            send(body({k: v for k, v in fields.items() if k != name}), {**headers, **kind}),
        )
    for case, raw in BODIES.items():
        yield case, send(raw, {**headers, **kind})
    yield "form-encoded", send(b"sdp=x", {**headers, "Content-Type": "application/x-www-form-urlencoded"})
    for case, token in {
        "no csrf": None,
        "csrf empty": "",
        "csrf wrong": "x" * 43,
        "csrf latin-1": "\xe4",
    }.items():
        without = {k: v for k, v in headers.items() if k != "X-CSRF-Token"}
        header = {} if token is None else {"X-CSRF-Token": token}
        yield case, send(body(fields), {**without, **header, **kind})


def json_problems(case: str, response: httpx.Response) -> list[str]:
    if response.status_code >= 500:
        return [f"[{case}] {response.status_code}: {response.text[:300]}"]
    if not response.headers.get("content-type", "").startswith("application/json"):
        return [f"[{case}] {response.status_code} is not JSON: {response.headers.get('content-type')}"]
    body = response.json()
    if response.status_code >= 400 and not (body.get("error") and body.get("error_description")):
        return [f"[{case}] {response.status_code} without error and error_description: {body}"]
    return []


def json_sweep(
    p: Party,
    send: Send,
    fields: dict[str, Any],
    names: Sequence[str],
    headers: dict[str, str],
    extra: dict[str, tuple[bytes, dict[str, str]]] | None = None,
) -> None:
    """Every hostile variant: a JSON error (or answer) below 500, and nothing written."""
    before = snapshot(p.served, p.tenant.id)
    found: list[str] = []
    for case, response in json_variants(send, fields, names, headers):
        found.extend(json_problems(case, response))
        if case != "no csrf" and response.status_code < 400:
            found.append(f"[{case}] accepted: {response.status_code} {response.text[:200]}")
    for case, (raw, more) in (extra or {}).items():
        response = send(raw, more)
        found.extend(json_problems(case, response))
        if response.status_code < 400:
            found.append(f"[{case}] accepted: {response.status_code} {response.text[:200]}")
    assert not found, "\n".join(found)
    changed = {k: v for k, v in snapshot(p.served, p.tenant.id).items() if v != before[k]}
    assert not changed, f"hostile JSON changed {changed}"


def _poster(browser: httpx.Client, path: str) -> Send:
    def send(raw: bytes, headers: dict[str, str]) -> httpx.Response:
        as_bytes = {k: v.encode("latin-1") for k, v in headers.items()}  # a browser may send Latin-1
        return browser.post(path, content=raw, headers=as_bytes)

    return send


# -- the person's steps --------------------------------------------------------------------------------


def _person(party: PartyFactory) -> Party:
    p, _ = advanced_party(party, app=False)  # a verified mobile number: video identification's code
    assert p.eid is not None
    p.rp.browser.cookies.set(sessions.COOKIE_NAME, session_cookie(p.served, p.eid), domain="127.0.0.1")
    return p


def _started(p: Party) -> tuple[str, str]:
    page = p.rp.browser.get("/videoid/start")
    started = p.rp.browser.post(
        "/videoid/start", data={"csrf_token": csrf_of(page), "request_id": "", "consent": "yes"}
    )
    assert started.status_code == 303, started.text[:500]
    capture = p.rp.browser.get(started.headers["location"])
    found = re.search(r'data-csrf="([^"]+)"', capture.text)
    assert capture.status_code == 200 and found is not None, capture.text[:500]
    return started.headers["location"].rsplit("/", 1)[1], found.group(1)


def test_videoid_start_offer_and_code(party: PartyFactory) -> None:
    p = _person(party)
    q = _person(party)
    q_page = q.rp.browser.get("/videoid/start")
    page = p.rp.browser.get("/videoid/start")
    assert page.status_code == 200, page.text[:500]
    start = Form(
        p.rp.browser,
        "/videoid/start",
        {"csrf_token": csrf_of(page), "request_id": "", "consent": "yes"},
        {"csrf_token of another browser": {"csrf_token": csrf_of(q_page)}},
    )
    # an empty request_id is the signed-in start; any other is a login that is not this browser's
    sweep(p, start, ["csrf_token", "consent", "request_id"], skip={"request_id": {"empty", "missing"}})

    session_id, csrf = _started(p)
    theirs, _ = _started(q)
    headers = {"X-CSRF-Token": csrf}
    sdp = _offer_sdp()
    offer = {"sdp": sdp, "type": "offer"}
    extra = {
        name: (
            json.dumps({"sdp": hostile, "type": "offer"}).encode(),
            {**headers, "Content-Type": "application/json"},
        )
        for name, hostile in hostile_sdps(sdp).items()
    }
    for i, broken in enumerate(asyncio.run(broken_offers(direction="sendonly"))):
        extra[f"aiortc-breaking offer {i}"] = (
            json.dumps(broken).encode(),
            {**headers, "Content-Type": "application/json"},
        )
    for kind in ("answer", "pranswer", "rollback", "OFFER"):
        extra[f"type={kind}"] = (
            json.dumps({**offer, "type": kind}).encode(),
            {**headers, "Content-Type": "application/json"},
        )
    json_sweep(
        p, _poster(p.rp.browser, f"/videoid/{session_id}/offer"), offer, ["sdp", "type"], headers, extra
    )
    # another browser's session, and one that does not exist: the same JSON refusals
    for path in (
        f"/videoid/{theirs}/offer",
        "/videoid/" + "A" * 32 + "/offer",
        "/videoid/%00" + "A" * 20 + "/offer",
    ):
        response = p.rp.browser.post(path, json=offer, headers=headers)
        assert not json_problems(path, response) and response.status_code in (403, 404), response.text[:300]

    # the code step: the capture's end stood in for (no camera here), its SMS sent for real
    code_id, code_csrf = _started(p)
    service = p.served.state.videoid
    session = p.served.write(
        lambda tx: records.transition(tx, code_id, Status.CAPTURING, event_type="videoid.capture_started")
    )
    live = Live(session, LiveSession([Challenge.TURN_LEFT], today=service.today()))
    service.live[code_id] = live
    p.served.run(service._send_code(live))
    assert live.sms is not None
    code = sms_code(p.served, phone=PHONE)
    code_headers = {"X-CSRF-Token": code_csrf}
    send = _poster(p.rp.browser, f"/videoid/{code_id}/code")
    before = snapshot(p.served, p.tenant.id)
    found: list[str] = []
    for case, response in json_variants(send, {"code": code}, ["code"], code_headers):
        found.extend(json_problems(case, response))
    assert not found, "\n".join(found)
    assert snapshot(p.served, p.tenant.id) == before
    done = send(json.dumps({"code": code}).encode(), {**code_headers, "Content-Type": "application/json"})
    assert done.status_code == 200 and done.json()["result_url"], done.text[:500]


# -- the agent console ------------------------------------------------------------------------------


def test_agent_decision_release_and_watch(party: PartyFactory) -> None:
    a = party(attributes={"given_name": "Ada"})
    person = party(tenant=a.tenant, email="signer@example.com", attributes={"given_name": "Ana"})
    outsider = party(email="outsider@example.com")  # an agent of another tenant
    assert a.eid is not None and person.eid is not None and outsider.eid is not None
    make_agents(a.served, a.tenant.id, a.eid)
    make_agents(outsider.served, outsider.tenant.id, outsider.eid)
    for who in (a, outsider):
        assert who.eid is not None
        who.rp.browser.cookies.set(
            sessions.COOKIE_NAME, session_cookie(who.served, who.eid), domain="127.0.0.1"
        )
    waiting = reviewed_session(a.served, person.eid)
    queue = a.rp.browser.get("/agent")
    assert queue.status_code == 200, queue.text[:500]
    other_csrf = csrf_of(outsider.rp.browser.get("/agent"))
    take = Form(
        a.rp.browser,
        "/agent/next",
        {"csrf_token": csrf_of(queue)},
        {"csrf_token of another browser": {"csrf_token": other_csrf}},
    )
    sweep(a, take, ["csrf_token"])
    taken = take.post(take.fields)
    assert taken.headers["location"] == f"/agent/sessions/{waiting.id}", taken.text[:500]
    review = a.rp.browser.get(taken.headers["location"])
    assert review.status_code == 200, review.text[:500]

    fields = {"csrf_token": csrf_of(review), "decision": "approve", "reason": "", "note": "seen"}
    fields.update({item: "yes" for item in agents.CHECKLIST})
    decide = Form(
        a.rp.browser,
        f"/agent/sessions/{waiting.id}/decision",
        fields,
        {
            "csrf_token of another browser": {"csrf_token": other_csrf},
            "reject without a reason": {"decision": "reject", "reason": ""},
            "reject with a made-up reason": {"decision": "reject", "reason": "no_reason_like_this"},
        },
    )
    # the note is free text (a reason is needed only to reject): only one too long is refused
    decide.other["note of 100 kB"] = {"note": "x" * 100_000}
    sweep(a, decide, ["csrf_token", "decision", *agents.CHECKLIST])
    release = Form(
        a.rp.browser, f"/agent/sessions/{waiting.id}/release", {"csrf_token": fields["csrf_token"]}
    )
    release.other = {"csrf_token of another browser": {"csrf_token": other_csrf}}
    sweep(a, release, ["csrf_token"])
    # sessions that are not this agent's: another tenant's, unknown, malformed ids
    for path in (
        f"/agent/sessions/{'A' * 32}/decision",
        "/agent/sessions/%00%00/decision",
        f"/agent/sessions/{'A' * 65}/release",
    ):
        before = snapshot(a.served, a.tenant.id)
        response = a.rp.browser.post(path, data=fields)
        assert response.status_code in (303, 400, 403, 404) and "text/html" in response.headers.get(
            "content-type", "text/html"
        ), response.text[:300]
        assert snapshot(a.served, a.tenant.id) == before
    outsider_post = outsider.rp.browser.post(
        f"/agent/sessions/{waiting.id}/decision", data={**fields, "csrf_token": other_csrf}
    )
    assert outsider_post.status_code in (403, 404), outsider_post.text[:300]
    done = decide.post(decide.fields)
    assert done.status_code == 303 and done.headers["location"] == "/agent?notice=approved", done.text[:500]

    # the live view's JSON: a running agent-led session this agent conducts
    live_person = party(tenant=a.tenant, email="live@example.com")
    assert live_person.eid is not None
    led = crafted(a.served, live_person.eid, to=Status.CAPTURING, agent=None).id
    taken = a.rp.browser.post("/agent/next", data={"csrf_token": fields["csrf_token"]})
    assert taken.headers["location"] == f"/agent/sessions/{led}/live", taken.text[:500]
    live_page = a.rp.browser.get(taken.headers["location"])
    assert live_page.status_code == 200, live_page.text[:500]
    live_csrf = re.search(r'data-csrf="([^"]+)"', live_page.text)
    assert live_csrf is not None
    headers = {"X-CSRF-Token": live_csrf.group(1)}
    sdp = _offer_sdp()
    watch = _poster(a.rp.browser, f"/agent/sessions/{led}/watch")
    # the person's video does not run here: even a good offer is refused (409), in JSON
    json_sweep(a, watch, {"sdp": sdp, "type": "offer"}, ["sdp", "type"], headers)
    end = _poster(a.rp.browser, f"/agent/sessions/{led}/watch/end")
    before = snapshot(a.served, a.tenant.id)
    found: list[str] = []
    for case, response in json_variants(end, {}, [], headers):
        found.extend(json_problems(case, response))
    for path in (f"/agent/sessions/{'A' * 32}/watch/end", f"/agent/sessions/{waiting.id}/watch/end"):
        found.extend(json_problems(path, a.rp.browser.post(path, headers=headers)))
    found.extend(
        json_problems("another tenant's agent", outsider.rp.browser.post(f"/agent/sessions/{led}/watch/end"))
    )
    assert not found, "\n".join(found)
    assert snapshot(a.served, a.tenant.id) == before
    stopped = end(b"", headers)
    assert stopped.status_code == 200 and stopped.json() == {"stopped": False}, stopped.text
