"""The agent console through the served app on both engines: who may use it (agent group,
advanced level, step-up), random assignment, the review page and its stills, approval and
rejection (with a second agent), CSRF, and hostile requests."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from idp import audit, eids, proofing, sessions, tenants
from idp.storage import tables
from idp.web.browser import BROWSER_COOKIE, csrf_token
from levels_of_assurance.ladder import Level
from levels_of_assurance.policy import Factor, Method, level_of
from otp import totp
from tests.oidc.test_advanced_login import SECRET, enrol
from tests.support.agents import (
    DOCUMENT_NUMBER,
    RECORDING,
    make_agents,
    reviewed_session,
    session_cookie,
    session_of,
)
from tests.support.flows import form_value
from tests.support.server import ServedApp, database_url_on, serve, settings_factory_for
from tests.videoid.test_live_view import crafted
from videoid.records import Status

OPEN: list[httpx.Client] = []
CHECKED = {"security_features_seen": "yes", "document_number_read_out": "yes", "sms_code_matched": "yes"}


class Browser:
    """One person's browser on the served app (English pages)."""

    def __init__(self, served: ServedApp, cookie: str | None = None) -> None:
        self.http = served.client(headers={"Accept-Language": "en"})
        self.secret = served.settings.secret_key
        OPEN.append(self.http)
        if cookie is not None:
            self.http.cookies.set(sessions.COOKIE_NAME, cookie, domain="127.0.0.1")

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def post(self, path: str, data: dict[str, str]) -> httpx.Response:
        """A form post with this browser's CSRF token."""
        if self.http.cookies.get(BROWSER_COOKIE) is None:
            self.get("/")  # the first page gives the browser its cookie
        token = csrf_token(self.secret, self.http.cookies[BROWSER_COOKIE])
        return self.http.post(path, data={"csrf_token": token, **data})

    def take_next(self) -> httpx.Response:
        return self.post("/agent/next", {})

    def decide(self, session_id: str, **fields: str) -> httpx.Response:
        return self.post(f"/agent/sessions/{session_id}/decision", fields)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def agent_app(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    sqlite_template: Path,
    tls: tuple[Path, Path],
) -> Iterator[ServedApp]:
    """One served app per engine for this module (each test makes its own tenant)."""
    directory = tmp_path_factory.mktemp(f"agent-{request.param}")
    url = database_url_on(request.param, request, directory, sqlite_template)
    with serve(settings_factory_for(url, directory), tls=tls, outbox=directory / "mail") as app:
        yield app


@pytest.fixture
def served(agent_app: ServedApp) -> ServedApp:
    return agent_app


@pytest.fixture(autouse=True)
def close_browsers() -> Iterator[None]:
    yield
    while OPEN:
        OPEN.pop().close()


@pytest.fixture
def people(served: ServedApp) -> Iterator[dict[str, eids.EID]]:
    """A person to be identified and two agents of one tenant, and an eID outside the group."""
    tenant = served.tenant()
    made = {
        "person": served.user(tenant, "ana@example.com", given_name="Ana", family_name="Novak"),
        "agent": served.user(tenant, "agent1@example.com", given_name="Ema", phone_number="+38640111222"),
        "second": served.user(tenant, "agent2@example.com", given_name="Luka"),
        "outsider": served.user(tenant, "someone@example.com"),
    }
    make_agents(served, tenant.id, made["agent"], made["second"])
    yield made


def browser(served: ServedApp, person: eids.EID, *, level: Level = Level.ADVANCED) -> Browser:
    return Browser(served, session_cookie(served, person, level=level))


def trail(served: ServedApp, session_id: str) -> list[dict[str, Any]]:
    return served.run(served.state.db.read(lambda conn: audit.export_transaction(conn, session_id)))


