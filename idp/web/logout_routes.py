"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2-§3).

With an ``id_token_hint`` naming the current session the session ends at once; otherwise the
person confirms on a CSRF-protected page, as §6 advises against logout requests anyone can
forge. Redirection goes only to a registered ``post_logout_redirect_uri``.
"""

from __future__ import annotations

import time

from authlib.oauth2.rfc6749.errors import OAuth2Error
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from idp import sessions
from idp.web import browser
from idp.web.browser import client_ip, render, state
from idp.web.oidc_routes import load_session, public_request
from oidc.context import GrantContext, current
from oidc.models import OAuthClient
from oidc.server import unverified_claims


def _hint_audience(id_token_hint: str | None) -> str | None:
    if not id_token_hint:
        return None
    aud = unverified_claims(id_token_hint).get("aud")
    if isinstance(aud, list) and len(aud) == 1:
        aud = aud[0]
    return aud if isinstance(aud, str) else None


async def logout(request: Request) -> Response:
    st = state(request)
    req = await public_request(request, "/logout")
    if isinstance(req, Response):
        return req
    data = req.payload.data
    confirmed = request.method == "POST" and data.get("confirm") == "yes"
    if confirmed and not browser.csrf_ok(request, data.get("csrf_token")):
        return render(request, "error.html", status=403, title_key="csrf")
    client_id = data.get("client_id") or _hint_audience(data.get("id_token_hint"))
    client = await st.clients.get(client_id) if client_id else None
    ctx = GrantContext(client=OAuthClient(client) if client else None)
    session, _person = await load_session(request, time.time())
    reset = current.set(ctx)
    try:
        try:
            validated = st.provider.server.validate_endpoint_request("end_session", req)
        except OAuth2Error as error:
            return render(
                request,
                "error.html",
                status=400,
                title_key="invalid_request",
                detail=f"{error.error}: {error.description or ''}",
            )
        hint_sid = (validated.id_token_claims or {}).get("sid")
        same_session = session is not None and hint_sid is not None and hint_sid == session.sid
        if not confirmed and not same_session and session is not None:
            hidden = {
                k: v
                for k, v in data.items()
                if k
                in {
                    "id_token_hint",
                    "client_id",
                    "post_logout_redirect_uri",
                    "state",
                    "ui_locales",
                    "logout_hint",
                }
            }
            hidden["confirm"] = "yes"
            return render(
                request,
                "logout_confirm.html",
                client_name=client.name if client else None,
                hidden=hidden,
                cancel_url="/",
            )
        st.provider.server.create_endpoint_response("end_session", validated)
    finally:
        current.reset(reset)
    if session is not None:
        sid, ip = session.sid, client_ip(request)
        await st.db.write(lambda tx: sessions.end(tx, sid=sid, reason="logout", client_ip=ip))
    if validated.redirect_uri:
        response: Response = RedirectResponse(validated.redirect_uri, status_code=303)
    else:
        response = render(
            request, "logged_out.html", client_name=client.name if client else None, return_url=None
        )
    response.delete_cookie(sessions.COOKIE_NAME, path="/", secure=True, httponly=True, samesite="lax")
    return response


routes = [Route("/logout", logout, methods=["GET", "POST"])]
