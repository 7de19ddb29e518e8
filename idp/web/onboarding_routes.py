"""Onboarding from an invitation: the steps from the opened link to an eID at the level the
sender asked (the link's own pages are :mod:`idp.web.invitation_routes`).

``/onboarding/{id}`` shows the next step: confirm the mobile number with an SMS code
(:mod:`idp.web.onboarding_phone_routes`), confirm the prefilled data (this creates the eID,
pending), choose SMS or an authenticator app for codes (and enrol it), set a password, save the
recovery codes — the last three only for the advanced level
(:mod:`idp.web.onboarding_factor_routes`). This module holds the steps' machinery, the details
step and the finish. When the last of them is done the eID is activated
(:func:`record_step`); the finish page's button then starts an SSO session at the level reached
and sends the person back to the relying app. On an existing eID that the
invitation may enrol on (``idp.invitation_enrolment.enrolment_on``) the details step is left out, and a
password it has is entered first instead of set.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from idp import eids, invitation_enrolment, invitations, sessions
from idp.errors import (
    ConflictError,
    IdPError,
    LoginError,
)
from idp.web import browser
from idp.web.browser import client_ip, render, state
from idp.web.i18n import LANGUAGE_COOKIE, LANGUAGE_COOKIE_MAX_AGE
from idp.web.invitation_routes import invitation_page, problem_page, tenant_of
from levels_of_assurance.authenticators import password
from levels_of_assurance.ladder import AMR, acr_for
from levels_of_assurance.policy import Factor, Method, amr_of, level_of
from otp.phone import mask_phone

PASSWORD_POLICY = password.PasswordPolicy()


async def _load(request: Request, invitation_id: str) -> invitations.Invitation:
    browser_value, now = browser.browser_id(request), time.time()
    inv = await state(request).db.read(
        lambda conn: invitations.load(conn, invitation_id=invitation_id[:64], browser=browser_value, now=now)
    )
    browser.hint_language(request, inv.language)  # the sender's choice, as for the invitation mail
    return inv


# what records each step as done in the invitation's progress
_DONE_WHEN = {
    "phone": "phone_verified_at",
    "details": "details_confirmed_at",
    "factor": "factor",
    "password": "password_at",
    "recovery": "recovery_shown_at",
}


def _steps(inv: invitations.Invitation) -> list[str]:
    """The invitation's steps in order. An existing eID's details stay as they are; a password
    it has is entered first, before anything is added to the eID."""
    steps = ["password"] if inv.proves_password else []
    steps += ["phone"] if inv.phone_number else []
    steps += [] if inv.enrols_existing else ["details"]
    if inv.needs_password:
        steps += ["factor"] + ([] if inv.proves_password else ["password"]) + ["recovery"]
    return steps


def _next_step(inv: invitations.Invitation) -> str:
    return next((s for s in _steps(inv) if _DONE_WHEN[s] not in inv.progress), "finish")


def record_step(tx: Any, inv: invitations.Invitation, **progress: Any) -> invitations.Invitation:
    """Record a completed step. When it was the last, the eID is ready for use at once: a new one
    is activated, an existing one gets what the steps proved. A person who closes the page that
    says "Your eID is ready" then has an eID that signs in; Finish only starts their session
    and sends them back to the app."""
    updated = invitations.record_progress(tx, inv, **progress)
    invitation_enrolment.check_still_enrolling(tx.conn, updated)  # an existing eID: nothing new but ours
    if _next_step(updated) != "finish" or updated.eid_id is None:
        return updated
    person = eids.get(tx.conn, updated.eid_id)
    if not updated.enrols_existing:
        if person.status == eids.EIDStatus.PENDING:
            eids.set_status(tx, eid_id=person.id, status=eids.EIDStatus.ACTIVE, reason="onboarding_completed")
    elif person.status == eids.EIDStatus.ACTIVE:  # not if suspended or blocked while the steps ran
        _record_what_the_steps_proved(tx, updated, person)
    return updated


# a page within a step is numbered as that step: setting up the app is part of choosing it
_COUNTED_AS = {"app": "factor"}


async def render_step(
    request: Request, inv: invitations.Invitation, step: str, *, status: int = 200, **extra: Any
) -> Response:
    tenant = await tenant_of(request, inv.tenant_id)
    steps = _steps(inv)
    counted = _COUNTED_AS.get(step, step)
    context: dict[str, Any] = {
        "error": None,
        "retry_after": None,
        "attempts_left": None,
        "challenge_id": None,
        "detail": None,
        **extra,
    }
    return render(
        request,
        "onboarding.html",
        status=status,
        step=step,
        step_number=steps.index(counted) + 1 if counted in steps else len(steps),
        step_count=len(steps),
        invitation=inv,
        phone=mask_phone(inv.phone_number) if inv.phone_number else None,
        tenant_name=tenant.shown_name,
        branding=tenant.shown_branding(),
        # after a post the language switcher comes back here, and to the code already sent
        return_path=f"/onboarding/{inv.id}"
        + (f"?{urlencode({'challenge': context['challenge_id']})}" if context["challenge_id"] else ""),
        **context,
    )


async def onboarding_page(request: Request) -> Response:
    invitation_id = str(request.path_params["invitation_id"])
    try:
        inv = await _load(request, invitation_id)
    except LoginError as exc:
        if exc.code == invitations.InvitationProblem.USED:  # Back after finishing, in that browser
            done = await _finished_just_now(request, invitation_id, within=FINISHED_SHOWN_WITHIN)
            if done is not None:
                return await invitation_page(request, done, "done")
        return await problem_page(request, exc, invitation_id=invitation_id)
    step = _next_step(inv)
    if step == "finish":
        return await render_step(request, inv, "finish")
    challenge = request.query_params.get("challenge") if step == "phone" else None
    return await render_step(request, inv, step, challenge_id=challenge)


async def _form_and_invitation(
    request: Request, *, finishing: bool = False
) -> tuple[Any, invitations.Invitation] | Response:
    form = await request.form(max_fields=16, max_part_size=4096)
    if not browser.csrf_ok(request, form.get("csrf_token")):
        return render(request, "error.html", status=403, title_key="csrf")
    invitation_id = str(request.path_params["invitation_id"])
    try:
        inv = await _load(request, invitation_id)
    except LoginError as exc:
        if finishing and exc.code == invitations.InvitationProblem.USED:
            again = await _finished_just_now(request, invitation_id)
            if again is not None:
                return form, again
        return await problem_page(request, exc, invitation_id=invitation_id)
    return form, inv


# a second press of Finish, within this time of the first, gets the first's answer again
FINISHED_AGAIN_WITHIN = 120.0
# the steps' page, come back to in the browser that finished them, says the eID is ready
FINISHED_SHOWN_WITHIN = 24 * 3600.0


async def _finished_just_now(
    request: Request, invitation_id: str, *, within: float | None = None
) -> invitations.Invitation | None:
    """The invitation completed in this browser at most ``within`` seconds ago (by default
    :data:`FINISHED_AGAIN_WITHIN`), else None."""
    within = FINISHED_AGAIN_WITHIN if within is None else within
    browser_value, now = browser.browser_id(request), time.time()
    inv = await state(request).db.read(
        lambda conn: invitations.load_finished(
            conn,
            invitation_id=invitation_id[:64],
            browser=browser_value,
            now=now,
            within=within,
        )
    )
    if inv is not None:
        browser.hint_language(request, inv.language)
    return inv


def back_to_step(inv: invitations.Invitation, **query: str) -> RedirectResponse:
    suffix = f"?{urlencode(query)}" if query else ""
    return RedirectResponse(f"/onboarding/{inv.id}{suffix}", status_code=303)


def eid_of(inv: invitations.Invitation) -> str:
    """The eID the details step created (steps after it are reached only with one)."""
    if inv.eid_id is None:
        raise IdPError(f"onboarding {inv.id} is past its details step without an eID")
    return inv.eid_id


StepHandler = Callable[[Request, Any, invitations.Invitation], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def step_post(step: str, *, needs_eid: bool = False) -> Callable[[StepHandler], Endpoint]:
    """The POST of one step: CSRF checked and the invitation loaded for this browser; a person
    whose current step is another one (a second tab, the back button) is sent to that step, and
    one whose invitation another tab completed while this step ran is told it is used (the step
    saved nothing) and to sign in."""

    def wrap(handler: StepHandler) -> Endpoint:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            got = await _form_and_invitation(request, finishing=step == "finish")
            if isinstance(got, Response):
                return got
            form, inv = got
            if _next_step(inv) != step or (needs_eid and inv.eid_id is None):
                return back_to_step(inv)
            try:
                return await handler(request, form, inv)
            except invitations.AlreadyCompletedError as exc:
                used = invitations.InvitationError(invitations.InvitationProblem.USED, str(exc))
                return await problem_page(request, used, status=409, invitation_id=inv.id)
            except invitation_enrolment.EnrolmentChangedError:  # the step wrote nothing: sign in instead
                return await invitation_page(request, inv, "existing", status=409)

        return endpoint

    return wrap


@step_post("details")
async def confirm_details(request: Request, form: Any, inv: invitations.Invitation) -> Response:
    st = state(request)
    if form.get("confirm") != "yes":
        return await render_step(request, inv, "details", status=400, error="not_confirmed")
    ip = client_ip(request)

    def unit(tx: Any) -> None:
        attributes: dict[str, str] = {}
        for name in ("given_name", "family_name", "country"):
            value = getattr(inv, name)
            if value:
                attributes[name] = value
        verified = {
            "email": eids.Attribute(inv.email, "invitation_link", tx.now, f"invitation:{inv.id}"),
        }
        if inv.phone_number and "phone_verified_at" in inv.progress:
            verified["phone_number"] = eids.Attribute(
                inv.phone_number, "sms", inv.progress["phone_verified_at"], f"invitation:{inv.id}"
            )
        person = eids.create(
            tx,
            tenant_id=inv.tenant_id,
            attributes=attributes,
            verified=verified,
            client_ip=ip,
            status=eids.EIDStatus.PENDING,
        )
        record_step(tx, inv, details_confirmed_at=tx.now, eid_id=person.id)

    try:
        await st.db.write(unit)
    except invitations.AlreadyCompletedError:
        raise  # step_post's page: the invitation is used
    except ConflictError:  # an eID for this address appeared meanwhile: sign in with it instead
        return await invitation_page(request, inv, "existing", status=409)
    return back_to_step(inv)


def _factors(inv: invitations.Invitation) -> list[Factor]:
    """What the onboarding proved: the password with the phone (SMS) or the app; for the basic
    level, the link (control of the address)."""
    p = inv.progress
    factors: list[Factor] = []
    if not inv.needs_password:
        factors.append(Factor(Method.EMAIL_LINK, (AMR.EMAIL,), inv.opened_at or inv.created_at))
    if "password_at" in p:
        factors.append(Factor(Method.PASSWORD, (AMR.PWD,), float(p["password_at"])))
    if p.get("factor") == "totp":
        factors.append(Factor(Method.TOTP, (AMR.OTP,), float(p["factor_at"])))
    elif p.get("factor") == "sms":
        factors.append(Factor(Method.SMS, (AMR.SMS,), float(p["factor_at"])))
    return factors


def _record_what_the_steps_proved(tx: Any, inv: invitations.Invitation, person: eids.EID) -> None:
    """On an existing eID, what the steps proved, as the details step records it on a new one:
    the address the link was sent to (unless it is verified already), and the number the SMS code
    confirmed, which the eID's SMS codes go to from now on."""
    proved: list[tuple[eids.AttributeName, str, str]] = []
    email = person.attributes.get(eids.AttributeName.EMAIL)
    if email is not None and email.verified_at is None and email.value.lower() == inv.email:
        proved.append((eids.AttributeName.EMAIL, email.value, "invitation_link"))
    if inv.phone_number and "phone_verified_at" in inv.progress:
        proved.append((eids.AttributeName.PHONE_NUMBER, inv.phone_number, "sms"))
    for name, value, method in proved:
        eids.set_verified(
            tx, eid_id=person.id, values={name: value}, method=method, evidence_ref=f"invitation:{inv.id}"
        )