def test_an_agent_approves_a_reviewed_session_and_the_eid_is_proofed(
    served: ServedApp, people: dict[str, eids.EID]
) -> None:
    session = reviewed_session(served, people["person"])
    agent = browser(served, people["agent"])
    queue = agent.get("/agent")
    assert queue.status_code == 200 and "1 session can be assigned to you." in queue.text
    assert "Ana" not in queue.text and "Novak" not in queue.text  # nobody picks a person by name
    taken = agent.take_next()
    assert taken.status_code == 303 and taken.headers["location"] == f"/agent/sessions/{session.id}"
    page = agent.get(taken.headers["location"])
    assert page.status_code == 200
    for shown in (DOCUMENT_NUMBER, "NOVAK", "0.4123", "threshold 0.55", "turn_left", "document_number"):
        assert shown in page.text
    assert f'src="/agent/sessions/{session.id}/stills/face"' in page.text
    assert f'src="/agent/sessions/{session.id}/stills/document_front"' in page.text
    still = agent.get(f"/agent/sessions/{session.id}/stills/face")
    assert still.status_code == 200 and still.headers["content-type"] == "image/jpeg"
    assert still.headers["cache-control"] == "no-store" and still.content[:2] == b"\xff\xd8"
    assert agent.get(f"/agent/sessions/{session.id}/stills/document_back").status_code == 404  # none kept
    assert f'src="/agent/sessions/{session.id}/recording"' in page.text
    video = agent.get(f"/agent/sessions/{session.id}/recording")
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert video.content == RECORDING and video.headers["cache-control"] == "no-store"
    assert agent.get(f"/agent/sessions/{session.id}/stills/recording").status_code == 404  # not a still
    # an approval needs the whole checklist
    half = agent.decide(session.id, decision="approve", security_features_seen="yes")
    assert half.status_code == 400 and 'id="decision-error"' in half.text and "every item" in half.text
    assert session_of(served, session.id).status is Status.AWAITING_REVIEW
    done = agent.decide(session.id, decision="approve", **CHECKED)
    assert done.status_code == 303 and done.headers["location"] == "/agent?notice=approved"
    assert session_of(served, session.id).status is Status.APPROVED
    person_id = people["person"].id
    assert served.run(served.state.db.read(lambda conn: proofing.is_proofed(conn, person_id)))
    now = time.time()
    advanced = [Factor(Method.PASSWORD, ("pwd",), now), Factor(Method.TOTP, ("otp",), now)]
    assert level_of(advanced, identity_proofed=True) is Level.QUALIFIED  # what the login now reaches
    proofed = served.run(served.state.db.read(lambda conn: eids.get(conn, person_id)))
    assert proofed.attributes["document_number"].verified_method == "videoid"
    events = trail(served, session.id)
    kinds = [e["event_type"] for e in events]
    assert "videoid.review_assigned" in kinds and kinds[-1] == "videoid.decision"
    viewed = [e["details"]["item"] for e in events if e["event_type"] == "videoid.review_viewed"]
    assert "review" in viewed and "face" in viewed
    decision = events[-1]
    assert decision["details"]["agents"] == [people["agent"].id]
    assert decision["details"]["checklist"] == {k: True for k in CHECKED}
    # decided: the session is no longer open to the agent
    assert agent.get(f"/agent/sessions/{session.id}").headers["location"] == "/agent?notice=gone"
    assert agent.get(f"/agent/sessions/{session.id}/stills/face").status_code == 403


def test_a_rejection_that_needs_a_second_agent_goes_back_to_the_queue(
    served: ServedApp, people: dict[str, eids.EID]
) -> None:
    session = reviewed_session(served, people["person"], second_agent=True)
    first, second = browser(served, people["agent"]), browser(served, people["second"])
    assert first.take_next().status_code == 303
    no_reason = first.decide(session.id, decision="reject")
    assert no_reason.status_code == 400 and "choose a reason" in no_reason.text
    no_note = first.decide(session.id, decision="reject", reason="other")
    assert no_note.status_code == 400 and "Say in the note" in no_note.text
    unknown = first.decide(session.id, decision="reject", reason="<script>")
    assert unknown.status_code == 400 and "<script>" not in unknown.text
    voted = first.decide(session.id, decision="reject", reason="document_forged", note="hologram missing")
    assert voted.status_code == 303 and voted.headers["location"] == "/agent?notice=returned"
    assert session_of(served, session.id).status is Status.AWAITING_REVIEW
    # the first agent is not given it again; the second one is, and sees the earlier rejection
    assert first.take_next().headers["location"] == "/agent?notice=empty"
    assert "You rejected it; a second agent decides" in first.get("/agent").text
    assert second.take_next().headers["location"] == f"/agent/sessions/{session.id}"
    page = second.get(f"/agent/sessions/{session.id}")
    assert 'id="second-review"' in page.text
    final = second.decide(session.id, decision="reject", reason="face_mismatch")
    assert final.headers["location"] == "/agent?notice=rejected"
    done = session_of(served, session.id)
    assert done.status is Status.REJECTED and done.reasons == ("face_mismatch",)
    person_id = people["person"].id
    assert not served.run(served.state.db.read(lambda conn: proofing.is_proofed(conn, person_id)))
    votes = [e for e in trail(served, session.id) if e["event_type"] == "videoid.review_vote"]
    assert len(votes) == 1 and votes[0]["details"]["reason"] == "document_forged"
    assert "hologram" not in str(votes[0])  # the free text stays in the sealed evidence


