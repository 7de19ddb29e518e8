"""OpenID Connect endpoints: discovery, JWKS, authorization, token, userinfo, revocation and
introspection. RP-initiated logout is in :mod:`idp.web.logout_routes`."""

from __future__ import annotations

import time
from typing import Any

from authlib.oauth2.rfc6749.errors import OAuth2Error
from sqlalchemy import Connection, select
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from idp import audit, eids, secrets, sessions
from idp.clients import Client
from idp.errors import NotFoundError
from idp.storage import tables
from idp.web import browser, login_routes
from idp.web.browser import client_ip, render, state
from levels_of_assurance.ladder import EIDAS, URN, Level
from oidc import authorization, store
from oidc.context import GrantContext, current
from oidc.models import OAuthClient, Subject
from oidc.server import OAuthResponse
from oidc.starlette.authorization_server import to_response
from oidc.starlette.requests import (
    BadRequestError,
    StarletteOAuth2Request,
    from_params,
    oauth2_request,
)
from oidc.starlette.resource_protector import bearer_token

# the highest level an authenticator of this release can give; raised as levels arrive
AVAILABLE_LEVEL = Level.BASIC
AUTH_REQUEST_TTL = 30 * 60
# state comes back in the redirect URL, and URLs much longer than 8 kB break on the way
MAX_STATE = 4096


def discovery(request: Request) -> JSONResponse:
    """OpenID Connect Discovery 1.0 §3 and RFC 8414 §2."""
    st = state(request)
    iss = st.settings.issuer
    acr = [URN[lvl] for lvl in Level if lvl <= AVAILABLE_LEVEL] + [
        EIDAS[lvl] for lvl in Level if lvl <= AVAILABLE_LEVEL
    ]
    doc = {
        "issuer": iss,
        "authorization_endpoint": f"{iss}/authorize",
        "token_endpoint": f"{iss}/token",
        "userinfo_endpoint": f"{iss}/userinfo",
        "jwks_uri": f"{iss}/.well-known/jwks.json",
        "revocation_endpoint": f"{iss}/revoke",
        "introspection_endpoint": f"{iss}/introspect",
        "end_session_endpoint": f"{iss}/logout",
        "scopes_supported": ["openid", "profile", "email", "phone", "offline_access"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none",
        ],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "ES256", "PS256", "EdDSA"],
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none",
        ],
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ],
        "code_challenge_methods_supported": ["S256"],
        "acr_values_supported": acr,
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "acr",
            "amr",
            "sid",
            "name",
            "given_name",
            "family_name",
            "birthdate",
            "preferred_username",
            "updated_at",
            "email",
            "email_verified",
            "phone_number",
            "phone_number_verified",
        ],
        "claims_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "prompt_values_supported": ["none", "login"],
        "ui_locales_supported": list(st.settings.languages),
        "authorization_response_iss_parameter_supported": True,
        "frontchannel_logout_supported": False,
        "backchannel_logout_supported": False,
    }
    return JSONResponse(doc, headers={"Cache-Control": "public, max-age=300"})


def jwks(request: Request) -> Response:
    ring = state(request).provider.keyring
    return Response(
        ring.jwks_json, media_type="application/json", headers={"Cache-Control": "public, max-age=300"}
    )


async def public_request(request: Request, path: str) -> StarletteOAuth2Request | Response:
    try:
        return await oauth2_request(request, public_url=state(request).settings.issuer + path)
    except BadRequestError as exc:
        result = OAuthResponse(400, {"error": "invalid_request", "error_description": str(exc)})
        # the browser-facing endpoints answer a person with a page, the others a client with JSON
        return _error_page(request, result) if path in ("/authorize", "/logout") else to_response(result)


# -- authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2) ---------------------------------


def _error_page(request: Request, response: OAuthResponse) -> Response:
    """An error that cannot go back to the client (unknown client, bad redirect URI) is shown here."""
    if response.location:
        return RedirectResponse(response.location, status_code=302)
    body = response.json
    error, description = body.get("error"), body.get("error_description") or ""
    return render(
        request,
        "error.html",
        status=400,
        title_key=_unanswerable(error, description),
        detail=f"{error}: {description}".strip(": "),
    )


def _unanswerable(error: str | None, description: str) -> str:
    """The error page (``error.html`` title key) that tells the person why we stopped."""
    if error == "invalid_client":
        return "unknown_client"
    # authlib's words for a redirect URI that is not registered, or missing where one must be named
    if "redirect uri" in description.lower() or "redirect_uri" in description:
        return "unregistered_redirect_uri"
    return "invalid_request"


