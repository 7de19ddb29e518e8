"""The authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2): issue a code when the SSO
session satisfies the request, otherwise start a login, and continue once the login is done.

A login that completes in a form post (the last factor proven) is answered at once with the
redirect back to the client (:func:`after_login`); ``/authorize/resume`` continues the requests
whose login ends elsewhere (an email link, video identification).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749.errors import OAuth2Error
from sqlalchemy import Connection, bindparam, select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from idp import audit, eids, secrets, sessions
from idp.clients import Client
from idp.storage import tables
from idp.storage.database import Tx
from idp.storage.prepared import Prepared
from idp.web import account_login, browser
from idp.web.browser import client_ip, render, state
from idp.web.oidc_routes import AVAILABLE_LEVEL, error_page, load_session, public_request
from levels_of_assurance.policy import Factor
from oidc import authorization, store
from oidc.context import GrantContext, current
from oidc.models import OAuthClient, Subject
from oidc.server import OAuthResponse
from oidc.starlette.requests import StarletteOAuth2Request, from_params

AUTH_REQUEST_TTL = 30 * 60
# state comes back in the redirect URL, and URLs much longer than 8 kB break on the way
MAX_STATE = 4096
if TYPE_CHECKING:
    from idp.web.state import AppState

REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what secrets.new_secret makes
_NEW_REQUEST = Prepared(tables.auth_requests.insert())


async def authorize(request: Request) -> Response:
    browser.hint_language(request, request.query_params.get("ui_locales"))  # for its error pages
    req = await public_request(request, "/authorize")
    if isinstance(req, Response):
        return req
    return await _authorize(request, req, fresh_since=None)


@dataclass(slots=True)
class Answer:
    """What the authorization endpoint answers, decided before anything is written.

    ``save`` writes what the answer needs (the code, or the login it starts) in the caller's
    transaction; :func:`respond` turns the answer into the response once that committed.
    """

    result: OAuthResponse | None  # a redirect to the client (code or error), or an error page
    save: Callable[[Tx], None] | None = None
    login_request: str | None = None  # the id of the login this answer starts


@dataclass(slots=True, frozen=True)
class Asked:
    """An authorization request with what deciding it needs from outside: its client and the
    browser's id (a new one for a browser that has none yet)."""

    req: StarletteOAuth2Request
    client: Client | None
    browser: str
    client_ip: str | None
    new_browser: bool


async def _asked(request: Request, req: StarletteOAuth2Request) -> Asked:
    client_id = req.payload.data.get("client_id")
    clients = state(request).clients
    client = await clients.get(client_id) if isinstance(client_id, str) and client_id else None
    known = browser.browser_id(request)
    return Asked(req, client, known or secrets.new_secret(), client_ip(request), known is None)


async def _authorize(
    request: Request,
    req: StarletteOAuth2Request,
    *,
    fresh_since: float | None,
) -> Response:
    """Answer the authorization request ``req`` with the session of the browser's cookie."""
    data = req.payload.data
    if len(data.get("state") or "") > MAX_STATE:  # too long to send back: no redirect
        too_long = f"state is longer than {MAX_STATE} characters, too long to come back in a URL"
        body = {"error": "invalid_request", "error_description": too_long}
        return error_page(request, OAuthResponse(400, body))
    st = state(request)
    asked = await _asked(request, req)
    now = time.time()
    session, person = await load_session(request, now)
    answer = decide(st, asked, session=session, person=person, now=now, fresh_since=fresh_since)
    if answer.save is not None:
        await st.db.write(answer.save)
    return respond(request, asked, answer)


