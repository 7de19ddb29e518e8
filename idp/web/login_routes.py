"""The email-link login pages (basic level of assurance)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Connection, select, update
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from idp import audit, eids, lockout, secrets, sessions, tenants
from idp.delivery.mail import compose
from idp.errors import DeliveryError, LoginError, NotFoundError, RateLimitedError
from idp.ratelimit import subject_key
from idp.storage import tables
from idp.web import account_login, browser, login_flow, login_state
from idp.web.authorize_routes import REQUEST_ID
from idp.web.browser import client_ip, render, state
from idp.web.i18n import SUBJECT_LOGIN_LINK, SUBJECT_LOGIN_LINK_FOR_CLIENT, utc_minute
from levels_of_assurance.authenticators import email_link
from levels_of_assurance.ladder import Level, acr_for
from levels_of_assurance.policy import Factor, Method

log = logging.getLogger("idp.login")
HOUR = 3600.0


@dataclass(slots=True, frozen=True)
class PendingRequest:
    id: str
    client_id: str
    client_name: str | None
    tenant: tenants.Tenant


async def _pending(request: Request, request_id: str | None) -> PendingRequest | None:
    """The authorization request this login serves, if it is alive and belongs to this browser."""
    browser_value = browser.browser_id(request)
    if not request_id or not REQUEST_ID.fullmatch(request_id) or browser_value is None:
        return None
    now = time.time()

    def load(conn: Connection) -> PendingRequest | None:
        r, c = tables.auth_requests.c, tables.clients.c
        row = conn.execute(
            select(r.id, r.client_id, r.browser_digest, r.expires_at, r.completed_at, c.name, c.tenant_id)
            .join(tables.clients, c.client_id == r.client_id)
            .where(r.id == request_id)
        ).first()
        if row is None or row.expires_at <= now or not secrets.matches(browser_value, row.browser_digest):
            return None
        name = account_login.shown_client_name(row.client_id, row.name)
        return PendingRequest(row.id, row.client_id, name, tenants.get(conn, row.tenant_id))

    return await state(request).db.read(load)


def _no_request(request: Request) -> Response:
    return render(request, "error.html", status=400, title_key="request_expired")


async def send_link(request: Request) -> Response:
    st = state(request)
    form = await request.form(max_fields=16)
    request_id = str(form.get("request_id") or "")
    if not browser.csrf_ok(request, form.get("csrf_token")):
        return render(request, "error.html", status=403, title_key="csrf")
    pending = await _pending(request, request_id)
    login = await login_state.current(request, request_id)
    if pending is None or login is None:
        return _no_request(request)
    if login.requested.level > Level.BASIC:  # an email link alone cannot reach the level asked for
        return login_state.again(login)
    raw_email = str(form.get("email") or "")[:320]
    try:
        email = eids.normalize_email(raw_email)
        if not email.isprintable():  # normalize_email lets control characters (NUL) through
            raise ValueError(raw_email)
    except ValueError:
        return await login_flow.identify_page(
            request, login, status=400, email=raw_email, error="invalid_email"
        )
    ip = client_ip(request) or "unknown"
    try:
        await st.limiter.hit(
            subject_key("email-link:ip", ip), limit=st.settings.email_link_limit_per_ip, window=HOUR
        )
    except RateLimitedError as exc:
        st.metrics.login(method="email_link", outcome="rate_limited")
        response = await login_flow.identify_page(
            request, login, status=429, email=raw_email, error="rate_limited"
        )
        response.headers["Retry-After"] = str(int(exc.retry_after) + 1)
        return response

    tenant_id = pending.tenant.id
    person = await st.db.read(lambda conn: eids.find_by_email(conn, tenant_id=tenant_id, email=email))
    throttled = False
    try:
        await st.limiter.hit(
            subject_key("email-link:addr", f"{tenant_id}:{email}"),
            limit=st.settings.email_link_limit_per_address,
            window=HOUR,
        )
    except RateLimitedError:
        throttled = True

    browser_value = browser.browser_id(request)
    assert browser_value is not None  # _pending checked it
    # a locked eID signs in no way at all (as with a passkey) until an administrator lifts the lock
    found_id = person.id if person is not None else None
    locked = found_id is not None and await st.db.read(lambda conn: lockout.is_locked(conn, eid_id=found_id))
    if person is None or not person.active or locked or throttled:
        # the same page either way: whether an address has an eID is nobody's business
        reason = (
            "throttled"
            if throttled
            else "unknown_address"
            if person is None
            else "eid_locked"
            if locked
            else "eid_not_active"
        )
        event = audit.AuditEvent(
            "email_link.refused",
            success=False,
            tenant_id=tenant_id,
            eid_id=person.id if person else None,
            client_ip=ip,
            transaction_id=pending.id,
            details={
                "login_method": "email_link",
                "reason": reason,
                "address_digest": secrets.digest(email)[:16],
            },
        )
        await st.db.write(lambda tx: audit.record(tx, event))
        st.metrics.login(method="email_link", outcome=reason)
    else:
        eid_id, username, ttl = person.id, person.username, float(st.settings.email_link_ttl)
        token = await st.db.write(
            lambda tx: email_link.issue(
                tx,
                tenant_id=tenant_id,
                eid_id=eid_id,
                username=username,
                request_id=pending.id,
                browser=browser_value,
                ttl=ttl,
                client_ip=ip,
            )
        )
        st.spawn(_send_mail(request, person, token, pending, ip), delivery=True)
        st.metrics.login(method="email_link", outcome="link_sent")
    # Post/Redirect/Get: reloading the next page, or switching its language, sends nothing again
    return RedirectResponse(
        f"/login/email/sent?{urlencode({'request_id': pending.id, 'to': _mask(raw_email)})}", status_code=303
    )


async def sent_page(request: Request) -> Response:
    """ "Check your email", the same whether or not the address has an eID."""
    st = state(request)
    pending = await _pending(request, request.query_params.get("request_id"))
    if pending is None:
        return _no_request(request)
    return render(
        request,
        "email_sent.html",
        email=request.query_params.get("to", "")[:100],
        minutes=st.settings.email_link_ttl // 60,
        request_id=pending.id,
        branding=pending.tenant.shown_branding(),
    )


async def _send_mail(
    request: Request, person: eids.EID, token: str, pending: PendingRequest, ip: str
) -> None:
    st = state(request)
    lang = browser.language(request)
    link = f"{st.settings.issuer}/login/email/verify?token={token}"
    context: dict[str, Any] = {
        "link": link,
        "minutes": st.settings.email_link_ttl // 60,
        "client_name": pending.client_name,
        "ip": ip,
        "requested_at": utc_minute(),
        "branding": pending.tenant.shown_branding(),
        "languages": list(st.pages.languages),
        "csrf_token": "",
        "current_path": "",
    }
    subject = (
        st.pages.gettext(lang, SUBJECT_LOGIN_LINK_FOR_CLIENT, client_name=pending.client_name)
        if pending.client_name
        else st.pages.gettext(lang, SUBJECT_LOGIN_LINK)
    )
    message = compose(
        sender=st.settings.email_from,
        to=person.value("email") or person.username,
        subject=subject,
        text=st.pages.render("emails/login_link.txt", language=lang, **context),
        html=st.pages.render("emails/login_link.html", language=lang, **context),
        headers={"Auto-Submitted": "auto-generated"},
    )
    try:
        await st.mailer.send(message)
    except DeliveryError as exc:
        log.error("sign-in link for eID %s not delivered: %s", person.id, exc)
        event = audit.AuditEvent(
            "email_link.delivery_failed",
            success=False,
            tenant_id=person.tenant_id,
            eid_id=person.id,
            transaction_id=pending.id,
            details={"error": str(exc)[:200]},
        )
        await st.db.write(lambda tx: audit.record(tx, event))


def _mask(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


async def confirm_page(request: Request) -> Response:
    st = state(request)
    token = request.query_params.get("token", "")[:128]
    now = time.time()
    browser_value = browser.browser_id(request)

    def load(conn: Connection) -> tuple[tenants.Tenant, eids.EID, str | None]:
        link = email_link.check(conn, token=token, browser=browser_value, now=now)
        person = eids.get(conn, link.eid_id)
        if not person.active or lockout.is_locked(conn, eid_id=person.id):
            # a suspended, blocked or locked eID cannot sign in; say no more than for an unknown link
            raise LoginError(email_link.LinkProblem.UNKNOWN, "this eID is not active")
        client_name = None
        if link.request_id:
            r, c = tables.auth_requests.c, tables.clients.c
            row = conn.execute(
                select(c.client_id, c.name)
                .join(tables.auth_requests, r.client_id == c.client_id)
                .where(r.id == link.request_id)
            ).first()
            client_name = account_login.shown_client_name(row.client_id, row.name) if row else None
        return tenants.get(conn, link.tenant_id), person, client_name

    try:
        tenant, person, client_name = await st.db.read(load)
    except (LoginError, NotFoundError) as exc:
        return _invalid_link(request, exc, None)
    return render(
        request,
        "email_link_confirm.html",
        token=token,
        email=_mask(person.value("email") or ""),
        client_name=client_name,
        branding=tenant.shown_branding(),
    )


def _invalid_link(request: Request, exc: Exception, request_id: str | None) -> Response:
    reason = exc.code if isinstance(exc, LoginError) else email_link.LinkProblem.UNKNOWN
    return render(request, "link_invalid.html", status=400, reason=str(reason), request_id=request_id)


async def verify(request: Request) -> Response:
    st = state(request)
    form = await request.form(max_fields=8)
    if not browser.csrf_ok(request, form.get("csrf_token")):
        return render(request, "error.html", status=403, title_key="csrf")
    token = str(form.get("token") or "")[:128]
    browser_value = browser.browser_id(request)
    ip = client_ip(request)
    cookie = request.cookies.get(sessions.COOKIE_NAME)
    ttl = float(st.settings.session_ttl)
    acr = acr_for(Level.BASIC)
    amr = list(email_link.PROVES.amr)

    def unit(tx: Any) -> tuple[sessions.Issued, str | None]:
        link = email_link.consume(tx, token=token, browser=browser_value)
        person = eids.get(tx.conn, link.eid_id)
        if not person.active:
            raise LoginError("eid_not_active", "this eID is suspended or blocked")
        if lockout.is_locked(tx.conn, eid_id=person.id):  # locked after the link was sent
            raise LoginError("eid_locked", "this eID is locked")
        previous = sessions.load(tx.conn, cookie, now=tx.now)
        issued = sessions.authenticate(
            tx,
            previous=previous,
            tenant_id=link.tenant_id,
            eid_id=person.id,
            username=person.username,
            acr=acr,
            amr=amr,
            ttl=ttl,
            client_ip=ip,
            method=email_link.PROVES.method,
            factors=[Factor(Method.EMAIL_LINK, tuple(amr), tx.now)],
        )
        if person.value("email") and person.attributes["email"].verified_at is None:
            eids.mark_verified(tx, eid_id=person.id, name="email", method="email_link")
        if link.request_id:
            tx.conn.execute(
                update(tables.auth_requests)
                .where(tables.auth_requests.c.id == link.request_id)
                .values(completed_at=tx.now)
            )
        return issued, link.request_id

    try:
        issued, request_id = await st.db.write(unit)
    except (LoginError, NotFoundError) as exc:
        code = exc.code if isinstance(exc, LoginError) else "unknown"
        event = audit.AuditEvent(
            "login.failed",
            success=False,
            client_ip=ip,
            details={"login_method": "email_link", "reason": str(code)},
        )
        await st.db.write(lambda tx: audit.record(tx, event))
        st.metrics.login(method="email_link", outcome=f"failed_{code}")
        return _invalid_link(request, exc, None)
    st.metrics.login(method="email_link", outcome="success")
    target = f"/authorize/resume?request_id={request_id}" if request_id else "/"
    response = RedirectResponse(target, status_code=303)
    browser.set_cookie(response, sessions.COOKIE_NAME, issued.cookie_value)
    return response


routes = [
    Route("/login/email", send_link, methods=["POST"]),
    Route("/login/email/sent", sent_page, methods=["GET"]),
    Route("/login/email/verify", confirm_page, methods=["GET"]),
    Route("/login/email/verify", verify, methods=["POST"]),
]