def test_an_agent_gives_a_session_back_and_an_abandoned_assignment_lapses(
    served: ServedApp, people: dict[str, eids.EID]
) -> None:
    session = reviewed_session(served, people["person"])
    first, second = browser(served, people["agent"]), browser(served, people["second"])
    assert first.take_next().headers["location"] == f"/agent/sessions/{session.id}"
    page = first.get(f"/agent/sessions/{session.id}")
    assert 'id="release"' in page.text and "undecided for 30 minutes" in page.text
    assert second.take_next().headers["location"] == "/agent?notice=empty"
    # only the assigned agent gives it back
    assert second.post(f"/agent/sessions/{session.id}/release", {}).status_code == 403
    given_back = first.post(f"/agent/sessions/{session.id}/release", {})
    assert given_back.status_code == 303 and given_back.headers["location"] == "/agent?notice=released"
    assert "back in the queue for another agent" in first.get("/agent?notice=released").text
    assert session_of(served, session.id).review["assigned_to"] is None
    assert first.post(f"/agent/sessions/{session.id}/release", {}).status_code == 403
    assert first.get(f"/agent/sessions/{session.id}").status_code == 403

    # the second agent takes it, then leaves it undecided: after 30 minutes it lapses
    assert second.take_next().headers["location"] == f"/agent/sessions/{session.id}"
    assert first.take_next().headers["location"] == "/agent?notice=empty"
    assert "Being reviewed" in first.get("/agent").text
    lapsed = {**session_of(served, session.id).review, "assigned_at": time.time() - 31 * 60}
    c = tables.videoid_sessions.c
    served.write(
        lambda tx: tx.conn.execute(
            update(tables.videoid_sessions).where(c.id == session.id).values(review=lapsed)
        )
    )
    assert "Being reviewed" not in first.get("/agent").text
    # until another agent takes it, the second one still has it
    assert 'id="continue-review"' in second.get("/agent").text
    assert first.take_next().headers["location"] == f"/agent/sessions/{session.id}"
    assert second.get(f"/agent/sessions/{session.id}").status_code == 403
    assert second.take_next().headers["location"] == "/agent?notice=empty"
    done = first.decide(session.id, decision="approve", **CHECKED)
    assert done.headers["location"] == "/agent?notice=approved"

    events = trail(served, session.id)
    released = [e for e in events if e["event_type"] == "videoid.review_released"]
    assert len(released) == 1 and released[0]["details"] == {"agent": people["agent"].id}
    assigned = [e["details"] for e in events if e["event_type"] == "videoid.review_assigned"]
    assert assigned == [
        {"agent": people["agent"].id},
        {"agent": people["second"].id},
        {"agent": people["agent"].id, "lapsed": people["second"].id},
    ]


@pytest.mark.parametrize(
    ("recording", "says"),
    [
        ({"audio": True}, None),
        ({"audio": False}, "The recording has no sound"),
        ({"audio": False, "agent_voice": True}, "The recording has the agent's voice only"),
    ],
)
def test_the_review_page_says_what_the_recording_lets_the_agent_hear(
    served: ServedApp, people: dict[str, eids.EID], recording: dict[str, Any], says: str | None
) -> None:
    session = reviewed_session(served, people["person"], recording=recording)
    agent = browser(served, people["agent"])
    assert agent.take_next().headers["location"] == f"/agent/sessions/{session.id}"
    page = agent.get(f"/agent/sessions/{session.id}").text
    if says is None:
        assert 'id="no-sound"' not in page
    else:
        assert 'id="no-sound"' in page and says in page, page
    decided = agent.decide(session.id, decision="approve", **CHECKED)
    assert decided.headers["location"] == "/agent?notice=approved"


