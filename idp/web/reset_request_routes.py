"""Password reset, first step: asking for the link (:mod:`idp.web.reset_routes` has the rest).

The answer is the same whether or not an eID has the address (no account enumeration), and
requests are limited per client IP and per address with the sign-in link's limits.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from idp import audit, eids, secrets, tenants
from idp.delivery.mail import compose
from idp.errors import DeliveryError, RateLimitedError
from idp.ratelimit import subject_key
from idp.web import browser, login_state
from idp.web.browser import client_ip, render, state
from idp.web.i18n import SUBJECT_PASSWORD_RESET, utc_minute
from idp.web.reset_routes import RESET, RESET_TTL, page
from levels_of_assurance.authenticators import email_link

HOUR = 3600.0


# -- asking for the link ----------------------------------------------------------------------------


async def request_page(request: Request) -> Response:
    login = await login_state.current(request, request.query_params.get("request_id"))
    if login is None:
        return login_state.no_request(request)
    return page(request, "request", tenant=login.tenant, request_id=login.request_id)


async def send_link(request: Request) -> Response:
    st = state(request)
    form = await request.form(max_fields=8)
    if not browser.csrf_ok(request, form.get("csrf_token")):
        return render(request, "error.html", status=403, title_key="csrf")
    login = await login_state.current(request, str(form.get("request_id") or ""))
    if login is None:
        return login_state.no_request(request)
    raw = str(form.get("email") or "")[:320]
    again: dict[str, Any] = {
        "tenant": login.tenant,
        "return_path": f"/reset?{urlencode({'request_id': login.request_id})}",
        "email": raw,
        "request_id": login.request_id,
    }
    try:
        address = eids.normalize_email(raw)
    except ValueError:
        return page(request, "request", status=400, error="invalid_email", **again)
    ip = client_ip(request) or "unknown"
    try:
        await st.limiter.hit(
            subject_key("reset:ip", ip), limit=st.settings.email_link_limit_per_ip, window=HOUR
        )
    except RateLimitedError as exc:
        response = page(request, "request", status=429, error="rate_limited", **again)
        response.headers["Retry-After"] = str(int(exc.retry_after) + 1)
        return response
    tenant_id = login.tenant.id
    person = await st.db.read(lambda conn: eids.find_by_email(conn, tenant_id=tenant_id, email=address))
    throttled = False
    try:
        await st.limiter.hit(
            subject_key("reset:addr", f"{tenant_id}:{address}"),
            limit=st.settings.email_link_limit_per_address,
            window=HOUR,
        )
    except RateLimitedError:
        throttled = True
    browser_value = browser.browser_id(request)
    assert browser_value is not None  # csrf_ok needs it
    if person is None or not person.active or throttled:
        reason = "throttled" if throttled else ("unknown_address" if person is None else "eid_not_active")
        event = audit.AuditEvent(
            "password_reset.refused",
            success=False,
            tenant_id=tenant_id,
            eid_id=person.id if person else None,
            client_ip=ip,
            transaction_id=login.request_id,
            details={"reason": reason, "address_digest": secrets.digest(address)[:16]},
        )
        await st.db.write(lambda tx: audit.record(tx, event))
    else:
        who = person
        token = await st.db.write(
            lambda tx: email_link.issue(
                tx,
                tenant_id=tenant_id,
                eid_id=who.id,
                username=who.username,
                request_id=login.request_id,
                browser=browser_value,
                ttl=RESET_TTL,
                client_ip=ip,
                purpose=RESET,
            )
        )
        st.spawn(_send_mail(request, who, token, login.tenant, ip), delivery=True)
    sent = urlencode({"to": login_state.mask_email(raw), "request_id": login.request_id})
    return RedirectResponse(f"/reset/sent?{sent}", status_code=303)


async def sent_page(request: Request) -> Response:
    """The "check your email" page, in the sign-in's language and branding, with a way back to
    try another address while that sign-in lasts."""
    login = await login_state.current(request, request.query_params.get("request_id"))
    return page(
        request,
        "sent",
        tenant=login.tenant if login else None,
        email=request.query_params.get("to", "")[:100],
        request_id=login.request_id if login else None,
    )


async def _send_mail(request: Request, person: eids.EID, token: str, tenant: tenants.Tenant, ip: str) -> None:
    st = state(request)
    lang = browser.language(request)
    context: dict[str, Any] = {
        "link": f"{st.settings.issuer}/reset/verify?token={token}",
        "minutes": int(RESET_TTL // 60),
        "ip": ip,
        "requested_at": utc_minute(),
        "branding": tenant.shown_branding(),
        "languages": list(st.pages.languages),
        "csrf_token": "",
        "current_path": "",
    }
    message = compose(
        sender=st.settings.email_from,
        to=person.value("email") or person.username,
        subject=st.pages.gettext(lang, SUBJECT_PASSWORD_RESET),
        text=st.pages.render("emails/password_reset.txt", language=lang, **context),
        html=st.pages.render("emails/password_reset.html", language=lang, **context),
        headers={"Auto-Submitted": "auto-generated"},
    )
    try:
        await st.mailer.send(message)
    except DeliveryError as exc:
        event = audit.AuditEvent(
            "email_link.delivery_failed",
            success=False,
            tenant_id=person.tenant_id,
            eid_id=person.id,
            details={"error": str(exc)[:200], "purpose": RESET},
        )
        await st.db.write(lambda tx: audit.record(tx, event))


routes = [
    Route("/reset", request_page, methods=["GET"]),
    Route("/reset", send_link, methods=["POST"]),
    Route("/reset/sent", sent_page, methods=["GET"]),
]
