"""Onboarding steps of the advanced level: choose SMS or an authenticator app for codes (and
enrol it), set a password (or, for an existing eID that has one, enter it), and save the
recovery codes shown once. The steps before and after
them, and what they share, are in :mod:`idp.web.onboarding_routes`.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from idp import invitation_enrolment, invitations, lockout
from idp.errors import LoginError, NotFoundError, RateLimitedError
from idp.web import password_check
from idp.web.browser import client_ip, state
from idp.web.i18n import utc_minute
from idp.web.invitation_routes import invitation_page, tenant_of
from idp.web.login_state import opaque_id
from idp.web.onboarding_routes import (
    PASSWORD_POLICY,
    back_to_step,
    eid_of,
    record_step,
    render_step,
    step_post,
)
from levels_of_assurance.authenticators import password, recovery_codes
from levels_of_assurance.authenticators.password import WeakPasswordError
from otp import authenticator_app


@step_post("factor", needs_eid=True)
async def choose_factor(request: Request, form: Any, inv: invitations.Invitation) -> Response:
    st = state(request)
    choice = form.get("factor")
    if choice == "sms" and "phone_verified_at" in inv.progress:
        at = inv.progress["phone_verified_at"]
        await st.db.write(lambda tx: record_step(tx, inv, factor="sms", factor_at=at))
        return back_to_step(inv)
    if choice != "app":
        return await render_step(request, inv, "factor", status=400, error="choose")
    tenant = await tenant_of(request, inv.tenant_id)
    eid_id, secret = eid_of(inv), st.settings.secret_key
    enrolment = await st.db.write(
        lambda tx: authenticator_app.begin_enrolment(
            tx,
            eid_id=eid_id,
            account_name=inv.email,
            issuer_name=tenant.shown_name,
            sealing_key=secret,
            now=tx.now,
        )
    )
    return await render_step(request, inv, "app", enrolment=enrolment)


@step_post("factor", needs_eid=True)
async def confirm_app(request: Request, form: Any, inv: invitations.Invitation) -> Response:
    st = state(request)
    eid_id, secret = eid_of(inv), st.settings.secret_key
    enrolment_id = opaque_id(form.get("enrolment_id"))  # one we made, or none (NUL: PostgreSQL refuses it)
    code = str(form.get("code") or "")[:16]
    ip = client_ip(request)
    account = f"invitation:{inv.id}"
    try:
        await st.throttle.check("code", account=account, ip=ip)

        def unit(tx: Any) -> None:
            invitation_enrolment.check_still_enrolling(
                tx.conn, inv
            )  # never replaces an app the eID got meanwhile
            authenticator_app.confirm_enrolment(
                tx, eid_id=eid_id, enrolment_id=enrolment_id, code=code, sealing_key=secret, now=tx.now
            )
            record_step(tx, inv, factor="totp", factor_at=tx.now)

        await st.db.write(unit)
    except (LoginError, RateLimitedError) as exc:
        if isinstance(exc, LoginError) and exc.code != "malformed":
            await st.throttle.failed("code", account=account, ip=ip)
        # the enrolment stays pending and the app already holds its key: show the same one again
        enrolment = authenticator_app.shown_again(
            enrolment_id=enrolment_id,
            provisioning_uri=str(form.get("provisioning_uri") or ""),
            manual_key=str(form.get("manual_key") or ""),
        )
        error = "throttled" if isinstance(exc, RateLimitedError) else str(exc.code)
        retry = exc.retry_after if isinstance(exc, RateLimitedError) else None
        return await render_step(
            request, inv, "app", status=401, error=error, retry_after=retry, enrolment=enrolment
        )
    return back_to_step(inv)


@step_post("password", needs_eid=True)
async def set_password(request: Request, form: Any, inv: invitations.Invitation) -> Response:
    if inv.proves_password:
        return await _prove_password(request, form, inv)
    st = state(request)
    new, repeat = str(form.get("password") or "")[:1024], str(form.get("password_repeat") or "")[:1024]
    if new != repeat:
        return await render_step(request, inv, "password", status=400, error="mismatch")
    context = [c for c in (inv.email, inv.given_name, inv.family_name) if c]
    try:
        PASSWORD_POLICY.check(new, context=context)
    except WeakPasswordError as exc:
        return await render_step(request, inv, "password", status=400, error=str(exc.code))
    new_hash = await st.hash_password(new)
    eid_id, ip = eid_of(inv), client_ip(request)

    def unit(tx: Any) -> bool:
        if inv.enrols_existing and password.stored_hash(tx.conn, eid_id=eid_id) is not None:
            return False  # the eID got a password meanwhile: an invitation never replaces one
        password.set_hash(
            tx, eid_id=eid_id, tenant_id=inv.tenant_id, new_hash=new_hash, reason="set", client_ip=ip
        )
        record_step(tx, inv, password_at=tx.now)
        return True

    if not await st.db.write(unit):
        return await invitation_page(request, inv, "existing", status=409)
    return back_to_step(inv)


async def _prove_password(request: Request, form: Any, inv: invitations.Invitation) -> Response:
    """The password step of an existing eID that has one: the person enters it, checked as at
    sign-in (the same throttle on the same account, the same lock), and it is never replaced."""
    st = state(request)
    secret = str(form.get("password") or "")[:1024]
    eid_id = eid_of(inv)
    # the sign-in's own throttle key for a known eID
    attempt = password_check.Attempt(
        inv.tenant_id, f"{inv.tenant_id}:{eid_id}", client_ip(request), inv.id, process_state="onboarding"
    )
    # one attempt at a time for an account, as at sign-in (the same turn)
    async with st.throttle.turn("password", attempt.account):
        wait = await password_check.throttled(st, attempt)
        if wait is not None:
            page = await render_step(
                request, inv, "password", status=429, error="throttled", retry_after=wait
            )
            return password_check.retry_after(page, wait)
        try:
            person, stored, locked = await st.db.read(
                lambda conn: password_check.subject(conn, tenant_id=inv.tenant_id, eid_id=eid_id, email="")
            )
        except NotFoundError:  # erased meanwhile: the invitation's page says so
            return back_to_step(inv)
        if person is None or stored is None:  # removed meanwhile: what the invitation found is gone
            return await invitation_page(request, inv, "existing", status=409)
        reason = await password_check.refusal(st, person, stored, secret, locked=locked)
        if reason is not None:
            shown = await password_check.failed(st, attempt, person, reason)
            return await render_step(request, inv, "password", status=401, error=shown)
        new_hash = await password_check.succeeded(st, attempt, stored, secret)

    def unit(tx: Any) -> None:
        password_check.record_proven(tx, attempt, person, new_hash)
        record_step(tx, inv, password_at=tx.now)

    try:
        await st.db.write(unit)
    except lockout.LockedError:  # locked by wrong passwords sent together with this one
        return await render_step(request, inv, "password", status=401, error="locked")
    return back_to_step(inv)


@step_post("recovery", needs_eid=True)
async def show_recovery_codes(request: Request, _form: Any, inv: invitations.Invitation) -> Response:
    """Make the recovery codes and show them once (a POST: reloading does not show them again).
    They are put in use when the person says they saved them."""
    st = state(request)
    eid_id = eid_of(inv)
    proposal = await st.db.write(lambda tx: recovery_codes.propose(tx, eid_id=eid_id, now=tx.now))
    return await render_step(
        request,
        inv,
        "recovery",
        codes=proposal.codes,
        codes_for=inv.email,
        codes_made=utc_minute(proposal.made_at),
        recovery_set=proposal.set_id,
        replaced=proposal.replaced_unsaved,
    )


@step_post("recovery", needs_eid=True)
async def saved_recovery_codes(request: Request, form: Any, inv: invitations.Invitation) -> Response:
    st = state(request)
    eid_id, set_id = eid_of(inv), opaque_id(form.get("recovery_set"), max_length=22)

    def unit(tx: Any) -> None:
        invitation_enrolment.check_still_enrolling(tx.conn, inv)  # nor recovery codes it got meanwhile
        recovery_codes.confirm(tx, eid_id=eid_id, set_id=set_id)
        record_step(tx, inv, recovery_shown_at=tx.now)

    try:
        await st.db.write(unit)
    except recovery_codes.RecoveryCodeSetError:
        return await render_step(request, inv, "recovery", status=409, error="stale")
    return back_to_step(inv)


routes = [
    Route("/onboarding/{invitation_id}/factor", choose_factor, methods=["POST"]),
    Route("/onboarding/{invitation_id}/app", confirm_app, methods=["POST"]),
    Route("/onboarding/{invitation_id}/password", set_password, methods=["POST"]),
    Route("/onboarding/{invitation_id}/recovery", show_recovery_codes, methods=["POST"]),
    Route("/onboarding/{invitation_id}/recovery/saved", saved_recovery_codes, methods=["POST"]),
]
