"""The person's own account page: attributes, sign-in methods, recent security events, and the
changes that need a fresh advanced login (issue 3, item 7).

``GET /account`` with an SSO session shows the page. Without one, ``/account?tenant=<slug>``
starts a sign-in for the account (any level: the page itself changes nothing) and comes back;
plain ``/account`` explains where to find that link. Each change has a GET page that first makes
sure the advanced login is fresh (:func:`idp.web.account_login.fresh`, stepping up through the
sign-in pages when it is not) and a POST that checks it again. This module holds the password,
the recovery codes and blocking the eID; :mod:`idp.web.account_factor_routes` the mobile number,
the authenticator app and passkeys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from idp import account, sessions, tenants
from idp.errors import ConflictError, NotFoundError
from idp.storage.database import Tx
from idp.web import security_notice
from idp.web.account_login import SignedIn, fresh, fresh_form, signed_in, signed_in_form, start
from idp.web.browser import client_ip, language, render, state
from idp.web.i18n import N_, utc_minute
from idp.web.login_state import opaque_id
from idp.web.security_notice import Notice
from levels_of_assurance.authenticators import password, recovery_codes
from levels_of_assurance.authenticators.password import WeakPasswordError
from levels_of_assurance.ladder import Level
from otp.phone import display_phone, mask_phone

PASSWORD_POLICY = password.PasswordPolicy()
DONE = ("password", "phone", "app", "recovery", "passkey_added", "passkey_removed")
_TENANT_REF = 63
_PAGES = ("password", "phone", "app", "recovery", "passkeys", "block")


def change_page(request: Request, who: SignedIn, step: str, *, status: int = 200, **extra: Any) -> Response:
    context: dict[str, Any] = {
        "error": None,
        "retry_after": None,
        "attempts_left": None,
        "challenge_id": None,
        **extra,
    }
    return render(
        request,
        "account_change.html",
        status=status,
        step=step,
        branding=who.tenant.shown_branding(),
        return_path=f"/account/{step}" if step in _PAGES else "/account",
        **context,
    )


# What each security event means to the person, in their words (the trail's names are for
# administrators); a family's events without their own label fall back to the family's.
EVENT_LABELS = {
    "session.authenticated": N_("Signed in"),
    "session.ended": N_("Signed out"),
    "eid.signed_out_everywhere": N_("Signed out everywhere"),
    "login.failed": N_("Failed sign-in attempt"),
    "login.factor_proven": N_("Sign-in step passed"),
    "eid.created": N_("eID created"),
    "invitation.completed": N_("eID set-up finished"),
    "eid.phone_changed": N_("Mobile number changed"),
    "eid.attribute_verified": N_("Details confirmed or changed"),
    "eid.attributes_verified": N_("Details confirmed or changed"),
    "eid.updated": N_("Details confirmed or changed"),
    "eid.proofed": N_("Identity verified by video identification"),
    "eid.proofing_revoked": N_("Identity verification withdrawn"),
    "eid.locked": N_("eID locked after too many failed attempts"),
    "eid.unlocked": N_("eID unlocked"),
    "eid.blocked_by_owner": N_("You blocked the eID"),
    "eid.status_changed": N_("Status of the eID changed"),
    "password.set": N_("Password set"),
    "password.changed": N_("Password changed"),
    "password.reset": N_("Password reset"),
    "password_reset.failed": N_("Failed password reset attempt"),
    "otp.totp.enrolled": N_("Authenticator app set up"),
    "otp.totp.verified": N_("Code from the authenticator app used"),
    "otp.totp.removed": N_("Authenticator app removed"),
    "otp.sms.sent": N_("SMS code sent"),
    "otp.sms.verified": N_("SMS code used"),
    "otp.sms.failed": N_("Wrong SMS code"),
    "otp.sms.refused": N_("SMS code not sent: too many asked for"),
    "otp.sms.send_failed": N_("SMS code could not be sent"),
    "recovery_codes.shown": N_("New recovery codes shown"),
    "recovery_codes.issued": N_("New recovery codes made"),
    "recovery_codes.used": N_("Recovery code used"),
    "passkey.registered": N_("Passkey added"),
    "passkey.used": N_("Passkey used"),
    "passkey.removed": N_("Passkey removed"),
    "email_link.sent": N_("Sign-in link sent by email"),
    "email_link.refused": N_("Sign-in link not sent"),
    "email_link.delivery_failed": N_("Sign-in link could not be delivered"),
    "security_notice.delivery_failed": N_("Security notice could not be delivered"),
}
_FAMILY_LABELS = (
    ("password.", N_("Password set or changed")),
    ("otp.totp.", N_("Authenticator app used or changed")),
    ("otp.sms.", N_("SMS code sent or used")),
    ("recovery_codes.", N_("Recovery codes made or used")),
    ("passkey.", N_("Passkey added, used or removed")),
    ("email_link.", N_("Email link sent")),
)


# an email link by what it was for: a password reset's link is no sign-in link
RESET_LINK_LABELS = {
    "email_link.sent": N_("Password reset link sent by email"),
    "email_link.delivery_failed": N_("Password reset link could not be delivered"),
}

# a status change by the status it changed to
STATUS_LABELS = {
    "active": N_("eID enabled"),
    "suspended": N_("eID suspended"),
    "blocked": N_("eID blocked"),
}


def event_label(event_type: str, details: Mapping[str, Any] | None = None) -> str:
    """The untranslated label of ``event_type`` (with these ``details``) for the account page."""
    if event_type == "eid.status_changed" and details:
        status = STATUS_LABELS.get(str(details.get("status")))
        if status is not None:
            return status
    if event_type in RESET_LINK_LABELS and details and details.get("purpose") == "reset":
        return RESET_LINK_LABELS[event_type]
    if event_type == "invitation.completed" and details and details.get("existing_eid"):
        return N_("Sign-in set up from an invitation")  # on an eID that was there before it
    if event_type == "security_notice.delivery_failed" and details and details.get("channel") == "sms":
        return N_("Security notice by SMS could not be delivered")  # to the number just replaced
    if event_type == "eid.signed_out_everywhere" and details and details.get("kept_current"):
        return N_("Signed out on every other device")  # after a change the person made here
    label = EVENT_LABELS.get(event_type)
    if label is None:
        label = next((text for family, text in _FAMILY_LABELS if event_type.startswith(family)), None)
    return label or N_("Other event")


async def account_page(request: Request) -> Response:
    who = await signed_in(request)
    if who is None:
        return await _sign_in(request)
    eid_id = who.person.id
    events = await state(request).db.read(lambda conn: account.recent_events(conn, eid_id=eid_id))
    done = request.query_params.get("done")
    return render(
        request,
        "account.html",
        person=who.person,
        enrolled=who.enrolled,
        phone=mask_phone(who.enrolled.phone) if who.enrolled.phone else None,
        phone_number=display_phone(who.person.value("phone_number") or ""),
        events=[(event, event_label(event.event_type, event.details)) for event in events],
        done=done if done in DONE else None,
        branding=who.tenant.shown_branding(),
    )


async def _sign_in(request: Request) -> Response:
    """No session: sign in to the account of the tenant the link names, or say where to go."""
    ref = opaque_id(request.query_params.get("tenant", ""), max_length=_TENANT_REF)
    tenant = None
    if ref:
        try:
            tenant = await state(request).db.read(lambda conn: tenants.get(conn, ref))
        except NotFoundError:
            tenant = None
    asked = bool(request.query_params.get("tenant"))
    if tenant is None or tenant.status != "active":
        return render(request, "account_signin.html", status=404 if asked else 200, unknown=asked)
    return await start(request, tenant, level=Level.BASIC, next_path="/account")


# -- password ---------------------------------------------------------------------------------------


async def password_page(request: Request) -> Response:
    who = await fresh(request, "/account/password")
    if isinstance(who, Response):
        return who
    return change_page(request, who, "password")


async def change_password(request: Request) -> Response:
    st = state(request)
    got = await fresh_form(request, "/account/password")
    if isinstance(got, Response):
        return got
    form, who = got
    secret = str(form.get("password") or "")[:1024]
    if secret != str(form.get("password_repeat") or "")[:1024]:
        return change_page(request, who, "password", status=400, error="mismatch")
    person = who.person
    context = [
        v
        for v in (
            person.username,
            person.value("email"),
            person.value("given_name"),
            person.value("family_name"),
        )
        if v
    ]
    try:
        PASSWORD_POLICY.check(secret, context=context)
    except WeakPasswordError as exc:
        return change_page(request, who, "password", status=400, error=str(exc.code))
    new_hash = await st.hash_password(secret)
    ip = client_ip(request)
    sid = who.session.sid

    def unit(tx: Tx) -> None:
        password.set_hash(
            tx,
            eid_id=person.id,
            tenant_id=person.tenant_id,
            new_hash=new_hash,
            reason="changed",
            client_ip=ip,
        )
        # whoever knew the old password is signed out everywhere else; this browser stays in
        account.end_everywhere(tx, eid_id=person.id, reason="password_changed", client_ip=ip, keep_sid=sid)

    await st.db.write(unit)
    notify(request, who, Notice.PASSWORD_CHANGED)
    return RedirectResponse("/account?done=password", status_code=303)


# -- recovery codes ---------------------------------------------------------------------------------


async def recovery_page(request: Request) -> Response:
    who = await fresh(request, "/account/recovery")
    if isinstance(who, Response):
        return who
    return change_page(request, who, "recovery", left=who.enrolled.recovery_codes_left)


async def new_recovery_codes(request: Request) -> Response:
    """A new set, shown once, in this response only (``Cache-Control: no-store``). It replaces
    the codes in use only when the person confirms they saved it (:func:`saved_recovery_codes`)."""
    got = await fresh_form(request, "/account/recovery")
    if isinstance(got, Response):
        return got
    _, who = got
    eid_id = who.person.id
    proposal = await state(request).db.write(lambda tx: recovery_codes.propose(tx, eid_id=eid_id, now=tx.now))
    return change_page(
        request,
        who,
        "recovery",
        codes=proposal.codes,
        codes_for=who.person.value("email") or who.person.username,
        codes_made=utc_minute(proposal.made_at),
        recovery_set=proposal.set_id,
        replaced=proposal.replaced_unsaved,
    )


async def saved_recovery_codes(request: Request) -> Response:
    """The person saved the set shown: it takes the place of the one in use. No fresh login is
    asked for: the set's id was only on the page that showed the codes, behind one."""
    got = await signed_in_form(request)
    if isinstance(got, Response):
        return got
    form, who = got
    eid_id, set_id = who.person.id, opaque_id(form.get("recovery_set"), max_length=22)
    try:
        confirmed = await state(request).db.write(
            lambda tx: recovery_codes.confirm(tx, eid_id=eid_id, set_id=set_id)
        )
    except recovery_codes.RecoveryCodeSetError:
        return change_page(
            request, who, "recovery", status=409, error="stale", left=who.enrolled.recovery_codes_left
        )
    if confirmed.put_in_use:  # not again for a form sent twice
        notify(request, who, Notice.RECOVERY_CODES)
    return RedirectResponse("/account?done=recovery", status_code=303)


