"""What every sign-in step shares: the login of this request, and completing it."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from idp import logins, sessions
from idp.errors import ConflictError
from idp.web import authorize_routes, browser
from idp.web.browser import client_ip, render, state
from levels_of_assurance.policy import Decision

_TOKEN = re.compile(r"[A-Za-z0-9_-]+")


def opaque_id(value: object, *, max_length: int = 64) -> str:
    """``value`` if it is an id we make (base64url or UUID, at most ``max_length``), else "".

    Anything else cannot name a row, and some of it (NUL) cannot even be sent to PostgreSQL.
    """
    text = value if isinstance(value, str) else ""
    return text if len(text) <= max_length and _TOKEN.fullmatch(text) else ""


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


async def current(request: Request, request_id: str | None) -> logins.Login | None:
    """The live login for this request id, in this browser."""
    if request_id is None or not opaque_id(request_id):
        return None
    wanted = request_id
    browser_value, now = browser.browser_id(request), time.time()
    login = await state(request).db.read(
        lambda conn: logins.load(conn, wanted, browser=browser_value, now=now)
    )
    if login is None or not is_sign_in(login):
        return None
    browser.hint_language(request, login.params.get("ui_locales"))
    return login


def is_sign_in(login: logins.Login) -> bool:
    """A password reset in progress is not a sign-in (idp.web.reset_routes)."""
    return login.params.get("purpose") != "reset"


def no_request(request: Request) -> Response:
    return render(request, "error.html", status=400, title_key="request_expired")


def again(login: logins.Login, *, passkey: str | None = None) -> RedirectResponse:
    """Back to the login's page; ``passkey="cancelled"`` has it say the passkey sign-in did not complete."""
    query = {"request_id": login.request_id, **({"passkey": passkey} if passkey else {})}
    return RedirectResponse(f"/login?{urlencode(query)}", status_code=303)


@dataclass(slots=True, frozen=True)
class Finished:
    """How a factor's unit of work ends: what the login's factors reach and, once they reach its
    level, the new session and the answer to the authorization request (its code saved in the
    same transaction; no answer for an account login)."""

    decided: Decision
    completed: logins.Completed | None = None
    asked: authorize_routes.Asked | None = None
    answer: authorize_routes.Answer | None = None


async def finisher(request: Request, login: logins.Login) -> Callable[[Any, logins.Login], Finished]:
    """What a factor's unit of work calls last: complete the login and answer its authorization
    request, in the same transaction (one commit for the factor, the session and the code)."""
    st = state(request)
    cookie, ip, ttl = (
        request.cookies.get(sessions.COOKIE_NAME),
        client_ip(request),
        float(st.settings.session_ttl),
    )
    asked = await authorize_routes.continuation(request, params=login.params, created_at=login.created_at)

    def finish(tx: Any, updated: logins.Login) -> Finished:
        decided, completed = logins.finish_if_reached(tx, updated, cookie=cookie, ttl=ttl, client_ip=ip)
        if completed is None or asked is None:
            return Finished(decided, completed)
        answer = authorize_routes.after_login(
            st,
            asked,
            created_at=updated.created_at,
            session=completed.issued.session,
            person=completed.person,
            tx=tx,
        )
        return Finished(decided, completed, asked, answer)

    return finish


def respond(request: Request, login: logins.Login, result: Finished) -> Response:
    """The authorization request's answer with the new session, or on to the next step."""
    if result.completed is None:
        return again(login)
    counted = result.decided.counted
    state(request).metrics.login(method="+".join(str(f.method) for f in counted), outcome="success")
    if result.asked is None or result.answer is None:  # an account login: back to the account page
        response = authorize_routes.internal_target(request, login.params)
    else:
        redirect = 303 if request.method == "POST" else 302  # a form post's answer is fetched with GET
        response = authorize_routes.respond(request, result.asked, result.answer, redirect_status=redirect)
    browser.set_cookie(response, sessions.COOKIE_NAME, result.completed.issued.cookie_value)
    return response


async def proceed(request: Request, login: logins.Login) -> Response:
    """Complete the login if its level is reached; otherwise show the next step."""
    finish = await finisher(request, login)
    try:
        result = await state(request).db.write(lambda tx: finish(tx, login))
    except ConflictError:
        return no_request(request)
    return respond(request, login, result)
