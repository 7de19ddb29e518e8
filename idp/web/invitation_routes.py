"""An invitation's link: the page it opens, and opening it in this browser.

``GET /invite?token=…`` shows the invitation (a mail scanner fetching it changes nothing): its
welcome; for an address that has an eID already, the sign-in it is sent to, or the set-up of
what the invitation's level needs on that eID (``idp.invitation_enrolment.enrolment_on``). ``POST
/invite`` opens it in this browser, which alone may continue, at the steps of
:mod:`idp.web.onboarding_routes`; ``/onboarding/{id}/done`` ends them where the invitation names
no app to return to.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from idp import eids, invitation_enrolment, invitations, tenants
from idp.errors import LoginError
from idp.web import browser
from idp.web.browser import client_ip, render, state
from levels_of_assurance.ladder import Level


async def problem_page(
    request: Request,
    exc: LoginError,
    status: int = 400,
    *,
    invitation_id: str | None = None,
    token: str | None = None,
) -> Response:
    """Why the invitation of ``invitation_id`` or ``token`` cannot be used, in its language and
    its tenant's branding, with the way on there is: to the application, or to the eID's
    account page (a used invitation's eID signs in there)."""
    st = state(request)
    inv = await st.db.read(lambda conn: invitations.find(conn, invitation_id=invitation_id, token=token))
    if inv is None:
        return render(request, "invite.html", status=status, step="problem", reason=str(exc.code))
    return await invitation_page(request, inv, "problem", status=status, reason=str(exc.code))


async def tenant_of(request: Request, tenant_id: str) -> tenants.Tenant:
    return await state(request).db.read(lambda conn: tenants.get(conn, tenant_id))


async def _client_name(request: Request, client_id: str | None) -> str | None:
    if client_id is None:
        return None
    client = await state(request).clients.get(client_id)
    return client.name if client else None


async def invite_page(request: Request) -> Response:
    """The invitation as the link shows it; nothing changes until the person starts."""
    st = state(request)
    token = request.query_params.get("token", "")[:128]
    now, browser_value = time.time(), browser.browser_id(request)

    def load(conn: Connection) -> tuple[invitations.Invitation, str, invitation_enrolment.Enrolment]:
        inv = invitations.peek(conn, token=token, now=now, browser=browser_value)
        if inv.enrols_existing:  # opened again during its steps: the offer it was opened with
            return inv, "enrol", invitation_enrolment.Enrolment(str(inv.progress["existing_eid"]))
        person = eids.find_by_email(conn, tenant_id=inv.tenant_id, email=inv.email)
        if person is None or inv.eid_id == person.id:  # none, or this invitation's own
            return inv, "welcome", invitation_enrolment.Enrolment.NONE
        how = invitation_enrolment.enrolment_on(conn, inv, person)
        return inv, "existing" if how == invitation_enrolment.Enrolment.NONE else "enrol", how

    try:
        inv, step, how = await st.db.read(load)
    except LoginError as exc:
        return await problem_page(request, exc, token=token)
    proves = how == invitation_enrolment.Enrolment.PROVE_PASSWORD
    return await invitation_page(request, inv, step, token=token, proves_password=proves)


async def invitation_page(
    request: Request,
    inv: invitations.Invitation,
    step: str,
    *,
    status: int = 200,
    token: str | None = None,
    proves_password: bool = False,
    reason: str | None = None,
) -> Response:
    """invite.html for one invitation: its welcome, the sign-in offered to an existing eID, the
    set-up of what the invitation's level needs on an existing eID (``proves_password``: it
    has a password, which the person will enter), the page after the last step, or why it
    cannot be used (``reason``)."""
    browser.hint_language(request, inv.language)
    tenant = await tenant_of(request, inv.tenant_id)
    return render(
        request,
        "invite.html",
        status=status,
        step=step,
        token=token,
        invitation=inv,
        email=inv.email,
        tenant_name=tenant.shown_name,
        client_name=await _client_name(request, inv.client_id),
        advanced=inv.level >= Level.ADVANCED,
        proves_password=proves_password,
        reason=reason,
        account_path=f"/account?{urlencode({'tenant': tenant.slug})}",
        branding=tenant.shown_branding(),
    )


async def start(request: Request) -> Response:
    st = state(request)
    form = await request.form(max_fields=8)
    if not browser.csrf_ok(request, form.get("csrf_token")):
        return render(request, "error.html", status=403, title_key="csrf")
    token = str(form.get("token") or "")[:128]
    browser_value = browser.browser_id(request)
    assert browser_value is not None  # csrf_ok needs the browser cookie
    ip = client_ip(request)

    def unit(tx: Any) -> invitations.Invitation:
        inv = invitations.open_link(tx, token=token, browser=browser_value, client_ip=ip)
        if inv.eid_id is not None or not inv.needs_password:
            return inv
        person = eids.find_by_email(tx.conn, tenant_id=inv.tenant_id, email=inv.email)
        if person is None:
            return inv
        how = invitation_enrolment.enrolment_on(tx.conn, inv, person)
        if how == invitation_enrolment.Enrolment.NONE:
            return inv  # the details step sends it to sign in
        return invitation_enrolment.enrol_on_existing(tx, inv, person, how, client_ip=ip)

    try:
        inv = await st.db.write(unit)
    except LoginError as exc:
        return await problem_page(request, exc, token=token)
    return RedirectResponse(f"/onboarding/{inv.id}", status_code=303)


async def done_page(request: Request) -> Response:
    """After the last step, when the invitation names no application to go back to."""
    invitation_id = str(request.path_params["invitation_id"])
    inv = await state(request).db.read(lambda conn: invitations.find(conn, invitation_id=invitation_id))
    if inv is None:
        return render(request, "invite.html", step="done")
    return await invitation_page(request, inv, "done")


routes = [
    Route("/invite", invite_page, methods=["GET"]),
    Route("/invite", start, methods=["POST"]),
    Route("/onboarding/{invitation_id}/done", done_page, methods=["GET"]),
]