# -- block my eID -----------------------------------------------------------------------------------


async def block_page(request: Request) -> Response:
    who = await fresh(request, "/account/block")
    if isinstance(who, Response):
        return who
    return change_page(request, who, "block")


async def block(request: Request) -> Response:
    """The person blocks their eID (suspected misuse): every session and token ends at once."""
    got = await fresh_form(request, "/account/block")
    if isinstance(got, Response):
        return got
    form, who = got
    if form.get("confirm") != "yes":
        return change_page(request, who, "block", status=400, error="not_confirmed")
    eid_id, ip = who.person.id, client_ip(request)
    try:
        await state(request).db.write(lambda tx: account.block(tx, eid_id=eid_id, client_ip=ip))
    except ConflictError:
        return RedirectResponse("/account", status_code=303)
    notify(request, who, Notice.BLOCKED)
    response = change_page(request, who, "blocked")
    response.delete_cookie(sessions.COOKIE_NAME, path="/", secure=True, httponly=True, samesite="lax")
    return response


def notify(
    request: Request,
    who: SignedIn,
    notice: Notice,
    *,
    phone: str | None = None,
    passkey: str | None = None,
) -> None:
    """Tell the eID's address of the change just committed, in this page's language."""
    security_notice.send(
        state(request),
        person=who.person,
        notice=notice,
        ip=client_ip(request),
        language=language(request),
        phone=phone,
        passkey=passkey,
    )


routes = [
    Route("/account", account_page, methods=["GET"]),
    Route("/account/password", password_page, methods=["GET"]),
    Route("/account/password", change_password, methods=["POST"]),
    Route("/account/recovery", recovery_page, methods=["GET"]),
    Route("/account/recovery", new_recovery_codes, methods=["POST"]),
    Route("/account/recovery/saved", saved_recovery_codes, methods=["POST"]),
    Route("/account/block", block_page, methods=["GET"]),
    Route("/account/block", block, methods=["POST"]),
]
