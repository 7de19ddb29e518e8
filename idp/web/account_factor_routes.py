"""Account changes to the possession factors: the mobile number, the authenticator app, passkeys.

Each needs a fresh advanced login (:func:`idp.web.account_login.fresh`). A new mobile number is
confirmed by an SMS code sent to the *new* number (``CodePurpose.CHANGE_PHONE``) before it is
stored (E.164, verified by ``sms``), and the verified number it replaces is told of it by SMS
(:func:`idp.web.security_notice.send_sms`); a new authenticator app is enrolled and confirmed with its
first code, and replaces the old one; passkeys are listed, removed after a page that names the
one to go and asks to confirm (unless it is the eID's only way to the advanced level:
:func:`idp.account.remove_passkey`), and added through the WebAuthn registration ceremony
(``templates/static/passkey.js`` in the page).
"""

from __future__ import annotations

import time
from urllib.parse import urlencode, urlsplit

from sqlalchemy import Connection, select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from idp import account
from idp.errors import (
    ConflictError,
    DeliveryError,
    InvalidPhoneError,
    LoginError,
    NotFoundError,
    RateLimitedError,
)
from idp.storage import tables
from idp.web import browser
from idp.web.account_login import SignedIn, fresh, fresh_form
from idp.web.account_routes import change_page, notify
from idp.web.branding import sms_name
from idp.web.browser import client_ip, state
from idp.web.i18n import SMS_PHONE_CODE
from idp.web.login_state import opaque_id
from idp.web.security_notice import Notice, send_sms
from levels_of_assurance.authenticators import passkey
from otp import authenticator_app
from otp.phone import display_phone, mask_phone, parse_phone, region_of
from otp.sms import CodePurpose

# the passkey page runs passkey.js; the site-wide policy already lets our own scripts (and only
# those) run
PASSKEY_CSP = browser.SECURITY_HEADERS["Content-Security-Policy"]
# a credential id, base64url (WebAuthn: at most 1023 bytes); account_login.NEXT allows as many
CREDENTIAL_ID_MAX = 1400


def _account(who: SignedIn) -> str:
    return f"{who.tenant.id}:{who.person.id}"


# -- mobile number ----------------------------------------------------------------------------------


def _new_number(conn: Connection, challenge_id: str, eid_id: str) -> str | None:
    """The number a code to change the phone was sent to, written out: it is the one the person
    just typed, so a slip shows before they wait for an SMS that goes elsewhere."""
    c = tables.otp_codes.c
    phone = conn.execute(
        select(c.phone).where(
            (c.id == challenge_id) & (c.eid_id == eid_id) & (c.purpose == CodePurpose.CHANGE_PHONE.value)
        )
    ).scalar()
    return str(phone) if phone else None


def _home_region(who: SignedIn) -> str | None:
    """Where a number typed without its country code is from: the eID's country, else the
    country of its present number."""
    country = who.person.value("country")
    if country:
        return country
    present = who.person.value("phone_number")
    return region_of(present) if present else None


async def phone_page(request: Request) -> Response:
    who = await fresh(request, "/account/phone")
    if isinstance(who, Response):
        return who
    challenge = opaque_id(request.query_params.get("challenge", "")) or None
    to = request.query_params.get("to", "")[:32] or None
    number = None
    if challenge:
        eid_id = who.person.id
        number = await state(request).db.read(lambda conn: _new_number(conn, challenge, eid_id))
    # "Send a new code" sends to the same number again (the cooldown and limits apply)
    return change_page(
        request,
        who,
        "phone",
        challenge_id=challenge,
        to=display_phone(number) if number else to,
        resend_phone=number,
    )