async def load_session(request: Request, conn_now: float) -> tuple[sessions.Session | None, eids.EID | None]:
    cookie = request.cookies.get(sessions.COOKIE_NAME)
    if not cookie:
        return None, None

    def load(conn: Connection) -> tuple[sessions.Session | None, eids.EID | None]:
        s = sessions.load(conn, cookie, now=conn_now)
        if s is None:
            return None, None
        try:
            return s, eids.get(conn, s.eid_id)
        except NotFoundError:
            return None, None

    return await state(request).db.read(load)


async def authorize(request: Request) -> Response:
    req = await public_request(request, "/authorize")
    if isinstance(req, Response):
        return req
    return await _authorize(request, req, fresh_since=None)


async def _authorize(request: Request, req: StarletteOAuth2Request, *, fresh_since: float | None) -> Response:
    st = state(request)
    server = st.provider.server
    data = req.payload.data
    if len(data.get("state") or "") > MAX_STATE:  # too long to send back: no redirect
        too_long = f"state is longer than {MAX_STATE} characters, too long to come back in a URL"
        body = {"error": "invalid_request", "error_description": too_long}
        return _error_page(request, OAuthResponse(400, body))
    now = time.time()
    client_id = data.get("client_id")
    client = await st.clients.get(client_id) if isinstance(client_id, str) and client_id else None
    ctx = GrantContext(
        client=OAuthClient(client) if client else None, tenant_id=client.tenant_id if client else None
    )
    session, person = await load_session(request, now)
    usable = session is not None and person is not None and person.active
    subject = Subject(person, session.sid) if usable and person is not None and session is not None else None

    reset = current.set(ctx)
    try:
        try:
            grant = server.get_consent_grant(request=req, end_user=subject)
        except OAuth2Error as error:
            failure = error
            if error.error == "login_required" and client is not None and error.redirect_uri:
                # authlib's own prompt=none check (no session at all) comes first and says nothing
                # more; a level no login can reach is the more useful answer, as with a session
                try:
                    authorization.requested_level(
                        data, client, available=AVAILABLE_LEVEL, redirect_uri=error.redirect_uri
                    )
                    error.description = error.description or (
                        f"the person must authenticate ({authorization.LoginReason.NO_SESSION}) "
                        "but prompt=none was requested"
                    )
                except OAuth2Error as unmet:
                    failure = unmet
            failure.state = data.get("state")
            response = server.handle_error_response(req, failure)
            server.execute_hook("after_create_authorization_response", response)
            return _error_page(request, response)
        assert client is not None
        redirect_uri = grant.redirect_uri
        try:
            level = authorization.requested_level(
                data, client, available=AVAILABLE_LEVEL, redirect_uri=redirect_uri, state=data.get("state")
            )
            reason = authorization.login_reason(
                session if usable else None,
                client=client,
                level=level.requested,
                prompt=data.get("prompt"),
                max_age=data.get("max_age"),
                now=now,
                fresh_since=fresh_since,
            )
            if reason is not None and "none" in (data.get("prompt") or "").split():
                raise authorization.LoginRequiredError(
                    f"the person must authenticate ({reason}) but prompt=none was requested",
                    redirect_uri=redirect_uri,
                    state=data.get("state"),
                )
        except OAuth2Error as error:
            if error.redirect_uri is None:
                error.redirect_uri = redirect_uri
            error.state = data.get("state")
            response = server.handle_error_response(req, error)
            server.execute_hook("after_create_authorization_response", response)
            return _error_page(request, response)
        if reason is not None:
            return await _start_login(request, client, dict(data), reason)
        assert session is not None and subject is not None
        ctx.session = session
        ctx.acr = authorization.issued_acr(session, level.requested)
        response = server.create_authorization_response(request=req, grant_user=subject, grant=grant)
    finally:
        current.reset(reset)

    if ctx.new_code is not None:
        row = ctx.new_code
        event = audit.AuditEvent(
            "authorization.code_issued",
            tenant_id=client.tenant_id,
            eid_id=subject.eid.id,
            username=subject.eid.username,
            client_ip=client_ip(request),
            transaction_id=_transaction_id(data.get("state")),
            details={
                "client_id": client.client_id,
                "acr": ctx.acr,
                "scope": row["scope"],
                "sid": session.sid,
            },
        )
        await st.db.write(lambda tx: store.save_code(tx, row=row, event=event))
    return _error_page(request, response)