@pytest.mark.parametrize(
    ("document", "says"),
    [
        ({}, "confirmed by several reads"),
        (
            {"reads": 3, "names_confirmed": False, "unconfirmed_fields": ["names"]},
            "not confirmed by the reads: compare them with the document</span> <code>names</code>",
        ),
    ],
)
def test_the_review_page_says_whether_the_reads_confirmed_the_names(
    served: ServedApp, people: dict[str, eids.EID], document: dict[str, Any], says: str
) -> None:
    session = reviewed_session(served, people["person"], document=document)
    agent = browser(served, people["agent"])
    assert agent.take_next().headers["location"] == f"/agent/sessions/{session.id}"
    page = agent.get(f"/agent/sessions/{session.id}").text
    shown = re.search(r'<dd id="unchecked-fields">(.*?)</dd>', page)
    assert shown is not None and says in shown.group(1), page
    decided = agent.decide(session.id, decision="approve", **CHECKED)
    assert decided.headers["location"] == "/agent?notice=approved"


def test_release_needs_the_csrf_token_and_a_session_id(
    served: ServedApp, people: dict[str, eids.EID]
) -> None:
    session = reviewed_session(served, people["person"])
    agent = browser(served, people["agent"])
    assert agent.take_next().status_code == 303
    forged = agent.http.post(f"/agent/sessions/{session.id}/release", data={"csrf_token": "x"})
    assert forged.status_code == 403
    assert agent.post("/agent/sessions/..%2f/release", {}).status_code == 404
    assert agent.post("/agent/sessions/" + "z" * 32 + "/release", {}).status_code == 404
    assert session_of(served, session.id).review["assigned_to"] == people["agent"].id


def test_an_agent_never_gets_nor_opens_a_session_of_their_own_eid(
    served: ServedApp, people: dict[str, eids.EID]
) -> None:
    own = reviewed_session(served, people["agent"])
    agent = browser(served, people["agent"])
    assert "Your own eID: not for you" in agent.get("/agent").text
    assert agent.take_next().headers["location"] == "/agent?notice=empty"
    assert agent.get(f"/agent/sessions/{own.id}").status_code == 403
    assert agent.get(f"/agent/sessions/{own.id}/stills/face").status_code == 403
    refused = agent.post(f"/agent/sessions/{own.id}/decision", {"decision": "approve", **CHECKED})
    assert refused.status_code == 403
    # the other agent takes it; the owner still cannot decide it
    assert browser(served, people["second"]).take_next().headers["location"] == f"/agent/sessions/{own.id}"
    assert (
        agent.post(f"/agent/sessions/{own.id}/decision", {"decision": "approve", **CHECKED}).status_code
        == 403
    )
    assert session_of(served, own.id).status is Status.AWAITING_REVIEW


def test_who_is_not_an_agent_is_refused_and_stills_go_only_to_the_assigned_agent(
    served: ServedApp, people: dict[str, eids.EID]
) -> None:
    session = reviewed_session(served, people["person"])
    outsider = browser(served, people["outsider"])
    page = outsider.get("/agent")
    assert page.status_code == 403 and "agent group" in page.text
    assert outsider.post("/agent/next", {}).status_code == 403
    assert outsider.get(f"/agent/sessions/{session.id}").status_code == 403
    assert outsider.get(f"/agent/sessions/{session.id}/stills/face").status_code == 403
    assert outsider.get(f"/agent/sessions/{session.id}/recording").status_code == 403
    person = browser(served, people["person"])
    assert person.get(f"/agent/sessions/{session.id}/stills/face").status_code == 403
    anonymous = Browser(served)
    assert anonymous.get(f"/agent/sessions/{session.id}/stills/face").status_code == 403
    assert anonymous.get("/agent").status_code == 403
    # assigned to the first agent: the second one sees neither the page nor the stills
    assert browser(served, people["agent"]).take_next().status_code == 303
    other = browser(served, people["second"])
    assert other.get(f"/agent/sessions/{session.id}").status_code == 403
    assert other.get(f"/agent/sessions/{session.id}/stills/face").status_code == 403
    assert other.take_next().headers["location"] == "/agent?notice=empty"
    # an agent of another tenant does not even learn that the session exists
    elsewhere = served.tenant()
    stranger = served.user(elsewhere, "agent@elsewhere.example")
    make_agents(served, elsewhere.id, stranger)
    assert browser(served, stranger).get(f"/agent/sessions/{session.id}").status_code == 404
    assert browser(served, stranger).get(f"/agent/sessions/{session.id}/stills/face").status_code == 404


