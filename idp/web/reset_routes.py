"""Password reset: an email link plus a second factor, then a new password (issue 3, item 7).

"Forgot your password?" on the sign-in page asks for the address (``/reset``); the answer is the
same whether or not an eID has it (no account enumeration), and requests are limited per IP and
per address like sign-in links. The mailed link (``email_links`` with purpose ``reset``: single
use, ``RESET_TTL`` seconds, bound to the browser that asked) opens a one-time code step: the
authenticator app, an SMS to the verified number (``CodePurpose.RESET``) or a recovery code —
an email link alone never resets a password: whoever reads the mailbox still needs a second
factor. An eID without any of these cannot be reset here (an administrator sets a password).

A good code consumes the link and opens a reset request (``auth_requests``, purpose ``reset``,
bound to the browser, ``RESET_TTL``) for the last step; setting the password closes it, ends every
session and token of the eID, and is audited (``password.reset``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Connection, select, update
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from idp import account, eids, lockout, secrets, tenants
from idp.errors import DeliveryError, InvalidPhoneError, LoginError, NotFoundError, RateLimitedError
from idp.storage import tables
from idp.storage.database import Tx
from idp.web import account_login, browser, code_check, login_state, security_notice
from idp.web.branding import sms_name
from idp.web.browser import client_ip, render, state
from idp.web.i18n import SMS_RESET_CODE
from levels_of_assurance.authenticators import email_link, password
from levels_of_assurance.authenticators.password import WeakPasswordError
from levels_of_assurance.ladder import AMR, Level
from levels_of_assurance.policy import Factor, Method
from otp.phone import mask_phone
from otp.sms import CodePurpose

RESET = "reset"
RESET_TTL = 15 * 60.0
HOUR = 3600.0
PASSWORD_POLICY = password.PasswordPolicy()


class _LinkGoneError(Exception):
    """The reset link could no longer be used when the code was accepted."""


def page(
    request: Request,
    step: str,
    *,
    status: int = 200,
    tenant: tenants.Tenant | None = None,
    return_path: str | None = None,
    **extra: Any,
) -> Response:
    """A step of the reset in the tenant's branding (once the link or the request names it);
    ``return_path`` is the GET page the language switcher comes back to from a form's answer."""
    return render(
        request,
        "reset.html",
        status=status,
        step=step,
        minutes=int(RESET_TTL // 60),
        branding=tenant.shown_branding() if tenant is not None else None,
        return_path=return_path,
        **extra,
    )


async def _invalid(request: Request, token: str) -> Response:
    """The page for a reset link that cannot be used; for one that was made (expired, used, opened
    in another browser), in its tenant's branding with a way to the sign-in that asks anew."""

    def load(conn: Connection) -> tenants.Tenant | None:
        tenant_id = email_link.tenant_of(conn, token=token, purpose=RESET)
        try:
            tenant = tenants.get(conn, tenant_id) if tenant_id else None
        except NotFoundError:
            return None
        return tenant if tenant is not None and tenant.status == "active" else None

    tenant = await state(request).db.read(load) if token else None
    again = f"/account?{urlencode({'tenant': tenant.id})}" if tenant else None
    return page(request, "invalid", status=400, tenant=tenant, sign_in_url=again)


# -- the link, and the one-time code -----------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class _Found:
    """What a reset link leads to: the link, its eID, what the eID has enrolled, its tenant."""

    link: email_link.Link
    person: eids.EID
    enrolled: account.Enrolled
    tenant: tenants.Tenant


async def _link(request: Request, token: str) -> _Found | None:
    browser_value, now = browser.browser_id(request), time.time()

    def load(conn: Connection) -> _Found | None:
        try:
            link = email_link.check(conn, token=token, browser=browser_value, now=now, purpose=RESET)
            person = eids.get(conn, link.eid_id)
            tenant = tenants.get(conn, link.tenant_id)
        except (LoginError, NotFoundError):
            return None
        return _Found(link, person, account.enrolled(conn, person), tenant) if person.active else None

    return await state(request).db.read(load)


def _code_page(
    request: Request,
    token: str,
    found: _Found,
    method: str | None,
    *,
    status: int = 200,
    **extra: Any,
) -> Response:
    enrolled = found.enrolled
    methods = enrolled.second_factors
    chosen = method if method in methods else methods[0]
    context: dict[str, Any] = {
        "error": None,
        "retry_after": None,
        "attempts_left": None,
        "challenge_id": None,
    }
    context.update(extra)
    # the language switcher comes back to this step, with the SMS code already sent
    again = {"token": token, "method": chosen}
    if chosen == "sms" and context["challenge_id"]:
        again["challenge"] = context["challenge_id"]
    return page(
        request,
        "code",
        status=status,
        tenant=found.tenant,
        return_path=f"/reset/verify?{urlencode(again)}",
        token=token,
        method=chosen,
        methods=methods,
        phone=mask_phone(enrolled.phone) if enrolled.phone else None,
        **context,
    )


async def verify_page(request: Request) -> Response:
    token = request.query_params.get("token", "")[:128]
    found = await _link(request, token)
    if found is None:
        return await _invalid(request, token)
    if not found.enrolled.second_factors:
        # the link proved the address: whether the eID has a password is the person's to know
        has_password = found.enrolled.password
        return page(request, "no_second_factor", status=409, tenant=found.tenant, has_password=has_password)
    method = request.query_params.get("method")
    challenge = login_state.opaque_id(request.query_params.get("challenge", "")) if method == "sms" else None
    return _code_page(request, token, found, method, challenge_id=challenge or None)


async def send_sms(request: Request) -> Response:
    st = state(request)
    form = await request.form(max_fields=8)
    if not browser.csrf_ok(request, form.get("csrf_token")):
        return render(request, "error.html", status=403, title_key="csrf")
    token = str(form.get("token") or "")[:128]
    found = await _link(request, token)
    if found is None:
        return await _invalid(request, token)
    link, person, enrolled, tenant = found.link, found.person, found.enrolled, found.tenant
    if enrolled.phone is None:
        return _code_page(request, token, found, None, status=400)
    lang, name = browser.language(request), sms_name(tenant.branding, tenant.name)
    try:
        challenge = await st.phones.send(
            st.db,
            tenant_id=link.tenant_id,
            eid_id=person.id,
            phone=enrolled.phone,
            purpose=CodePurpose.RESET,
            client_ip=client_ip(request),
            message=lambda code: st.pages.gettext(lang, SMS_RESET_CODE, code=code, name=name),
            locale=lang,
        )
    except RateLimitedError as exc:
        # "Send a new code" too soon: the code page again, where the code already sent still works
        sent = login_state.opaque_id(form.get("challenge_id")) or None
        response = _code_page(
            request,
            token,
            found,
            "sms",
            status=429,
            error="sms_throttled",
            retry_after=exc.retry_after,
            challenge_id=sent,
        )
        response.headers["Retry-After"] = str(int(exc.retry_after) + 1)
        return response
    except (DeliveryError, InvalidPhoneError):
        return _code_page(request, token, found, "sms", status=502, error="sms_failed")
    query = urlencode({"token": token, "method": "sms", "challenge": challenge.challenge_id})
    return RedirectResponse(f"/reset/verify?{query}", status_code=303)


async def submit_code(request: Request) -> Response:
    st = state(request)
    form = await request.form(max_fields=8)
    if not browser.csrf_ok(request, form.get("csrf_token")):
        return render(request, "error.html", status=403, title_key="csrf")
    token = str(form.get("token") or "")[:128]
    found = await _link(request, token)
    if found is None:
        return await _invalid(request, token)
    link, person, enrolled, tenant = found.link, found.person, found.enrolled, found.tenant
    if not enrolled.second_factors:
        return page(request, "no_second_factor", status=409, tenant=tenant)
    method = str(form.get("method") or "")
    if method not in enrolled.second_factors:
        return _code_page(request, token, found, None, status=400)
    code = str(form.get("code") or "")[:64]
    challenge_id = login_state.opaque_id(form.get("challenge_id")) or None
    ip = client_ip(request)
    acct = f"{person.tenant_id}:{person.id}"
    # one attempt at a time for an account: each is counted before the next is checked
    async with st.throttle.turn("code", acct):
        try:
            await st.throttle.check("code", account=acct, ip=ip)
        except RateLimitedError as exc:
            return _code_page(
                request,
                token,
                found,
                method,
                status=429,
                error="throttled",
                retry_after=exc.retry_after,
                challenge_id=challenge_id,
            )
        if enrolled.locked:
            return _code_page(request, token, found, method, status=401, error="locked")
        browser_value = browser.browser_id(request)
        assert browser_value is not None  # csrf_ok needs it
        linked = Factor(Method.EMAIL_LINK, (AMR.EMAIL,), time.time())

        def then(tx: Tx, factor: Factor) -> str:
            # in the transaction that accepts an app or recovery code: when the link cannot be
            # used any more, the code stays unused too (a recovery code is not spent for nothing)
            try:
                email_link.consume(tx, token=token, browser=browser_value, purpose=RESET)
            except LoginError as exc:  # not the code's fault: prove_then counts LoginError as one
                raise _LinkGoneError(str(exc)) from None
            return account_login.create_request(
                tx,
                tenant=tenant,
                purpose=RESET,
                level=Level.ADVANCED,
                browser_value=browser_value,
                eid_id=person.id,
                factors=[linked, factor],
                ttl=RESET_TTL,
                ip=ip,
                extra={"login_request": link.request_id or ""},
            )

        try:
            _factor, reset_id = await code_check.prove_then(
                request,
                person,
                method=method,
                code=code,
                challenge_id=challenge_id,
                purpose=CodePurpose.RESET,
                failure_event="password_reset.failed",
                then=then,
            )
        except code_check.CodeRefusedError as refused:
            return _code_page(
                request,
                token,
                found,
                method,
                status=401,
                error=refused.reason,
                attempts_left=refused.attempts_left,
                challenge_id=refused.keep_challenge,
            )
        except _LinkGoneError:  # used meanwhile (a racing tab) or expired while the code was typed
            return await _invalid(request, token)
        await st.throttle.succeeded("code", account=acct)
    return RedirectResponse(f"/reset/password?{urlencode({'request_id': reset_id})}", status_code=303)


# -- the new password -------------------------------------------------------------------------------


def _load_reset(conn: Connection, request_id: str, browser_value: str | None, now: float) -> Any:
    r = tables.auth_requests.c
    row = conn.execute(select(tables.auth_requests).where(r.id == request_id)).mappings().first()
    if (
        row is None
        or browser_value is None
        or (row["params"] or {}).get("purpose") != RESET
        or row["completed_at"] is not None
        or row["expires_at"] <= now
        or row["eid_id"] is None
        or not secrets.matches(browser_value, row["browser_digest"])
    ):
        return None
    return row


def _load_reset_and_tenant(
    conn: Connection, request_id: str, browser_value: str | None, now: float
) -> tuple[Any, tenants.Tenant] | None:
    row = _load_reset(conn, request_id, browser_value, now)
    if row is None:
        return None
    return row, tenants.get(conn, eids.get(conn, row["eid_id"]).tenant_id)


def _password_page(
    request: Request, request_id: str, tenant: tenants.Tenant, *, status: int = 200, **extra: Any
) -> Response:
    again = f"/reset/password?{urlencode({'request_id': request_id})}"
    return page(
        request, "password", status=status, tenant=tenant, return_path=again, request_id=request_id, **extra
    )


async def password_page(request: Request) -> Response:
    request_id = login_state.opaque_id(request.query_params.get("request_id", ""))
    browser_value, now = browser.browser_id(request), time.time()
    found = await state(request).db.read(
        lambda conn: _load_reset_and_tenant(conn, request_id, browser_value, now)
    )
    if found is None:
        return page(request, "invalid", status=400)
    return _password_page(request, request_id, found[1])


async def set_password(request: Request) -> Response:
    st = state(request)
    form = await request.form(max_fields=8, max_part_size=4096)
    if not browser.csrf_ok(request, form.get("csrf_token")):
        return render(request, "error.html", status=403, title_key="csrf")
    request_id = login_state.opaque_id(form.get("request_id"))
    browser_value, ip = browser.browser_id(request), client_ip(request)
    found = await st.db.read(
        lambda conn: _load_reset_and_tenant(conn, request_id, browser_value, time.time())
    )
    if found is None:
        return page(request, "invalid", status=400)
    row, tenant = found
    person = await st.db.read(lambda conn: eids.get(conn, row["eid_id"]))
    secret = str(form.get("password") or "")[:1024]
    if secret != str(form.get("password_repeat") or "")[:1024]:
        return _password_page(request, request_id, tenant, status=400, error="mismatch")
    names = ("email", "given_name", "family_name")
    try:
        PASSWORD_POLICY.check(
            secret, context=[v for v in (person.username, *(person.value(n) for n in names)) if v]
        )
    except WeakPasswordError as exc:
        return _password_page(request, request_id, tenant, status=400, error=str(exc.code))
    new_hash = await st.hash_password(secret)

    def unit(tx: Tx) -> None:
        r = tables.auth_requests.c
        closed = tx.conn.execute(
            update(tables.auth_requests)
            .where((r.id == request_id) & r.completed_at.is_(None))
            .values(completed_at=tx.now)
        )
        if closed.rowcount != 1:
            raise LoginError("used", "this reset was already completed")
        # blocked, suspended or locked since the code step: the new password is not set
        if not eids.get(tx.conn, person.id).active or lockout.is_locked(tx.conn, eid_id=person.id):
            raise LoginError("inactive", "this eID cannot be used now")
        password.set_hash(
            tx, eid_id=person.id, tenant_id=person.tenant_id, new_hash=new_hash, reason="reset", client_ip=ip
        )
        account.end_everywhere(tx, eid_id=person.id, reason="password_reset", client_ip=ip)

    try:
        await st.db.write(unit)
    except LoginError:
        return page(request, "invalid", status=400)
    security_notice.send(
        st,
        person=person,
        notice=security_notice.Notice.PASSWORD_RESET,
        ip=ip,
        language=browser.language(request),
    )
    back = str((row["params"] or {}).get("login_request") or "") or None
    # the page's one way on is signing in again: the language switcher goes there too
    again = f"/login?{urlencode({'request_id': back})}" if back else None
    response = page(request, "done", tenant=tenant, return_path=again, request_id=back)
    response.delete_cookie(browser.SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="lax")
    return response


routes = [
    Route("/reset/verify", verify_page, methods=["GET"]),
    Route("/reset/sms", send_sms, methods=["POST"]),
    Route("/reset/code", submit_code, methods=["POST"]),
    Route("/reset/password", password_page, methods=["GET"]),
    Route("/reset/password", set_password, methods=["POST"]),
]
