"""The person's video identification pages and their JSON endpoints (``/videoid/…``).

Who may start: a person signed in at least at the advanced level (an SSO session of this
browser), or one in the middle of a login for a client that asks for the qualified level, who
has already proven the advanced factors (``?request_id=``; afterwards the login page completes
the login and sends the browser back to the client). Every later request must come from the
browser that started the session. JSON endpoints carry the page's CSRF token in
``X-CSRF-Token``; their errors are ``{"error": code, "error_description": text}`` with 400 (bad
input), 403 (not yours / no CSRF), 404 (unknown session) or 409 (wrong state).

- ``GET /videoid/start`` consent page; ``POST /videoid/start`` starts the session with the consent
  recorded (both audited), then ``GET /videoid/{id}`` is the capture page;
- ``POST /videoid/{id}/offer`` WebRTC offer → answer; ``GET /videoid/{id}/status`` live feedback;
- ``POST /videoid/{id}/code`` the SMS code read back; ``GET /videoid/{id}/result`` the outcome.
"""

from __future__ import annotations

import json
import re
import time
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from idp import logins, sessions, tenants
from idp.errors import IdPError, NotFoundError, VideoIdError
from idp.web import browser, page_json
from idp.web.branding import sms_name
from idp.web.browser import client_ip, render, state
from idp.web.i18n import SMS_VIDEOID_CODE
from idp.web.login_state import current
from levels_of_assurance.ladder import Level, parse_acr
from levels_of_assurance.policy import level_of
from otp.totp import OTPError
from videoid import records
from videoid.policy import Mode
from videoid.records import Status

SESSION_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")


async def _eligible(request: Request, request_id: str | None) -> tuple[str, str | None] | None:
    """``(eid_id, request_id)`` of who may start a session here, or None."""
    if request_id:
        login = await current(request, request_id)
        if login is None or login.eid_id is None:
            return None
        reached = level_of(logins.decision(login, requested=Level.ADVANCED).counted)
        if reached is None or reached < Level.ADVANCED:
            return None
        return login.eid_id, login.request_id
    cookie = request.cookies.get(sessions.COOKIE_NAME)
    now = time.time()
    session = (
        await state(request).db.read(lambda conn: sessions.load(conn, cookie, now=now)) if cookie else None
    )
    if session is None or parse_acr(session.acr) < Level.ADVANCED:
        return None
    return session.eid_id, None


def _refused(request: Request) -> Response:
    return render(request, "error.html", status=403, title_key="videoid_not_eligible")


async def start_page(request: Request) -> Response:
    request_id = request.query_params.get("request_id") or None
    if await _eligible(request, request_id) is None:
        return _refused(request)
    return render(request, "videoid_start.html", request_id=request_id or "", error=None)


async def start(request: Request) -> Response:
    form = await request.form(max_fields=8, max_part_size=1024)
    if not browser.csrf_ok(request, form.get("csrf_token")):
        return render(request, "error.html", status=403, title_key="csrf")
    request_id = str(form.get("request_id") or "")[:64] or None
    who = await _eligible(request, request_id)
    browser_value = browser.browser_id(request)
    if who is None or browser_value is None:
        return _refused(request)
    if form.get("consent") != "yes":
        return render(
            request, "videoid_start.html", status=400, request_id=request_id or "", error="consent_required"
        )
    service, ip = state(request).videoid, client_ip(request)
    try:
        session = await service.start(eid_id=who[0], browser=browser_value, request_id=who[1], client_ip=ip)
    except VideoIdError as exc:
        return render(request, "videoid_start.html", status=409, request_id=request_id or "", error=exc.code)
    await service.consent(session.id, client_ip=ip)
    return RedirectResponse(f"/videoid/{session.id}", status_code=303)


async def _session(request: Request) -> records.Session | Response:
    """The session named in the path, if this browser started it (a JSON error otherwise)."""
    session_id = request.path_params["session_id"]
    if not SESSION_ID.fullmatch(session_id):
        return page_json.error(404, "not_found", "no such video identification session")
    try:
        session = await state(request).db.read(lambda conn: records.get(conn, session_id))
    except NotFoundError:
        return page_json.error(404, "not_found", "no such video identification session")
    if not session.belongs_to(browser.browser_id(request)):
        return page_json.error(403, "forbidden", "this session belongs to another browser")
    return session


