"""Sign-in with a passkey: username-less on the first page, or for the known person at step-up.

The sign-in page embeds the options of a fresh, single-use challenge; ``passkey.js`` runs the
ceremony and posts the result here. A passkey with user verification reaches the advanced level
on its own (one phishing-resistant device, two factors: what the person has and the PIN or
biometric that unlocks it).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from idp import audit, eids, lockout, logins
from idp.errors import ConflictError, LoginError
from idp.web import browser, login_state
from idp.web.browser import client_ip, render, state
from idp.web.login_state import again, current, no_request
from levels_of_assurance.authenticators import passkey
from levels_of_assurance.policy import Factor, Method


def relying_party(request: Request) -> tuple[str, str]:
    """The WebAuthn RP ID (the issuer's host) and the origin ceremonies must come from."""
    issuer = urlsplit(state(request).settings.issuer)
    return issuer.hostname or "localhost", f"{issuer.scheme}://{issuer.netloc}"


async def options_for(request: Request, *, eid_id: str | None) -> dict[str, str] | None:
    """A fresh challenge's options to embed in a sign-in page; None when there is no passkey to use."""
    rp_id, _ = relying_party(request)
    try:
        options, challenge_id = await state(request).db.write(
            lambda tx: passkey.authentication_options(tx, rp_id=rp_id, eid_id=eid_id, now=tx.now)
        )
    except LoginError:  # the known person has no passkey
        return None
    return {"options": options, "challenge_id": challenge_id}


async def submit(request: Request) -> Response:
    st = state(request)
    form = await request.form(max_fields=8, max_part_size=passkey.MAX_RESPONSE + 1024)
    if not browser.csrf_ok(request, form.get("csrf_token")):
        return render(request, "error.html", status=403, title_key="csrf")
    login = await current(request, str(form.get("request_id") or ""))
    if login is None:
        return no_request(request)
    ip = client_ip(request)
    if form.get("error"):  # the browser's ceremony failed or was cancelled: nothing to verify
        return again(login, passkey="cancelled")
    credential = str(form.get("credential") or "")
    challenge_id = str(form.get("challenge_id") or "")[:128]
    rp_id, origin = relying_party(request)
    now = time.time()

    finish = await login_state.finisher(request, login)

    def unit(tx: Any) -> tuple[logins.Login, login_state.Finished]:
        proof = passkey.finish_authentication(
            tx,
            challenge_id=challenge_id,
            credential_json=credential,
            expected_origin=origin,
            rp_id=rp_id,
            now=now,
        )
        person = eids.get(tx.conn, proof.eid_id)
        if person.tenant_id != login.tenant.id or not person.active:
            raise LoginError("unknown_credential", "this passkey belongs to no active eID of this service")
        if lockout.is_locked(tx.conn, eid_id=person.id):
            raise LoginError("locked", "this eID is locked")
        audit.record(
            tx,
            audit.AuditEvent(
                "login.factor_proven",
                tenant_id=person.tenant_id,
                eid_id=person.id,
                username=person.username,
                client_ip=ip,
                transaction_id=login.request_id,
                details={"login_method": "passkey", "backed_up": proof.backed_up},
                process_state="authenticating",
            ),
        )
        updated = logins.add_factor(
            tx, login, eid_id=person.id, factor=Factor(Method.PASSKEY, proof.amr, now)
        )
        return updated, finish(tx, updated)

    def spend(tx: Any) -> None:  # the refusal rolled back the ceremony's transaction
        passkey.spend_challenge(tx, challenge_id=challenge_id, ceremony="authentication", now=tx.now)

    try:
        updated, result = await st.db.write(unit)
    except ConflictError:
        await st.db.write(spend)
        return no_request(request)
    except LoginError as exc:
        event = audit.AuditEvent(
            "login.failed",
            success=False,
            tenant_id=login.tenant.id,
            client_ip=ip,
            transaction_id=login.request_id,
            details={"login_method": "passkey", "reason": str(exc.code)},
        )

        def failed(tx: Any) -> None:
            spend(tx)
            audit.record(tx, event)

        await st.db.write(failed)
        st.metrics.login(method="passkey", outcome=f"failed_{exc.code}")
        from idp.web.login_flow import identify_page

        response = await identify_page(request, login, status=401, passkey_error=str(exc.code))
        return response
    return login_state.respond(request, updated, result)


routes = [Route("/login/passkey", submit, methods=["POST"])]