@step_post("finish", needs_eid=True)
async def finish(request: Request, _form: Any, inv: invitations.Invitation) -> Response:
    st = state(request)
    factors = _factors(inv)
    level = level_of(factors)
    if level is None or level < inv.level:
        raise IdPError(f"onboarding {inv.id} finished below its level")  # the steps make this impossible
    cookie = request.cookies.get(sessions.COOKIE_NAME)
    eid_id, ip, ttl = eid_of(inv), client_ip(request), float(st.settings.session_ttl)

    def unit(tx: Any) -> sessions.Issued | None:
        person = eids.get(tx.conn, eid_id)  # made ready by the last step (record_step)
        if person.status != eids.EIDStatus.ACTIVE:  # suspended or blocked since
            return None
        if inv.completed_at is None:  # else pressed twice: the first press completed it
            # only this browser reaches the steps: whatever completed it meanwhile was its other press
            with contextlib.suppress(invitations.AlreadyCompletedError):
                invitations.complete(tx, inv)
        return sessions.authenticate(
            tx,
            previous=sessions.load(tx.conn, cookie, now=tx.now),
            tenant_id=inv.tenant_id,
            eid_id=eid_id,
            username=person.username,
            acr=acr_for(level),
            amr=amr_of(factors),
            ttl=ttl,
            client_ip=ip,
            method="invitation",
            factors=factors,
        )

    try:
        issued = await st.db.write(unit)
    except ConflictError:
        used = invitations.InvitationError(invitations.InvitationProblem.USED, "already completed")
        return await problem_page(request, used, invitation_id=inv.id)
    if issued is None:  # the sign-in page tells why that eID cannot be used
        return await invitation_page(request, inv, "existing", status=409)
    target = inv.return_url or f"/onboarding/{inv.id}/done"
    response = RedirectResponse(target, status_code=303)
    browser.set_cookie(response, sessions.COOKIE_NAME, issued.cookie_value)
    # the language the person set up their eID in stays theirs (the account page, later sign-ins),
    # unless they chose one themselves
    chosen = st.pages.supported(inv.language.replace("_", "-")) if inv.language else None
    if chosen and not request.cookies.get(LANGUAGE_COOKIE):
        browser.set_cookie(response, LANGUAGE_COOKIE, chosen, max_age=LANGUAGE_COOKIE_MAX_AGE)
    return response


routes = [
    Route("/onboarding/{invitation_id}", onboarding_page, methods=["GET"]),
    Route("/onboarding/{invitation_id}/details", confirm_details, methods=["POST"]),
    Route("/onboarding/{invitation_id}/finish", finish, methods=["POST"]),
]