def _transaction_id(rp_state: str | None) -> str | None:
    """The RP's ``state`` names its transaction in the audit trail, when it fits the column."""
    if rp_state and len(rp_state) <= 64 and rp_state.isprintable():
        return rp_state
    return None


async def _start_login(request: Request, client: Client, params: dict[str, str], reason: str) -> Response:
    st = state(request)
    request_id = secrets.new_secret(24)
    browser_value = browser.browser_id(request) or secrets.new_secret()
    ip = client_ip(request)

    def unit(tx: Any) -> None:
        tx.conn.execute(
            tables.auth_requests.insert().values(
                id=request_id,
                client_id=client.client_id,
                params=params,
                browser_digest=secrets.digest(browser_value),
                created_at=tx.now,
                expires_at=tx.now + AUTH_REQUEST_TTL,
            )
        )
        audit.record(
            tx,
            audit.AuditEvent(
                "authorization.login_required",
                tenant_id=client.tenant_id,
                client_ip=ip,
                transaction_id=request_id,
                details={"client_id": client.client_id, "reason": reason},
                process_state="awaiting_login",
            ),
        )

    await st.db.write(unit)
    response = RedirectResponse(f"/login?request_id={request_id}", status_code=303)
    if browser.browser_id(request) is None:
        browser.set_cookie(
            response, browser.BROWSER_COOKIE, browser_value, max_age=browser.BROWSER_COOKIE_MAX_AGE
        )
    return response


async def resume(request: Request) -> Response:
    """Continue an authorization request after the person logged in (or show why not)."""
    st = state(request)
    request_id = request.query_params.get("request_id", "")
    browser_value = browser.browser_id(request)

    def load(conn: Connection) -> Any:
        return (
            conn.execute(select(tables.auth_requests).where(tables.auth_requests.c.id == request_id))
            .mappings()
            .first()
        )

    row = await st.db.read(load) if login_routes.REQUEST_ID.fullmatch(request_id) else None
    if (
        row is None
        or browser_value is None
        or not secrets.matches(browser_value, row["browser_digest"])
        or row["expires_at"] <= time.time()
    ):
        return render(
            request,
            "error.html",
            status=400,
            title_key="request_expired",
        )
    req = from_params(method="GET", uri=st.settings.issuer + "/authorize", params=row["params"])
    return await _authorize(request, req, fresh_since=row["created_at"])


# -- token, revocation, introspection, userinfo --------------------------------------------------


async def token(request: Request) -> Response:
    req = await public_request(request, "/token")
    if isinstance(req, Response):
        return req
    result = await state(request).endpoints.token(req, client_ip=client_ip(request))
    if result.status == 200:
        state(request).metrics.token_issued(grant_type=req.form.get("grant_type") or "unknown")
    return to_response(result)


async def revoke(request: Request) -> Response:
    req = await public_request(request, "/revoke")
    if isinstance(req, Response):
        return req
    return to_response(await state(request).endpoints.revoke(req, client_ip=client_ip(request)))


async def introspect(request: Request) -> Response:
    req = await public_request(request, "/introspect")
    if isinstance(req, Response):
        return req
    return to_response(await state(request).endpoints.introspect(req))


async def userinfo(request: Request) -> Response:
    token_value = bearer_token(request)
    if token_value is None and request.method == "POST":
        form = await request.form(max_fields=16)
        value = form.get("access_token")
        token_value = value if isinstance(value, str) else None
    return to_response(await state(request).endpoints.userinfo(token_value))


# the router tries routes in order: the machine-to-machine endpoints, hit thousands of times a
# second, come first
routes = [
    Route("/token", token, methods=["POST"]),
    Route("/introspect", introspect, methods=["POST"]),
    Route("/userinfo", userinfo, methods=["GET", "POST"]),
    Route("/revoke", revoke, methods=["POST"]),
    Route("/.well-known/jwks.json", jwks, methods=["GET"]),
    Route("/.well-known/openid-configuration", discovery, methods=["GET"]),
    Route("/.well-known/oauth-authorization-server", discovery, methods=["GET"]),
    Route("/authorize", authorize, methods=["GET", "POST"]),
    Route("/authorize/resume", resume, methods=["GET"]),
]