async def send_phone_code(request: Request) -> Response:
    st = state(request)
    got = await fresh_form(request, "/account/phone")
    if isinstance(got, Response):
        return got
    form, who = got
    raw = str(form.get("phone") or "")[:64]
    try:
        e164 = parse_phone(raw, default_region=_home_region(who))
    except InvalidPhoneError:
        return change_page(request, who, "phone", status=400, error="invalid_phone", phone_value=raw)
    lang = browser.language(request)
    name = sms_name(who.tenant.branding, who.tenant.name)
    try:
        challenge = await st.phones.send(
            st.db,
            tenant_id=who.tenant.id,
            eid_id=who.person.id,
            phone=e164,
            purpose=CodePurpose.CHANGE_PHONE,
            client_ip=client_ip(request),
            message=lambda code: st.pages.gettext(lang, SMS_PHONE_CODE, code=code, name=name),
            locale=lang,
        )
    except RateLimitedError as exc:
        # "Send a new code" too soon: the code page again, where the code already sent still works
        sent = opaque_id(form.get("challenge_id")) or None
        again = {"challenge_id": sent, "to": display_phone(e164), "resend_phone": e164} if sent else {}
        response = change_page(
            request,
            who,
            "phone",
            status=429,
            error="sms_throttled",
            retry_after=exc.retry_after,
            phone_value=raw,
            **again,
        )
        response.headers["Retry-After"] = str(int(exc.retry_after) + 1)
        return response
    except (DeliveryError, InvalidPhoneError):
        return change_page(request, who, "phone", status=502, error="sms_failed", phone_value=raw)
    query = urlencode({"challenge": challenge.challenge_id, "to": challenge.masked_phone})
    return RedirectResponse(f"/account/phone?{query}", status_code=303)


async def confirm_phone(request: Request) -> Response:
    st = state(request)
    got = await fresh_form(request, "/account/phone")
    if isinstance(got, Response):
        return got
    form, who = got
    challenge_id = opaque_id(form.get("challenge_id"))
    code = str(form.get("code") or "")[:16]
    to = str(form.get("to") or "")[:32] or None
    ip = client_ip(request)
    acct = _account(who)
    try:
        await st.throttle.check("code", account=acct, ip=ip)
        checked = await st.phones.check(
            st.db, challenge_id=challenge_id, code=code, purpose=CodePurpose.CHANGE_PHONE, client_ip=ip
        )
        if checked.eid_id != who.person.id:
            raise LoginError("invalid", "this code was sent for another eID")
    except RateLimitedError as exc:
        return change_page(
            request,
            who,
            "phone",
            status=429,
            error="throttled",
            retry_after=exc.retry_after,
            challenge_id=challenge_id,
            to=to,
        )
    except LoginError as exc:
        if exc.code != "malformed":
            await st.throttle.failed("code", account=acct, ip=ip)
        keep = challenge_id if exc.code in ("invalid", "malformed") else None
        return change_page(
            request,
            who,
            "phone",
            status=401,
            error=str(exc.code),
            challenge_id=keep,
            to=to,
            attempts_left=getattr(exc, "attempts_left", None),
        )
    await st.throttle.succeeded("code", account=acct)
    eid_id = who.person.id
    try:
        previous = await st.db.write(
            lambda tx: account.change_phone(
                tx, eid_id=eid_id, phone=checked.phone, evidence_ref=f"sms:{challenge_id[:40]}", client_ip=ip
            )
        )
    except (NotFoundError, ConflictError):  # erased, suspended or blocked since the code was checked:
        return RedirectResponse("/account", status_code=303)  # its sessions ended, the page says so
    notify(request, who, Notice.PHONE_CHANGED, phone=mask_phone(checked.phone))
    if previous is not None and previous != checked.phone:
        # and by SMS to the verified number it replaced (never the new one), in the mail's language
        send_sms(
            st,
            person=who.person,
            notice=Notice.PHONE_CHANGED,
            to=previous,
            language=browser.language(request),
        )
    return RedirectResponse("/account?done=phone", status_code=303)


# -- authenticator app ------------------------------------------------------------------------------


async def app_page(request: Request) -> Response:
    who = await fresh(request, "/account/app")
    if isinstance(who, Response):
        return who
    return change_page(request, who, "app", has_app=who.enrolled.app, enrolment=None)


async def start_app(request: Request) -> Response:
    st = state(request)
    got = await fresh_form(request, "/account/app")
    if isinstance(got, Response):
        return got
    _, who = got
    eid_id, key = who.person.id, st.settings.secret_key
    label = who.person.value("email") or who.person.username
    issuer = who.tenant.shown_name
    enrolment = await st.db.write(
        lambda tx: authenticator_app.begin_enrolment(
            tx,
            eid_id=eid_id,
            account_name=label,
            issuer_name=issuer,
            sealing_key=key,
            now=tx.now,
        )
    )
    return change_page(request, who, "app", has_app=who.enrolled.app, enrolment=enrolment)


