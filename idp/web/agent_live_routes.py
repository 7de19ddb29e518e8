"""The live view of an agent-led session in the agent console (``/agent/sessions/{id}/live…``).

The agent who conducts a running agent-led session (``POST /agent/next`` gives it to them,
:func:`videoid.agents.conducted`) watches the person's video while the session runs:

- ``GET /agent/sessions/{id}/live`` the page: the video, and beside it the session's live
  status; once the session's checks are done it goes on to the review page;
- ``GET /agent/sessions/{id}/live/status`` what the page polls: the status the person's page
  polls (:meth:`videoid.service.VideoIdService.status`), with ``video`` (the person's video
  runs), ``sound`` (``microphone``: their sound arrives; ``voice``: they speak now), ``viewer``
  (the state of the agent's connection) and, once the session no longer runs, ``review_url``;
- ``POST /agent/sessions/{id}/watch`` the page's WebRTC offer (receive-only video and sound) → the answer
  (:mod:`videoid.live_view`), audited as ``videoid.live_watched``; a second one replaces the first;
- ``POST /agent/sessions/{id}/watch/end`` the agent leaves: the server closes their connection.

Only the conducting agent, signed in at the advanced level, never for their own eID. The JSON
endpoints want the page's CSRF token in ``X-CSRF-Token`` and answer errors as
:mod:`idp.web.page_json` does: 400 a bad offer, 403 not an agent / not theirs / their own eID /
no CSRF, 404 an unknown session, 409 the session or its video does not run, or no consent yet.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from idp.errors import NotFoundError, VideoIdError
from idp.storage.database import Tx
from idp.web import page_json
from idp.web.agent_routes import SESSION_ID, Agent, agent_action, agent_page
from idp.web.browser import client_ip, render, state
from videoid import agents, records
from videoid.live_view import NOT_LIVE
from videoid.records import Session

NO_STORE = {"Cache-Control": "no-store"}


async def live_page(request: Request) -> Response:
    agent = await agent_page(request)
    if isinstance(agent, Response):
        return agent
    session_id = request.path_params["session_id"]
    if not SESSION_ID.fullmatch(session_id):
        return render(request, "error.html", status=404, title_key="not_found")
    st = state(request)
    tenant_id, me, ip = agent.tenant.id, agent.eid_id, client_ip(request)

    def unit(tx: Tx) -> Session:
        session = agents.conducted(tx.conn, session_id=session_id, tenant_id=tenant_id, agent_eid_id=me)
        agents.viewed(tx, session, agent_eid_id=me, item="live", client_ip=ip)
        return session

    try:
        session = await st.db.write(unit)
    except NotFoundError:
        return render(request, "error.html", status=404, title_key="not_found")
    except VideoIdError as exc:
        if exc.code == "not_live":  # its checks are done: the review page (or "gone")
            return RedirectResponse(f"/agent/sessions/{session_id}", status_code=303)
        return render(request, "error.html", status=403, title_key="agent_only")
    return render(
        request,
        "agent_live.html",
        branding=agent.tenant.shown_branding(),
        session_id=session.id,
        ice_servers=json.dumps(list(st.settings.videoid_ice_servers)),
        live=_status(request, session),
    )


def _status(request: Request, session: Session) -> dict[str, Any]:
    videoid = state(request).videoid
    viewer = videoid.viewers.get(session.id)
    return {
        **videoid.status(session),
        "video": videoid.video_runs(session.id),
        "sound": videoid.sound(session.id),
        "viewer": None if viewer is None else viewer.state,
    }


async def _conducted(request: Request, agent: Agent | None) -> Session | Response | None:
    """The session in the path if ``agent`` conducts it and it runs; None if it is theirs but no
    longer runs; else the JSON refusal."""
    if agent is None:
        return page_json.error(
            403, "forbidden", "only the agent conducting the session, signed in at the advanced level"
        )
    session_id = request.path_params["session_id"]
    if not SESSION_ID.fullmatch(session_id):
        return page_json.error(404, "not_found", "no such video identification session")
    tenant_id, me = agent.tenant.id, agent.eid_id
    try:
        return await state(request).db.read(
            lambda conn: agents.conducted(conn, session_id=session_id, tenant_id=tenant_id, agent_eid_id=me)
        )
    except NotFoundError:
        return page_json.error(404, "not_found", "no such video identification session")
    except VideoIdError as exc:
        return None if exc.code == "not_live" else page_json.error(403, exc.code, str(exc))


async def live_status(request: Request) -> Response:
    session = await _conducted(request, await agent_action(request))
    if session is None:
        session_id = request.path_params["session_id"]  # ours, but over: on to its review
        done = await state(request).db.read(lambda conn: records.get(conn, session_id))
        body = {"status": str(done.status), "review_url": f"/agent/sessions/{session_id}"}
        return JSONResponse(body, headers=NO_STORE)
    if isinstance(session, Response):
        return session
    return JSONResponse(_status(request, session), headers=NO_STORE)


async def watch(request: Request) -> Response:
    if (refused := page_json.csrf_refused(request)) is not None:
        return refused
    agent = await agent_action(request)
    session = await _conducted(request, agent)
    if session is None:
        return page_json.error(409, "not_live", NOT_LIVE)
    if isinstance(session, Response):
        return session
    assert agent is not None
    data = await page_json.body(request)
    if isinstance(data, Response):
        return data
    sdp, kind = data.get("sdp"), data.get("type")
    if not isinstance(sdp, str) or not isinstance(kind, str):
        return page_json.error(400, "invalid_offer", 'expected {"sdp": …, "type": "offer"}')
    st = state(request)
    try:
        answer_sdp, answer_type = await st.videoid.watch(session, sdp=sdp, kind=kind)
    except VideoIdError as exc:
        return page_json.error(400 if exc.code == "invalid_offer" else 409, exc.code, str(exc))
    tenant_id, me, ip = agent.tenant.id, agent.eid_id, client_ip(request)

    def audited(tx: Tx) -> None:
        current = agents.conducted(tx.conn, session_id=session.id, tenant_id=tenant_id, agent_eid_id=me)
        agents.watched(tx, current, agent_eid_id=me, client_ip=ip)

    try:
        await st.db.write(audited)
    except (NotFoundError, VideoIdError) as exc:  # it changed meanwhile: no unaudited watching
        await st.videoid.viewers.stop(session.id)
        return page_json.error(409, getattr(exc, "code", "not_found"), str(exc))
    except BaseException:
        await st.videoid.viewers.stop(session.id)
        raise
    return JSONResponse({"sdp": answer_sdp, "type": answer_type}, headers=NO_STORE)


async def watch_end(request: Request) -> Response:
    if (refused := page_json.csrf_refused(request)) is not None:
        return refused
    session = await _conducted(request, await agent_action(request))
    if session is None:
        return JSONResponse({"stopped": False}, headers=NO_STORE)  # over: its viewer closed with it
    if isinstance(session, Response):
        return session
    stopped = await state(request).videoid.viewers.stop(session.id)
    return JSONResponse({"stopped": stopped}, headers=NO_STORE)


routes = [
    Route("/agent/sessions/{session_id}/live", live_page, methods=["GET"]),
    Route("/agent/sessions/{session_id}/live/status", live_status, methods=["GET"]),
    Route("/agent/sessions/{session_id}/watch", watch, methods=["POST"]),
    Route("/agent/sessions/{session_id}/watch/end", watch_end, methods=["POST"]),
]