def decide(
    st: AppState,
    asked: Asked,
    *,
    session: sessions.Session | None,
    person: eids.EID | None,
    now: float,
    fresh_since: float | None,
) -> Answer:
    """Decide the authorization request (authlib's checks, the level, whether a login is needed)
    with ``session``; no I/O, so it can run inside a unit of work."""
    server = st.provider.server
    req, client = asked.req, asked.client
    data = req.payload.data
    ctx = GrantContext(
        client=OAuthClient(client) if client else None, tenant_id=client.tenant_id if client else None
    )
    usable = session is not None and person is not None and person.active
    subject = Subject(person, session.sid) if usable and person is not None and session is not None else None

    reset = current.set(ctx)
    try:
        try:
            grant = server.get_consent_grant(request=req, end_user=subject)
        except OAuth2Error as error:
            failure = error
            if error.error == "login_required" and client is not None and error.redirect_uri:
                # authlib's own prompt=none check (no session at all) comes first and says nothing
                # more; a level no login can reach is the more useful answer, as with a session
                try:
                    authorization.requested_level(
                        data, client, available=AVAILABLE_LEVEL, redirect_uri=error.redirect_uri
                    )
                    error.description = error.description or (
                        f"the person must authenticate ({authorization.LoginReason.NO_SESSION}) "
                        "but prompt=none was requested"
                    )
                except OAuth2Error as unmet:
                    failure = unmet
            failure.state = data.get("state")
            response = server.handle_error_response(req, failure)
            server.execute_hook("after_create_authorization_response", response)
            return Answer(response)
        assert client is not None
        redirect_uri = grant.redirect_uri
        try:
            level = authorization.requested_level(
                data, client, available=AVAILABLE_LEVEL, redirect_uri=redirect_uri, state=data.get("state")
            )
            reason = authorization.login_reason(
                session if usable else None,
                client=client,
                level=level.requested,
                prompt=data.get("prompt"),
                max_age=data.get("max_age"),
                now=now,
                fresh_since=fresh_since,
            )
            if reason is not None and "none" in (data.get("prompt") or "").split():
                raise authorization.LoginRequiredError(
                    f"the person must authenticate ({reason}) but prompt=none was requested",
                    redirect_uri=redirect_uri,
                    state=data.get("state"),
                )
        except OAuth2Error as error:
            if error.redirect_uri is None:
                error.redirect_uri = redirect_uri
            error.state = data.get("state")
            response = server.handle_error_response(req, error)
            server.execute_hook("after_create_authorization_response", response)
            return Answer(response)
        if reason is not None:
            carried = _carried(session if usable else None, client, reason, data.get("max_age"), now)
            return _start_login(asked, client, dict(data), reason, level.requested.acr, carried)
        assert session is not None and subject is not None
        ctx.session = session
        ctx.acr = authorization.issued_acr(session, level.requested)
        response = server.create_authorization_response(request=req, grant_user=subject, grant=grant)
    finally:
        current.reset(reset)

    if ctx.new_code is None:
        return Answer(response)
    row = ctx.new_code
    event = audit.AuditEvent(
        "authorization.code_issued",
        tenant_id=client.tenant_id,
        eid_id=subject.eid.id,
        username=subject.eid.username,
        client_ip=asked.client_ip,
        transaction_id=_transaction_id(data.get("state")),
        details={"client_id": client.client_id, "acr": ctx.acr, "scope": row["scope"], "sid": session.sid},
    )
    return Answer(response, lambda tx: store.save_code(tx, row=row, event=event))


def respond(request: Request, asked: Asked, answer: Answer, *, redirect_status: int = 302) -> Response:
    """The response to a decided (and saved) :class:`Answer`."""
    if answer.login_request is not None:
        response = RedirectResponse(f"/login?request_id={answer.login_request}", status_code=303)
        if asked.new_browser:
            browser.set_cookie(
                response, browser.BROWSER_COOKIE, asked.browser, max_age=browser.BROWSER_COOKIE_MAX_AGE
            )
        return response
    assert answer.result is not None
    return error_page(request, answer.result, redirect_status=redirect_status)


def _transaction_id(rp_state: str | None) -> str | None:
    """The RP's ``state`` names its transaction in the audit trail, when it fits the column."""
    if rp_state and len(rp_state) <= 64 and rp_state.isprintable():
        return rp_state
    return None