async def confirm_app(request: Request) -> Response:
    st = state(request)
    got = await fresh_form(request, "/account/app")
    if isinstance(got, Response):
        return got
    form, who = got
    eid_id, key = who.person.id, st.settings.secret_key
    enrolment_id = opaque_id(form.get("enrolment_id"))
    code = str(form.get("code") or "")[:16]
    ip = client_ip(request)
    acct = _account(who)
    try:
        await st.throttle.check("code", account=acct, ip=ip)
        await st.db.write(
            lambda tx: authenticator_app.confirm_enrolment(
                tx, eid_id=eid_id, enrolment_id=enrolment_id, code=code, sealing_key=key, now=tx.now
            )
        )
    except (LoginError, RateLimitedError) as exc:
        if isinstance(exc, LoginError) and exc.code != "malformed":
            await st.throttle.failed("code", account=acct, ip=ip)
        # the enrolment stays pending and the app already holds its key: show the same one again
        enrolment = authenticator_app.shown_again(
            enrolment_id=enrolment_id,
            provisioning_uri=str(form.get("provisioning_uri") or ""),
            manual_key=str(form.get("manual_key") or ""),
        )
        limited = isinstance(exc, RateLimitedError)
        return change_page(
            request,
            who,
            "app",
            status=429 if limited else 401,
            error="throttled" if limited else str(getattr(exc, "code", "invalid")),
            retry_after=exc.retry_after if isinstance(exc, RateLimitedError) else None,
            has_app=who.enrolled.app,
            enrolment=enrolment,
        )
    await st.throttle.succeeded("code", account=acct)
    notify(request, who, Notice.APP_SET_UP)
    return RedirectResponse("/account?done=app", status_code=303)


# -- passkeys ---------------------------------------------------------------------------------------


def _rp(request: Request) -> tuple[str, str]:
    """The WebAuthn relying party id (the issuer's host) and the origin pages are served from."""
    issuer = urlsplit(state(request).settings.issuer)
    return issuer.hostname or "localhost", f"{issuer.scheme}://{issuer.netloc}"


async def _passkeys_page(
    request: Request, who: SignedIn, *, status: int = 200, error: str | None = None
) -> Response:
    rp_id, _ = _rp(request)
    rp_name = who.tenant.shown_name
    person = who.person
    options, challenge_id = await state(request).db.write(
        lambda tx: passkey.registration_options(tx, rp_id=rp_id, rp_name=rp_name, eid=person, now=tx.now)
    )
    response = change_page(
        request,
        who,
        "passkeys",
        status=status,
        error=error,
        passkeys=who.enrolled.passkeys,
        # inside <script>: no "<", ">" or "&" may close it early (names come from the eID)
        options_json=options.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"),
        passkey_challenge=challenge_id,
    )
    response.headers["Content-Security-Policy"] = PASSKEY_CSP
    return response


async def passkeys_page(request: Request) -> Response:
    who = await fresh(request, "/account/passkeys")
    if isinstance(who, Response):
        return who
    return await _passkeys_page(request, who)