async def capture_page(request: Request) -> Response:
    session = await _session(request)
    if isinstance(session, Response):
        return render(request, "error.html", status=session.status_code, title_key="not_found")
    if session.status.final or session.status is Status.AWAITING_REVIEW:
        return RedirectResponse(f"/videoid/{session.id}/result", status_code=303)
    ice = list(state(request).settings.videoid_ice_servers)
    return render(
        request,
        "videoid.html",
        session_id=session.id,
        ice_servers=json.dumps(ice),
        challenges=list(session.challenges),
        # an agent hears the person (live, or in the recording) only in these modes; a fully
        # automated session records no voice, which nobody would listen to (data minimisation)
        microphone=session.mode is not Mode.AUTOMATED,
        # in an agent-led session the person also hears the agent who watches live
        agent_voice=session.mode is Mode.AGENT_LED,
    )


async def offer(request: Request) -> Response:
    session = await _session(request)
    if isinstance(session, Response):
        return session
    if (refused := page_json.csrf_refused(request)) is not None:
        return refused
    data = await page_json.body(request)
    if isinstance(data, Response):
        return data
    sdp, kind = data.get("sdp"), data.get("type")
    if not isinstance(sdp, str) or not isinstance(kind, str):
        return page_json.error(400, "invalid_offer", 'expected {"sdp": …, "type": "offer"}')
    st = state(request)
    tenant = await st.db.read(lambda conn: tenants.get(conn, session.tenant_id))
    lang, name = browser.language(request), sms_name(tenant.branding, tenant.name)
    try:
        answer_sdp, answer_type = await st.videoid.offer(
            session,
            sdp=sdp,
            kind=kind,
            client_ip=client_ip(request),
            sms_text=lambda code: st.pages.gettext(lang, SMS_VIDEOID_CODE, code=code, name=name),
            sms_locale=lang,
        )
    except VideoIdError as exc:
        status = 400 if exc.code == "invalid_offer" else 409
        return page_json.error(status, exc.code, str(exc))
    return JSONResponse({"sdp": answer_sdp, "type": answer_type}, headers={"Cache-Control": "no-store"})


async def status(request: Request) -> Response:
    session = await _session(request)
    if isinstance(session, Response):
        return session
    body = state(request).videoid.status(session)
    if body["status"] in {str(s) for s in Status if s.final} | {str(Status.AWAITING_REVIEW)}:
        body["result_url"] = f"/videoid/{session.id}/result"
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


async def code(request: Request) -> Response:
    session = await _session(request)
    if isinstance(session, Response):
        return session
    if (refused := page_json.csrf_refused(request)) is not None:
        return refused
    data = await page_json.body(request)
    if isinstance(data, Response):
        return data
    value = data.get("code")
    if not isinstance(value, str) or len(value) > 32:
        return page_json.error(400, "invalid_request", 'expected {"code": "123456"}')
    try:
        done = await state(request).videoid.submit_code(session, value, client_ip=client_ip(request))
    except OTPError as exc:
        left = getattr(exc, "attempts_left", None)
        body = (
            {"result_url": f"/videoid/{session.id}/result"}
            if exc.code not in ("malformed", "invalid")
            else {}
        )
        return page_json.error(400, f"code_{exc.code}", str(exc), attempts_left=left, **body)
    except VideoIdError as exc:
        return page_json.error(409, exc.code, str(exc))
    except IdPError as exc:
        return page_json.error(503, "unavailable", str(exc))
    return JSONResponse(
        {"status": str(done.status), "decision": done.decision, "result_url": f"/videoid/{done.id}/result"},
        headers={"Cache-Control": "no-store"},
    )


async def result(request: Request) -> Response:
    session = await _session(request)
    if isinstance(session, Response):
        return render(request, "error.html", status=session.status_code, title_key="not_found")
    if not (session.status.final or session.status is Status.AWAITING_REVIEW):
        return RedirectResponse(f"/videoid/{session.id}", status_code=303)
    next_url = f"/login?{urlencode({'request_id': session.request_id})}" if session.request_id else "/"
    return render(
        request,
        "videoid_result.html",
        outcome=str(session.status),
        reasons=list(session.reasons),
        next_url=next_url,
        returning=session.request_id is not None,
    )


routes = [
    Route("/videoid/start", start_page, methods=["GET"]),
    Route("/videoid/start", start, methods=["POST"]),
    Route("/videoid/{session_id}", capture_page, methods=["GET"]),
    Route("/videoid/{session_id}/offer", offer, methods=["POST"]),
    Route("/videoid/{session_id}/status", status, methods=["GET"]),
    Route("/videoid/{session_id}/code", code, methods=["POST"]),
    Route("/videoid/{session_id}/result", result, methods=["GET"]),
]