def test_a_basic_agent_session_is_stepped_up_through_the_sign_in_pages(
    served: ServedApp, people: dict[str, eids.EID]
) -> None:
    agent_eid = people["agent"]
    secret = enrol(served, agent_eid)
    assert secret is not None
    agent = browser(served, agent_eid, level=Level.BASIC)
    to_login = agent.get("/agent")
    assert to_login.status_code == 303 and to_login.headers["location"].startswith("/login?request_id=")
    page = agent.get(to_login.headers["location"])
    assert "Enter your password" in page.text and 'name="email"' not in page.text  # known person
    fields = {
        "csrf_token": form_value(page.text, "csrf_token"),
        "request_id": form_value(page.text, "request_id"),
    }
    code_step = agent.http.post("/login/password", data={**fields, "password": SECRET})
    assert code_step.status_code == 303
    code_page = agent.get(code_step.headers["location"])
    assert "Enter your one-time code" in code_page.text
    code = totp.code_at(secret=secret, for_time=time.time())
    done = agent.http.post(
        "/login/code",
        data={
            "csrf_token": form_value(code_page.text, "csrf_token"),
            "request_id": form_value(code_page.text, "request_id"),
            "method": "totp",
            "code": code,
        },
    )
    assert done.status_code == 303 and done.headers["location"] == "/agent"
    assert agent.get("/agent").status_code == 200
    # without a session: the organisation's link signs in at the advanced level
    anonymous = Browser(served)
    tenant = served.run(served.state.db.read(lambda conn: tenants.get(conn, agent_eid.tenant_id)))
    start = anonymous.get("/agent", params={"tenant": tenant.slug})
    assert start.status_code == 303 and start.headers["location"].startswith("/login?request_id=")
    for ref in ("no-such-tenant", "\x00", "x" * 300, "<script>"):
        refused = anonymous.get("/agent", params={"tenant": ref})
        assert refused.status_code == 403 and "<script>" not in refused.text


def test_forms_need_the_csrf_token(served: ServedApp, people: dict[str, eids.EID]) -> None:
    session = reviewed_session(served, people["person"])
    agent = browser(served, people["agent"])
    assert agent.http.post("/agent/next", data={}).status_code == 403
    assert agent.http.post("/agent/next", data={"csrf_token": "forged"}).status_code == 403
    assert session_of(served, session.id).review.get("assigned_to") is None
    assert agent.take_next().status_code == 303
    forged = agent.http.post(
        f"/agent/sessions/{session.id}/decision", data={"csrf_token": "x", "decision": "approve", **CHECKED}
    )
    assert forged.status_code == 403 and session_of(served, session.id).status is Status.AWAITING_REVIEW


@pytest.mark.parametrize(
    "session_id",
    ["short", "A" * 40, "%00" + "A" * 20, "..%2F..%2Fetc", "x" * 300, "A" * 20 + "%27%20OR%201%3D1"],
)
def test_hostile_session_ids_are_not_found(
    served: ServedApp, people: dict[str, eids.EID], session_id: str
) -> None:
    agent = browser(served, people["agent"])
    assert agent.get(f"/agent/sessions/{session_id}").status_code == 404
    assert agent.get(f"/agent/sessions/{session_id}/stills/face").status_code == 404
    posted = agent.post(f"/agent/sessions/{session_id}/decision", {"decision": "approve", **CHECKED})
    assert posted.status_code == 404


def test_hostile_decisions_and_still_names_get_clear_answers(
    served: ServedApp, people: dict[str, eids.EID]
) -> None:
    session = reviewed_session(served, people["person"])
    agent = browser(served, people["agent"])
    assert agent.take_next().status_code == 303
    for name in ("report", "recording", "agent_decision", "..%2Fface", "FACE"):
        assert agent.get(f"/agent/sessions/{session.id}/stills/{name}").status_code == 404
    for fields in ({"decision": "maybe"}, {}, {"decision": "approve" * 100}):
        answer = agent.decide(session.id, **fields)
        assert answer.status_code == 400 and "approve or reject" in answer.text
    long_note = agent.decide(session.id, decision="reject", reason="other", note="n" * 1500)
    assert long_note.status_code == 400 and "too long" in long_note.text
    assert re.search(r'id="decision-error"', long_note.text)
    assert session_of(served, session.id).status is Status.AWAITING_REVIEW


def test_the_queue_shows_a_running_session_with_no_capture_here(
    served: ServedApp, people: dict[str, eids.EID]
) -> None:
    """An agent-led session the person consented to, before their offer (or running on another
    instance), has no capture status in this process: the queue lists it, not a 500."""
    led = crafted(served, people["person"], to=Status.CONSENTED, agent=None)
    page = browser(served, people["agent"]).get("/agent")
    assert page.status_code == 200, page.text[:500]
    assert f"<code>{led.id[:8]}</code>: <code>consented</code>" in page.text
