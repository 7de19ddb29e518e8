"""The sign-in pages: identify the person, then ask for each missing factor until the level is met.

``/login`` shows what the login needs next (levels_of_assurance.policy decides): who you are
(an email link for the basic level, email and password, or a passkey), then, for a known person,
only the factors still missing — the password, then a one-time code. Each authenticator's route
records its factor and calls :func:`proceed`, which completes the login when the level is
reached and otherwise comes back here.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from idp import eids, lockout, logins
from idp.errors import ConflictError, NotFoundError
from idp.web import account_login, browser, code_routes, login_state, passkey_routes, password_check
from idp.web.browser import client_ip, render, state
from idp.web.login_state import again, current, mask_email, no_request, proceed
from levels_of_assurance.ladder import AMR, Level
from levels_of_assurance.policy import Factor, Method, Step


def _page(login: logins.Login, **extra: Any) -> dict[str, Any]:
    return {
        "client_name": account_login.shown_client_name(login.client_id, login.client_name),
        "account_change": account_login.is_account_change(login.params),
        "request_id": login.request_id,
        "branding": login.tenant.shown_branding(),
        "return_path": f"/login?{urlencode({'request_id': login.request_id})}",
        **extra,
    }


# an email address as a login_hint can be (the page escapes it; the form's own checks still apply)
_EMAIL_HINT = re.compile(r"[^\s@<>\"]{1,64}@[^\s@<>\"]{1,253}")


def hinted_email(login: logins.Login) -> str:
    """The relying app's ``login_hint`` (OIDC Core §3.1.2.1) when it is an email address: a signing
    service knows whom it sent the document to, so the form starts with that address (the person
    may change it). Anything else is no hint."""
    hint = login.params.get("login_hint")
    hint = hint.strip() if isinstance(hint, str) else ""
    return hint if _EMAIL_HINT.fullmatch(hint) and hint.isprintable() else ""


async def identify_page(
    request: Request, login: logins.Login, *, status: int = 200, **extra: Any
) -> Response:
    """Who are you: an email link (basic only), email and password, or a passkey."""
    context = {
        "email": hinted_email(login),
        "error": None,
        "password_error": None,
        "retry_after": None,
        **extra,
    }
    return render(
        request,
        "login_email.html",
        status=status,
        offer_email_link=login.requested.level == Level.BASIC,
        passkey=await passkey_routes.options_for(request, eid_id=None),
        **_page(login, **context),
    )


async def login_page(request: Request) -> Response:
    login = await current(request, request.query_params.get("request_id"))
    if login is None:
        return no_request(request)
    # the person's passkey ceremony ended in the browser without a passkey (cancelled, timed out)
    passkey_error = "cancelled" if request.query_params.get("passkey") == "cancelled" else None
    if login.eid_id is None:
        return await identify_page(request, login, passkey_error=passkey_error)
    eid_id = login.eid_id

    # the code options too: one statement for the page that most often follows the password
    known = await state(request).db.read(lambda conn: code_routes.signer(conn, eid_id))
    person, proofed, opts = known.person, known.proofed, known.options
    decided = logins.decision(login, identity_proofed=proofed)
    if decided.satisfied:
        return await proceed(request, login)
    if login.requested.level == Level.QUALIFIED and not proofed:
        # qualified = an advanced login by a proofed identity: first the advanced factors, then
        # video identification proofs the identity, and the login continues here
        decided = logins.decision(login, requested=Level.ADVANCED)
        if decided.satisfied:
            return render(
                request,
                "videoid_offer.html",
                **_page(login, email=mask_email(person.value("email") or person.username)),
            )
    steps = [alternative[0] for alternative in decided.missing if alternative]
    email = mask_email(person.value("email") or person.username)
    if Step.PASSWORD in steps:
        offer = await passkey_routes.options_for(request, eid_id=person.id) if Step.PASSKEY in steps else None
        context = _page(
            login,
            email=email,
            error=None,
            retry_after=None,
            passkey=offer,
            passkey_error=passkey_error if offer else None,
        )
        return render(request, "login_password.html", **context)
    if Step.ONE_TIME_CODE in steps:
        return code_routes.code_page(request, login, person, opts, method=request.query_params.get("method"))
    if Step.EMAIL_LINK in steps:
        return await identify_page(request, login)
    return render(request, "login_unavailable.html", **_page(login, email=email))


async def restart(request: Request) -> Response:
    """ "Not you?": forget who was identified, so someone else can sign in on this request."""
    form = await request.form(max_fields=8)
    if not browser.csrf_ok(request, form.get("csrf_token")):
        return render(request, "error.html", status=403, title_key="csrf")
    login = await current(request, str(form.get("request_id") or ""))
    if login is None:
        return no_request(request)
    await state(request).db.write(
        lambda tx: logins.start(tx, request_id=login.request_id, acr=login.requested.acr)
    )
    return again(login)


# -- password ---------------------------------------------------------------------------------------


async def password_submit(request: Request) -> Response:
    st = state(request)
    form = await request.form(max_fields=16, max_part_size=4096)
    if not browser.csrf_ok(request, form.get("csrf_token")):
        return render(request, "error.html", status=403, title_key="csrf")
    login = await current(request, str(form.get("request_id") or ""))
    if login is None:
        return no_request(request)
    secret = str(form.get("password") or "")[:1024]
    ip = client_ip(request)
    tenant_id = login.tenant.id
    known_id = login.eid_id
    raw_email = str(form.get("email") or "")[:320]

    async def page(status: int, error: str, retry_after: float | None = None) -> Response:
        if known_id is not None:
            # the page says whom the password is for, as before the failed attempt
            try:
                known = await st.db.read(lambda conn: eids.get(conn, known_id))
                email = mask_email(known.value("email") or known.username)
            except NotFoundError:  # erased meanwhile
                email = ""
            context = _page(login, email=email, error=error, retry_after=retry_after)
            return render(request, "login_password.html", status=status, **context)
        return await identify_page(
            request, login, status=status, email=raw_email, password_error=error, retry_after=retry_after
        )

    if known_id is None:
        try:
            account = f"{tenant_id}:{eids.normalize_email(raw_email)}"
        except ValueError:
            return await page(400, "invalid_email")
    else:
        account = f"{tenant_id}:{known_id}"
    attempt = password_check.Attempt(
        tenant_id, account, ip, transaction_id=login.request_id, process_state="authenticating"
    )
    # one attempt at a time for an account: each is counted before the next is checked
    async with st.throttle.turn("password", attempt.account):
        wait = await password_check.throttled(st, attempt)
        if wait is not None:
            return password_check.retry_after(await page(429, "throttled", wait), wait)

        person, stored, locked = await st.db.read(
            lambda conn: password_check.subject(conn, tenant_id=tenant_id, eid_id=known_id, email=raw_email)
        )
        reason = await password_check.refusal(st, person, stored, secret, locked=locked)
        if reason is not None:
            return await page(401, await password_check.failed(st, attempt, person, reason))

        assert person is not None and stored is not None
        new_hash = await password_check.succeeded(st, attempt, stored, secret)
    factor = Factor(Method.PASSWORD, (AMR.PWD,), time.time())
    who = person

    finish = await login_state.finisher(request, login)

    def unit(tx: Any) -> tuple[logins.Login, login_state.Finished]:
        password_check.record_proven(tx, attempt, who, new_hash)
        updated = logins.add_factor(tx, login, eid_id=who.id, factor=factor)
        return updated, finish(tx, updated)

    try:
        updated, result = await st.db.write(unit)
    except ConflictError:
        return no_request(request)
    except lockout.LockedError:  # locked by wrong passwords sent together with this one
        return await page(401, "locked")
    return login_state.respond(request, updated, result)


routes = [
    Route("/login", login_page, methods=["GET"]),
    Route("/login/restart", restart, methods=["POST"]),
    Route("/login/password", password_submit, methods=["POST"]),
]
