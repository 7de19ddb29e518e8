"""The one-time code step of a login: authenticator app, SMS, or a recovery code.

Shown by ``/login`` once the person is known and only a one-time code is missing. Wrong codes
count towards the same growing delays and lock as wrong passwords (idp.lockout), per eID and IP.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from idp import audit, eids, lockout, logins, proofing
from idp.errors import ConflictError, DeliveryError, InvalidPhoneError, NotFoundError, RateLimitedError
from idp.web import account_login, browser, code_check, login_state
from idp.web.branding import sms_name
from idp.web.browser import client_ip, render, state
from idp.web.i18n import SMS_LOGIN_CODE
from idp.web.login_state import again, current, mask_email, no_request
from levels_of_assurance.authenticators import recovery_codes
from levels_of_assurance.policy import Factor
from otp import authenticator_app
from otp.phone import mask_phone
from otp.sms import CodePurpose

METHODS = ("totp", "sms", "recovery")


@dataclass(slots=True, frozen=True)
class Options:
    """The second factors this eID has: an app, a verified mobile number, recovery codes left."""

    totp: bool
    phone: str | None
    recovery: int

    @property
    def methods(self) -> list[str]:
        return [m for m, ok in (("totp", self.totp), ("sms", self.phone), ("recovery", self.recovery)) if ok]


@dataclass(slots=True, frozen=True)
class Signer:
    """The person a login identified, with what the code step and the page before it ask about
    them: their code options, whether they are locked (idp.lockout), whether their identity is
    proofed (idp.proofing)."""

    person: eids.EID
    options: Options
    locked: bool
    proofed: bool


# the person and the rest in one statement: on PostgreSQL each round trip costs the event loop
# some 150 µs, and this was four
_ABOUT_THEM = (
    authenticator_app.APP_OF_EID.label("app"),
    recovery_codes.REMAINING_OF_EID.label("recovery"),
    lockout.LOCKED_AT_OF_EID.label("locked_at"),
    proofing.PROOFING_OF_EID.label("proofing"),
)
_SIGNER = eids.with_attributes(eids.BY_ID, *_ABOUT_THEM)
# the code step's read: the login too, and so one round trip where it took two
_LOGIN_AND_SIGNER = eids.with_attributes(logins.WITH_ITS_EID, *_ABOUT_THEM, *logins.JOINED_COLUMNS)


def signer(conn: Connection, eid_id: str) -> Signer:
    """The eID ``eid_id`` with its code options, lock and proofing; :class:`NotFoundError` if none."""
    found = eids.load_with(conn, _SIGNER, {"id": eid_id})
    if found is None:
        raise NotFoundError(f"no eID {eid_id!r}")
    return _signer(*found)


def _signer(person: eids.EID, row: Mapping[str, Any]) -> Signer:
    phone = person.attributes.get(eids.AttributeName.PHONE_NUMBER)
    opts = Options(
        totp=row["app"] is not None,
        phone=phone.value if phone is not None and phone.verified_at is not None else None,
        recovery=int(row["recovery"]),
    )
    return Signer(person, opts, locked=row["locked_at"] is not None, proofed=row["proofing"] is not None)


def login_and_signer(
    conn: Connection, request_id: str, *, browser: str, now: float
) -> tuple[logins.Login, Signer] | None:
    """The live sign-in of ``request_id`` in ``browser`` with its identified person (:func:`signer`),
    in one statement; None without such a login or before it has identified someone."""
    found = eids.load_with(conn, _LOGIN_AND_SIGNER, {"request_id": request_id})
    if found is None:  # no such login, nobody identified yet, or the eID is gone: read as before
        login = logins.load(conn, request_id, browser=browser, now=now)
        if login is None or login.eid_id is None or not login_state.is_sign_in(login):
            return None
        return login, signer(conn, login.eid_id)
    login = logins.from_joined(found[1], browser=browser, now=now)
    if login is None or not login_state.is_sign_in(login):
        return None
    return login, _signer(*found)


async def _login_of(request: Request, request_id: str) -> tuple[logins.Login, eids.EID, Options, bool] | None:
    """The live login of ``request_id`` in this browser with its identified person, their code
    options and whether they are locked, in one read; None without such a login."""
    browser_value, now = browser.browser_id(request), time.time()
    if not login_state.opaque_id(request_id) or browser_value is None:
        return None
    loaded = await state(request).db.read(
        lambda conn: login_and_signer(conn, request_id, browser=browser_value, now=now)
    )
    if loaded is None:
        return None
    login, known = loaded
    browser.hint_language(request, login.params.get("ui_locales"))
    return login, known.person, known.options, known.locked


async def _person(request: Request, login: logins.Login) -> tuple[eids.EID, Options]:
    eid_id = login.eid_id
    assert eid_id is not None

    known = await state(request).db.read(lambda conn: signer(conn, eid_id))
    return known.person, known.options


def code_page(
    request: Request,
    login: logins.Login,
    person: eids.EID,
    opts: Options,
    *,
    method: str | None = None,
    status: int = 200,
    **extra: Any,
) -> Response:
    methods = opts.methods
    chosen = method if method in methods else (methods[0] if methods else None)
    if chosen is None:
        return render(
            request,
            "login_unavailable.html",
            client_name=account_login.shown_client_name(login.client_id, login.client_name),
            request_id=login.request_id,
            email=mask_email(person.value("email") or person.username),
            branding=login.tenant.shown_branding(),
        )
    context = {
        "error": None,
        "retry_after": None,
        "attempts_left": None,
        "challenge_id": request.query_params.get("challenge") if chosen == "sms" else None,
        **extra,
    }
    return render(
        request,
        "login_code.html",
        status=status,
        method=chosen,
        methods=methods,
        phone=mask_phone(opts.phone) if opts.phone else None,
        recovery_left=opts.recovery,
        client_name=account_login.shown_client_name(login.client_id, login.client_name),
        account_change=account_login.is_account_change(login.params),
        request_id=login.request_id,
        branding=login.tenant.shown_branding(),
        return_path=f"/login?{urlencode({'request_id': login.request_id, 'method': chosen})}",
        **context,
    )


async def send_sms(request: Request) -> Response:
    st = state(request)
    form = await request.form(max_fields=8)
    if not browser.csrf_ok(request, form.get("csrf_token")):
        return render(request, "error.html", status=403, title_key="csrf")
    login = await current(request, str(form.get("request_id") or ""))
    if login is None or login.eid_id is None:
        return no_request(request)
    person, opts = await _person(request, login)
    if opts.phone is None:
        return again(login)
    lang = browser.language(request)
    issuer_name = sms_name(login.tenant.branding, login.tenant.name)

    def message(code: str) -> str:
        return st.pages.gettext(lang, SMS_LOGIN_CODE, code=code, name=issuer_name)

    try:
        challenge = await st.phones.send(
            st.db,
            tenant_id=login.tenant.id,
            eid_id=person.id,
            phone=opts.phone,
            purpose=CodePurpose.LOGIN,
            client_ip=client_ip(request),
            message=message,
            locale=lang,
        )
    except RateLimitedError as exc:
        # a new code is not sent yet: the one already sent (its challenge on the page) still works
        response = code_page(
            request,
            login,
            person,
            opts,
            method="sms",
            status=429,
            error="sms_throttled",
            retry_after=exc.retry_after,
            challenge_id=login_state.opaque_id(form.get("challenge_id")) or None,
        )
        response.headers["Retry-After"] = str(int(exc.retry_after) + 1)
        return response
    except (DeliveryError, InvalidPhoneError) as exc:
        return code_page(
            request, login, person, opts, method="sms", status=502, error="sms_failed", detail=str(exc)
        )
    query = urlencode({"request_id": login.request_id, "method": "sms", "challenge": challenge.challenge_id})
    return RedirectResponse(f"/login?{query}", status_code=303)


async def submit_code(request: Request) -> Response:
    st = state(request)
    form = await request.form(max_fields=8)
    if not browser.csrf_ok(request, form.get("csrf_token")):
        return render(request, "error.html", status=403, title_key="csrf")
    loaded = await _login_of(request, str(form.get("request_id") or ""))
    if loaded is None:
        return no_request(request)
    login, person, opts, locked = loaded
    method = str(form.get("method") or "")
    if method not in opts.methods:
        return code_page(request, login, person, opts, status=400)
    code = str(form.get("code") or "")[:64]
    challenge_id = str(form.get("challenge_id") or "")[:64] or None
    ip = client_ip(request)
    account = f"{login.tenant.id}:{person.id}"
    # one attempt at a time for an account: each is counted before the next is checked
    async with st.throttle.turn("code", account):
        try:
            await st.throttle.check("code", account=account, ip=ip)
        except RateLimitedError as exc:
            response = code_page(
                request,
                login,
                person,
                opts,
                method=method,
                status=429,
                error="throttled",
                retry_after=exc.retry_after,
                challenge_id=challenge_id,
            )
            response.headers["Retry-After"] = str(int(exc.retry_after) + 1)
            return response
        if locked:
            return code_page(request, login, person, opts, method=method, status=401, error="locked")
        finish = await login_state.finisher(request, login)

        def then(tx: Any, factor: Factor) -> tuple[logins.Login, login_state.Finished]:
            audit.record(
                tx,
                audit.AuditEvent(
                    "login.factor_proven",
                    tenant_id=person.tenant_id,
                    eid_id=person.id,
                    username=person.username,
                    client_ip=ip,
                    transaction_id=login.request_id,
                    details={"login_method": method},
                    process_state="authenticating",
                ),
            )
            updated = logins.add_factor(tx, login, eid_id=person.id, factor=factor)
            return updated, finish(tx, updated)

        try:
            # the code, the factor, the session and the authorization code: one transaction
            _factor, (updated, result) = await code_check.prove_then(
                request,
                person,
                method=method,
                code=code,
                challenge_id=challenge_id,
                purpose=CodePurpose.LOGIN,
                failure_event="login.failed",
                transaction_id=login.request_id,
                then=then,
            )
        except ConflictError:
            return no_request(request)
        except code_check.CodeRefusedError as refused:
            return code_page(
                request,
                login,
                person,
                opts,
                method=method,
                status=401,
                error=refused.reason,
                attempts_left=refused.attempts_left,
                challenge_id=refused.keep_challenge,
            )
        await st.throttle.succeeded("code", account=account)
    return login_state.respond(request, updated, result)


routes = [
    Route("/login/code", submit_code, methods=["POST"]),
    Route("/login/code/sms", send_sms, methods=["POST"]),
]