async def add_passkey(request: Request) -> Response:
    got = await fresh_form(request, "/account/passkeys")
    if isinstance(got, Response):
        return got
    form, who = got
    if browser_error := form.get("error"):  # the browser's ceremony failed (passkey.js names its error)
        # InvalidStateError: the device already holds one of this eID's passkeys (WebAuthn §5.1.3 step 20)
        already = browser_error == "InvalidStateError"
        return await _passkeys_page(
            request, who, status=400, error="already_registered" if already else "cancelled"
        )
    rp_id, origin = _rp(request)
    challenge_id = opaque_id(form.get("challenge_id"), max_length=128)
    credential = str(form.get("credential") or "")
    # the person has already touched their authenticator: a name too long, or blank, must not
    # throw the new passkey away, so it is tidied here rather than refused
    typed = " ".join("".join(ch for ch in str(form.get("name") or "")[:200] if ch.isprintable()).split())
    name = typed[: passkey.MAX_NAME].rstrip() or "Passkey"
    now = time.time()
    try:
        added = await state(request).db.write(
            lambda tx: passkey.finish_registration(
                tx,
                challenge_id=challenge_id,
                credential_json=credential,
                expected_origin=origin,
                rp_id=rp_id,
                name=name,
                now=now,
            )
        )
    except LoginError as exc:  # the refusal rolled back the ceremony's transaction: spend its challenge
        await state(request).db.write(
            lambda tx: passkey.spend_challenge(
                tx, challenge_id=challenge_id, ceremony="registration", now=tx.now
            )
        )
        return await _passkeys_page(request, who, status=400, error=str(exc.code))
    notify(request, who, Notice.PASSKEY_ADDED, passkey=added.name)  # as stored, and so listed
    return RedirectResponse("/account?done=passkey_added", status_code=303)


def _remove_path(credential_id: str) -> str:
    """The page that confirms removing this passkey (the passkeys page when there is no id)."""
    if not credential_id:
        return "/account/passkeys"
    return f"/account/passkeys/remove?{urlencode({'credential_id': credential_id})}"


async def remove_passkey_page(request: Request) -> Response:
    """Which passkey is to go, and what that means; the removal is this page's POST
    (:func:`remove_passkey`), never a GET."""
    credential_id = opaque_id(request.query_params.get("credential_id"), max_length=CREDENTIAL_ID_MAX)
    who = await fresh(request, _remove_path(credential_id))
    if isinstance(who, Response):
        return who
    chosen = next((p for p in who.enrolled.passkeys if p.credential_id == credential_id), None)
    if chosen is None:  # removed already, another eID's, or no id at all
        return await _passkeys_page(request, who, status=404, error="unknown_credential")
    return change_page(
        request,
        who,
        "passkey_remove",
        passkey=chosen,
        added_on=chosen.created_at,  # shown in the reader's time zone (templates/_moment.html)
        last_used_on=chosen.last_used_at,
        # the rule remove_passkey keeps, said before the person asks for what it refuses
        only_way=not who.enrolled.without_passkey(chosen.credential_id).can_reach_advanced,
    )


async def remove_passkey(request: Request) -> Response:
    # a stale login goes back to the confirmation, which steps up and then shows it again
    got = await fresh_form(
        request, lambda form: _remove_path(opaque_id(form.get("credential_id"), max_length=CREDENTIAL_ID_MAX))
    )
    if isinstance(got, Response):
        return got
    form, who = got
    credential_id = opaque_id(form.get("credential_id"), max_length=CREDENTIAL_ID_MAX)
    person = who.person
    # its name for the notice, as the page listed it just before
    removed = next((p.name for p in who.enrolled.passkeys if p.credential_id == credential_id), None)
    try:
        await state(request).db.write(
            lambda tx: account.remove_passkey(tx, person=person, credential_id=credential_id)
        )
    except NotFoundError:
        return await _passkeys_page(request, who, status=404, error="unknown_credential")
    except account.LastAdvancedMethodError:
        return await _passkeys_page(request, who, status=409, error="last_advanced_method")
    notify(request, who, Notice.PASSKEY_REMOVED, passkey=removed)
    return RedirectResponse("/account?done=passkey_removed", status_code=303)


routes = [
    Route("/account/phone", phone_page, methods=["GET"]),
    Route("/account/phone/send", send_phone_code, methods=["POST"]),
    Route("/account/phone", confirm_phone, methods=["POST"]),
    Route("/account/app", app_page, methods=["GET"]),
    Route("/account/app/start", start_app, methods=["POST"]),
    Route("/account/app", confirm_app, methods=["POST"]),
    Route("/account/passkeys", passkeys_page, methods=["GET"]),
    Route("/account/passkeys", add_passkey, methods=["POST"]),
    Route("/account/passkeys/remove", remove_passkey_page, methods=["GET"]),
    Route("/account/passkeys/remove", remove_passkey, methods=["POST"]),
]

__all__ = ["account", "routes"]
