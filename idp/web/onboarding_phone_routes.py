"""The first onboarding step: confirm the mobile number the sender gave with an SMS code (the
steps' machinery is :mod:`idp.web.onboarding_routes`)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from idp import invitations
from idp.errors import DeliveryError, IdPError, InvalidPhoneError, LoginError, RateLimitedError
from idp.web import browser
from idp.web.branding import sms_name
from idp.web.browser import client_ip, state
from idp.web.i18n import SMS_PHONE_CODE
from idp.web.invitation_routes import tenant_of
from idp.web.login_state import opaque_id
from idp.web.onboarding_routes import back_to_step, record_step, render_step, step_post
from otp.sms import CodePurpose


def _phone(inv: invitations.Invitation) -> str:
    """The mobile number to confirm (the phone step is reached only with one)."""
    if inv.phone_number is None:
        raise IdPError(f"onboarding {inv.id} has no mobile number to confirm")
    return inv.phone_number


@step_post("phone")
async def send_phone_code(request: Request, form: Any, inv: invitations.Invitation) -> Response:
    st = state(request)
    lang = browser.language(request)
    tenant = await tenant_of(request, inv.tenant_id)
    name = sms_name(tenant.branding, tenant.name)
    try:
        challenge = await st.phones.send(
            st.db,
            tenant_id=inv.tenant_id,
            eid_id=None,
            phone=_phone(inv),
            purpose=CodePurpose.ENROL_PHONE,
            client_ip=client_ip(request),
            message=lambda code: st.pages.gettext(lang, SMS_PHONE_CODE, code=code, name=name),
            locale=lang,
        )
    except RateLimitedError as exc:
        # no new code yet: the one already sent (its challenge on the page) still works
        response = await render_step(
            request,
            inv,
            "phone",
            status=429,
            error="sms_throttled",
            retry_after=exc.retry_after,
            challenge_id=opaque_id(form.get("challenge_id")) or None,
        )
        response.headers["Retry-After"] = str(int(exc.retry_after) + 1)
        return response
    except (DeliveryError, InvalidPhoneError):
        return await render_step(request, inv, "phone", status=502, error="sms_failed")
    return back_to_step(inv, challenge=challenge.challenge_id)


@step_post("phone")
async def confirm_phone(request: Request, form: Any, inv: invitations.Invitation) -> Response:
    st = state(request)
    challenge_id = str(form.get("challenge_id") or "")[:64]
    code = str(form.get("code") or "")[:16]
    ip = client_ip(request)
    account = f"invitation:{inv.id}"
    try:
        await st.throttle.check("code", account=account, ip=ip)
        checked = await st.phones.check(
            st.db, challenge_id=challenge_id, code=code, purpose=CodePurpose.ENROL_PHONE, client_ip=ip
        )
        if checked.phone != inv.phone_number:
            raise LoginError("invalid", "this code was sent to another number")
    except RateLimitedError as exc:
        return await render_step(
            request,
            inv,
            "phone",
            status=429,
            error="throttled",
            retry_after=exc.retry_after,
            challenge_id=challenge_id,
        )
    except LoginError as exc:
        if exc.code != "malformed":
            await st.throttle.failed("code", account=account, ip=ip)
        keep = challenge_id if exc.code in ("invalid", "malformed") else None
        return await render_step(
            request,
            inv,
            "phone",
            status=401,
            error=str(exc.code),
            challenge_id=keep,
            attempts_left=getattr(exc, "attempts_left", None),
        )
    await st.db.write(lambda tx: record_step(tx, inv, phone_verified_at=tx.now))
    return back_to_step(inv)


routes = [
    Route("/onboarding/{invitation_id}/phone/send", send_phone_code, methods=["POST"]),
    Route("/onboarding/{invitation_id}/phone", confirm_phone, methods=["POST"]),
]
