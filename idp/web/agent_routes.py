"""The agent console for video identification (``/agent/…``, issue 4 item 6).

Who: an eID in the tenant's agent group (:func:`videoid.agents.is_agent`) whose SSO session is at
the advanced level. Without a session, ``/agent?tenant=<slug>`` starts an advanced sign-in
through the ordinary pages (:func:`idp.web.account_login.start`) and comes back; a session at a
lower level is stepped up the same way. Anyone else gets 403.

- ``GET /agent`` the tenant's queue (oldest first, no names), running agent-led sessions with
  their live status, and the agent's assigned session;
- ``POST /agent/next`` opens the agent's assigned session, else assigns a random running
  agent-led session (whose live view is :mod:`idp.web.agent_live_routes`), else a random
  waiting session (never the agent's own);
- ``GET /agent/sessions/{id}`` the review page: stills, MRZ data, check digits, document checks,
  face match score and threshold, liveness challenges, SMS code, checklist and decision form;
- ``GET /agent/sessions/{id}/stills/{name}`` a still from the sealed evidence (``no-store``);
- ``POST /agent/sessions/{id}/decision`` approve (checklist complete) or reject (reason code);
- ``POST /agent/sessions/{id}/release`` give the session back to the queue undecided (an
  assignment left undecided for :data:`videoid.review.ASSIGNMENT_SECONDS` lapses by itself).

Only the assigned agent opens a session; every view and decision is audited with the session id
as the transaction id.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from idp import eids, sessions, tenants
from idp.errors import ConflictError, NotFoundError, VideoIdError
from idp.storage.database import Tx
from idp.web import account_login, browser
from idp.web.browser import client_ip, render, state
from idp.web.login_state import opaque_id
from idp.web.state import AppState
from levels_of_assurance.ladder import Level, parse_acr
from videoid import agents, evidence, records, review
from videoid.records import Session

SESSION_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
STILL_NAMES = {str(k): k for k in agents.STILLS}
# what the review page embeds from the sealed evidence: the stills, and the recording when kept
MEDIA_NAMES = {**STILL_NAMES, str(evidence.Kind.RECORDING): evidence.Kind.RECORDING}
_TENANT_REF = 63


@dataclass(slots=True, frozen=True)
class Agent:
    session: sessions.Session
    tenant: tenants.Tenant

    @property
    def eid_id(self) -> str:
        return self.session.eid_id


@dataclass(slots=True, frozen=True)
class Who:
    """This browser's signed-in person, and whether they are an agent of their tenant."""

    session: sessions.Session
    tenant: tenants.Tenant
    agent: bool
    active: bool


async def _who(request: Request) -> Who | None:
    cookie = request.cookies.get(sessions.COOKIE_NAME)
    if not cookie:
        return None
    now = time.time()

    def load(conn: Any) -> Who | None:
        session = sessions.load(conn, cookie, now=now)
        if session is None:
            return None
        person = eids.get(conn, session.eid_id)
        tenant = tenants.get(conn, session.tenant_id)
        agent = agents.is_agent(conn, tenant_id=tenant.id, eid_id=person.id)
        return Who(session, tenant, agent, person.active and tenant.status == "active")

    return await state(request).db.read(load)


def _forbidden(request: Request) -> Response:
    return render(request, "error.html", status=403, title_key="agent_only")


async def agent_page(request: Request) -> Agent | Response:
    """The agent behind a page request, or the response that signs them in, steps them up, or
    refuses them."""
    who = await _who(request)
    if who is None:
        ref = opaque_id(request.query_params.get("tenant", ""), max_length=_TENANT_REF)
        tenant = None
        if ref:
            try:
                tenant = await state(request).db.read(lambda conn: tenants.get(conn, ref))
            except NotFoundError:
                tenant = None
        if tenant is None or tenant.status != "active":
            return render(request, "error.html", status=403, title_key="agent_sign_in")
        return await account_login.start(request, tenant, level=Level.ADVANCED, next_path="/agent")
    if not (who.agent and who.active):
        return _forbidden(request)
    if parse_acr(who.session.acr) < Level.ADVANCED:
        return await account_login.start(
            request, who.tenant, level=Level.ADVANCED, next_path="/agent", session=who.session
        )
    return Agent(who.session, who.tenant)