def _carried(
    session: sessions.Session | None, client: Client, reason: str, max_age: str | None, now: float
) -> tuple[str | None, list[Factor]]:
    """Who a new login is for and which factors still count: step-up asks only for what is missing.

    A session of the same tenant identifies the person; its factors count towards a higher level
    unless ``prompt=login`` asks for a new authentication, or are older than ``max_age``.
    """
    if session is None or session.tenant_id != client.tenant_id:
        return None, []
    if reason == authorization.LoginReason.PROMPT_LOGIN:
        return session.eid_id, []
    factors = list(session.factors)
    if max_age and max_age.isdigit():
        factors = [f for f in factors if f.at >= now - int(max_age)]
    return session.eid_id, factors


def _start_login(
    asked: Asked,
    client: Client,
    params: dict[str, str],
    reason: str,
    acr: str,
    carried: tuple[str | None, list[Factor]],
) -> Answer:
    eid_id, factors = carried
    request_id = secrets.new_secret(24)

    def save(tx: Tx) -> None:
        _NEW_REQUEST.run(
            tx.conn,
            {
                "id": request_id,
                "client_id": client.client_id,
                "params": params,
                "browser_digest": secrets.digest(asked.browser),
                "created_at": tx.now,
                "expires_at": tx.now + AUTH_REQUEST_TTL,
                "acr": acr,
                "eid_id": eid_id,
                "factors": [f.to_json() for f in factors],
            },
        )
        audit.record(
            tx,
            audit.AuditEvent(
                "authorization.login_required",
                tenant_id=client.tenant_id,
                client_ip=asked.client_ip,
                transaction_id=request_id,
                details={"client_id": client.client_id, "reason": reason, "acr": acr},
                process_state="awaiting_login",
            ),
        )

    return Answer(None, save, request_id)


_AUTH_REQUEST = Prepared(select(tables.auth_requests).where(tables.auth_requests.c.id == bindparam("id")))


async def resume(request: Request) -> Response:
    """Continue an authorization request after the person logged in (or show why not)."""
    st = state(request)
    request_id = request.query_params.get("request_id", "")
    browser_value = browser.browser_id(request)

    def load(conn: Connection) -> Any:
        return _AUTH_REQUEST.first(conn, {"id": request_id})

    row = await st.db.read(load) if REQUEST_ID.fullmatch(request_id) else None
    if (
        row is None
        or browser_value is None
        or not secrets.matches(browser_value, row["browser_digest"])
        or row["expires_at"] <= time.time()
    ):
        return render(
            request,
            "error.html",
            status=400,
            title_key="request_expired",
        )
    if account_login.is_internal(row["params"]):
        return internal_target(request, row["params"])
    req = from_params(method="GET", uri=st.settings.issuer + "/authorize", params=row["params"])
    return await _authorize(request, req, fresh_since=row["created_at"])


async def continuation(request: Request, *, params: dict[str, Any], created_at: float) -> Asked | None:
    """What continuing a login's authorization request (``params``, created at ``created_at``)
    needs from outside the transaction that completes the login; None for an account login."""
    if account_login.is_internal(params):
        return None
    req = from_params(method="GET", uri=state(request).settings.issuer + "/authorize", params=params)
    return await _asked(request, req)


def after_login(
    st: AppState, asked: Asked, *, created_at: float, session: sessions.Session, person: eids.EID, tx: Tx
) -> Answer:
    """In the transaction that completed a login with ``session``: decide its authorization
    request and save what it needs (the code) there too. What ``/authorize/resume`` would answer,
    one redirect and one transaction sooner."""
    answer = decide(st, asked, session=session, person=person, now=tx.now, fresh_since=created_at)
    if answer.save is not None:
        answer.save(tx)
    return answer


def internal_target(request: Request, params: dict[str, Any]) -> Response:
    """Where an account login goes back to: the account page, not an app."""
    target = account_login.resume_target(params)
    if target is None:
        return render(request, "error.html", status=400, title_key="request_expired")
    return RedirectResponse(target, status_code=303)


routes = [
    Route("/authorize", authorize, methods=["GET", "POST"]),
    Route("/authorize/resume", resume, methods=["GET"]),
]