async def agent_action(request: Request) -> Agent | None:
    """The agent behind a POST or a still: no redirects, only yes or no."""
    who = await _who(request)
    if who is None or not (who.agent and who.active) or parse_acr(who.session.acr) < Level.ADVANCED:
        return None
    return Agent(who.session, who.tenant)


async def queue_page(request: Request) -> Response:
    agent = await agent_page(request)
    if isinstance(agent, Response):
        return agent
    st = state(request)
    tenant_id, me = agent.tenant.id, agent.eid_id

    def load(conn: Any) -> tuple[list[agents.Waiting], list[Session], Session | None]:
        running = agents.running_led(conn, tenant_id=tenant_id)
        conducting = [s for s in running if s.review.get("assigned_to") == me]
        mine = conducting[0] if conducting else agents.assigned_to(conn, tenant_id=tenant_id, agent_eid_id=me)
        return agents.waiting(conn, tenant_id=tenant_id, agent_eid_id=me), running, mine

    waiting, running, mine = await st.db.read(load)
    now = time.time()
    return render(
        request,
        "agent.html",
        branding=agent.tenant.shown_branding(),
        waiting=[
            {
                "id": w.id,
                "mode": str(w.mode),
                "minutes": int((now - w.queued_at) // 60),
                "votes": w.votes,
                "assigned": w.assigned,
                "own": w.own,
                "voted": w.voted,
            }
            for w in waiting
        ],
        takeable=sum(1 for w in waiting if not (w.assigned or w.own or w.voted)),
        running=[
            {
                "id": s.id,
                # before the person's offer (or on another instance) there is no live capture here
                "step": None,
                "frames": None,
                **st.videoid.status(s),
                "conducted": bool(s.review.get("assigned_to")),
                "mine": s.review.get("assigned_to") == me,
            }
            for s in running
        ],
        mine=None if mine is None else session_path(mine),
        mine_live=mine is not None and mine.status in agents.RUNNING,
        notice=request.query_params.get("notice") if request.query_params.get("notice") in _NOTICES else None,
    )


_NOTICES = ("empty", "approved", "rejected", "returned", "gone", "released")


async def take_next(request: Request) -> Response:
    form = await request.form(max_fields=4, max_part_size=1024)
    if not browser.csrf_ok(request, form.get("csrf_token")):
        return render(request, "error.html", status=403, title_key="csrf")
    agent = await agent_action(request)
    if agent is None:
        return _forbidden(request)
    tenant_id, me, ip = agent.tenant.id, agent.eid_id, client_ip(request)
    session = await state(request).db.write(
        lambda tx: agents.take_next(tx, tenant_id=tenant_id, agent_eid_id=me, client_ip=ip)
    )
    if session is None:
        return RedirectResponse("/agent?notice=empty", status_code=303)
    return RedirectResponse(session_path(session), status_code=303)


def session_path(session: Session) -> str:
    """Where the agent works on a session: its live view while it runs, else its review page."""
    live = "/live" if session.status in agents.RUNNING else ""
    return f"/agent/sessions/{session.id}{live}"


def _refusal(request: Request, exc: Exception) -> Response:
    if isinstance(exc, NotFoundError):
        return render(request, "error.html", status=404, title_key="not_found")
    if isinstance(exc, VideoIdError) and exc.code == "wrong_state":
        return RedirectResponse("/agent?notice=gone", status_code=303)
    return _forbidden(request)


async def review_page(request: Request) -> Response:
    agent = await agent_page(request)
    if isinstance(agent, Response):
        return agent
    session_id = request.path_params["session_id"]
    if not SESSION_ID.fullmatch(session_id):
        return render(request, "error.html", status=404, title_key="not_found")
    st = state(request)
    tenant_id, me, ip, secret = agent.tenant.id, agent.eid_id, client_ip(request), st.settings.secret_key

    def unit(tx: Tx) -> tuple[Session, dict[str, Any] | None, list[str], eids.EID]:
        session = agents.opened(tx.conn, session_id=session_id, tenant_id=tenant_id, agent_eid_id=me)
        agents.viewed(tx, session, agent_eid_id=me, item="review", client_ip=ip)
        report = evidence.report_of(tx.conn, secret=secret, session_id=session.id)
        person = eids.get(tx.conn, session.eid_id)
        return session, report, agents.media_of(tx.conn, session_id=session.id), person

    try:
        session, report, stills, person = await st.db.write(unit)
    except (NotFoundError, VideoIdError) as exc:
        if (
            isinstance(exc, VideoIdError)
            and exc.code == "wrong_state"
            and await _conducting(st, agent, session_id)
        ):
            return RedirectResponse(f"/agent/sessions/{session_id}/live", status_code=303)
        return _refusal(request, exc)
    return _review(request, agent, session, report or {}, stills, person)


async def _conducting(st: AppState, agent: Agent, session_id: str) -> bool:
    """Whether the agent conducts the session while it still runs (its page is the live view)."""
    tenant_id, me = agent.tenant.id, agent.eid_id
    try:
        await st.db.read(
            lambda conn: agents.conducted(conn, session_id=session_id, tenant_id=tenant_id, agent_eid_id=me)
        )
    except (NotFoundError, VideoIdError):
        return False
    return True


def _review(
    request: Request,
    agent: Agent,
    session: Session,
    report: dict[str, Any],
    stills: list[str],
    person: eids.EID,
    *,
    status: int = 200,
    error: str | None = None,
    form: dict[str, Any] | None = None,
) -> Response:
    votes = list(session.review.get("votes", []))
    return render(
        request,
        "agent_session.html",
        status=status,
        branding=agent.tenant.shown_branding(),
        return_path=f"/agent/sessions/{session.id}",
        session_id=session.id,
        mode=str(session.mode),
        stills=stills,
        report=report,
        document=report.get("document") or {},
        face=report.get("face") or {},
        liveness=report.get("liveness"),
        sms=report.get("sms") or {},
        tilt=report.get("tilt") or {},
        automated=report.get("automated") or {},
        steps=dict(session.steps),
        person={"given_name": person.value("given_name"), "family_name": person.value("family_name")},
        earlier_rejection=any(not v.get("approve") for v in votes),
        checklist=agents.CHECKLIST,
        reasons=[str(r) for r in agents.Reason],
        lapse_minutes=review.ASSIGNMENT_SECONDS // 60,
        error=error,
        form=form or {"checklist": {}, "reason": "", "note": ""},
    )


async def still(request: Request) -> Response:
    return await _media(request, request.path_params["name"], STILL_NAMES)


async def recording(request: Request) -> Response:
    """The session's recording, for the assigned agent to watch (``<video>`` on the review page)."""
    return await _media(request, str(evidence.Kind.RECORDING), MEDIA_NAMES)


async def _media(request: Request, name: str, allowed: dict[str, evidence.Kind]) -> Response:
    agent = await agent_action(request)
    if agent is None:
        return Response(status_code=403, headers={"Cache-Control": "no-store"})
    session_id = request.path_params["session_id"]
    kind = allowed.get(name)
    if kind is None or not SESSION_ID.fullmatch(session_id):
        return Response(status_code=404, headers={"Cache-Control": "no-store"})
    st = state(request)
    tenant_id, me, ip, secret = agent.tenant.id, agent.eid_id, client_ip(request), st.settings.secret_key

    def unit(tx: Tx) -> evidence.Item | None:
        session = agents.opened(tx.conn, session_id=session_id, tenant_id=tenant_id, agent_eid_id=me)
        item = agents.still(tx.conn, secret=secret, session_id=session.id, kind=kind)
        if item is not None:
            agents.viewed(tx, session, agent_eid_id=me, item=str(kind), client_ip=ip)
        return item

    try:
        item = await st.db.write(unit)
    except NotFoundError:
        return Response(status_code=404, headers={"Cache-Control": "no-store"})
    except VideoIdError:
        return Response(status_code=403, headers={"Cache-Control": "no-store"})
    if item is None:
        return Response(status_code=404, headers={"Cache-Control": "no-store"})
    return Response(
        item.data,
        media_type=item.media_type,
        headers={
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'",
            "Cross-Origin-Resource-Policy": "same-origin",
        },
    )


async def _session_post(
    request: Request, *, max_fields: int, max_part_size: int
) -> tuple[Agent, str, FormData] | Response:
    """A form post about one session by an agent: its CSRF token checked, the agent and the
    session id (well-formed; whether the agent may act on it is the domain's to say)."""
    form = await request.form(max_fields=max_fields, max_part_size=max_part_size)
    if not browser.csrf_ok(request, form.get("csrf_token")):
        return render(request, "error.html", status=403, title_key="csrf")
    agent = await agent_action(request)
    if agent is None:
        return _forbidden(request)
    session_id = request.path_params["session_id"]
    if not SESSION_ID.fullmatch(session_id):
        return render(request, "error.html", status=404, title_key="not_found")
    return agent, session_id, form


async def decide(request: Request) -> Response:
    posted = await _session_post(request, max_fields=16, max_part_size=4096)
    if isinstance(posted, Response):
        return posted
    agent, session_id, form = posted
    st = state(request)
    tenant_id, me, ip, secret = agent.tenant.id, agent.eid_id, client_ip(request), st.settings.secret_key
    action = form.get("decision")
    checklist = {item: form.get(item) == "yes" for item in agents.CHECKLIST}
    reason = str(form.get("reason") or "")[:64]
    note = str(form.get("note") or "")[: agents.MAX_NOTE + 1]
    submitted: dict[str, Any] = {"checklist": checklist, "reason": reason, "note": note}
    try:
        if action not in ("approve", "reject"):
            raise VideoIdError("invalid_decision", "the decision is approve or reject")
        verdict = agents.verdict(
            approve=action == "approve",
            checklist=checklist,
            reason=reason or None,
            note=note,
        )
    except VideoIdError as exc:
        return await _again(request, agent, session_id, exc.code, submitted)
    try:
        done = await st.db.write(
            lambda tx: agents.decide(
                tx,
                session_id=session_id,
                tenant_id=tenant_id,
                agent_eid_id=me,
                decision=verdict,
                secret=secret,
                client_ip=ip,
            )
        )
    except (NotFoundError, VideoIdError, ConflictError) as exc:
        if isinstance(exc, ConflictError):
            return RedirectResponse("/agent?notice=gone", status_code=303)
        return _refusal(request, exc)
    if done.status is records.Status.AWAITING_REVIEW:
        notice = "returned"
    else:
        notice = "approved" if done.decision == "approved" else "rejected"
    return RedirectResponse(f"/agent?notice={notice}", status_code=303)


async def release(request: Request) -> Response:
    posted = await _session_post(request, max_fields=4, max_part_size=1024)
    if isinstance(posted, Response):
        return posted
    agent, session_id, _ = posted
    tenant_id, me, ip = agent.tenant.id, agent.eid_id, client_ip(request)
    try:
        await state(request).db.write(
            lambda tx: agents.release(
                tx, session_id=session_id, tenant_id=tenant_id, agent_eid_id=me, client_ip=ip
            )
        )
    except (NotFoundError, VideoIdError) as exc:
        return _refusal(request, exc)
    return RedirectResponse("/agent?notice=released", status_code=303)


async def _again(
    request: Request, agent: Agent, session_id: str, error: str, submitted: dict[str, Any]
) -> Response:
    """The review page once more with what was wrong in the decision (400)."""
    st = state(request)
    tenant_id, me, secret = agent.tenant.id, agent.eid_id, st.settings.secret_key

    def load(conn: Any) -> tuple[Session, dict[str, Any] | None, list[str], eids.EID]:
        session = agents.opened(conn, session_id=session_id, tenant_id=tenant_id, agent_eid_id=me)
        report = evidence.report_of(conn, secret=secret, session_id=session.id)
        return session, report, agents.media_of(conn, session_id=session.id), eids.get(conn, session.eid_id)

    try:
        session, report, stills, person = await st.db.read(load)
    except (NotFoundError, VideoIdError) as exc:
        return _refusal(request, exc)
    return _review(
        request, agent, session, report or {}, stills, person, status=400, error=error, form=submitted
    )


routes = [
    Route("/agent", queue_page, methods=["GET"]),
    Route("/agent/next", take_next, methods=["POST"]),
    Route("/agent/sessions/{session_id}", review_page, methods=["GET"]),
    Route("/agent/sessions/{session_id}/stills/{name}", still, methods=["GET"]),
    Route("/agent/sessions/{session_id}/recording", recording, methods=["GET"]),
    Route("/agent/sessions/{session_id}/decision", decide, methods=["POST"]),
    Route("/agent/sessions/{session_id}/release", release, methods=["POST"]),
]
