"""OpenID Connect endpoints: discovery, JWKS, token, userinfo, revocation and introspection, and
what the browser-facing ones share. The authorization endpoint is in
:mod:`idp.web.authorize_routes`, RP-initiated logout in :mod:`idp.web.logout_routes`."""

from __future__ import annotations

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from idp import eids, sessions
from idp.errors import NotFoundError
from idp.web.browser import client_ip, render, state
from levels_of_assurance.ladder import EIDAS, URN, Level
from oidc import verified_claims
from oidc.server import OAuthResponse
from oidc.starlette.authorization_server import to_response
from oidc.starlette.requests import (
    BadRequestError,
    MalformedClientAuthError,
    StarletteOAuth2Request,
    oauth2_request,
)
from oidc.starlette.resource_protector import bearer_token

# the highest level a login can reach: qualified is an advanced login by an eID whose identity was
# proofed by video identification (a person not yet proofed is offered it during the login)
AVAILABLE_LEVEL = Level.QUALIFIED


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
        "scopes_supported": [
            "openid",
            "profile",
            "email",
            "phone",
            "offline_access",
            "groups",
            verified_claims.SCOPE,
        ],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ],
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
            "groups",
            "verified_claims",
        ],
        "claims_parameter_supported": True,
        # OpenID Connect for Identity Assurance 1.0 §8 (released with the verified_claims scope)
        "verified_claims_supported": True,
        "trust_frameworks_supported": [verified_claims.TRUST_FRAMEWORK],
        "evidence_supported": ["document"],
        "documents_supported": ["idcard", "passport"],
        "claims_in_verified_claims_supported": list(verified_claims.CLAIMS),
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
    browser_facing = path in ("/authorize", "/logout")
    try:
        return await oauth2_request(
            request, public_url=state(request).settings.issuer + path, authenticates_client=not browser_facing
        )
    except MalformedClientAuthError as exc:
        # RFC 6749 §5.2: client authentication through the Authorization header failed
        body = {"error": "invalid_client", "error_description": str(exc)}
        return to_response(OAuthResponse(401, body, [("WWW-Authenticate", 'Basic error="invalid_client"')]))
    except BadRequestError as exc:
        result = OAuthResponse(400, {"error": "invalid_request", "error_description": str(exc)})
        # the browser-facing endpoints answer a person with a page, the others a client with JSON
        return error_page(request, result) if browser_facing else to_response(result)


def error_page(request: Request, response: OAuthResponse, *, redirect_status: int = 302) -> Response:
    """An error that cannot go back to the client (unknown client, bad redirect URI) is shown here;
    any other answer of the authorization endpoint is a redirect (``redirect_status``: 303 answers
    a form post)."""
    if response.location:
        return RedirectResponse(response.location, status_code=redirect_status)
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


# -- token, revocation, introspection, userinfo --------------------------------------------------


async def token(request: Request) -> Response:
    req = await public_request(request, "/token")
    if isinstance(req, Response):
        return req
    st = state(request)
    result = await st.endpoints.token(req, client_ip=client_ip(request))
    if result.status == 200:
        st.metrics.token_issued(grant_type=req.form.get("grant_type") or "unknown")
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


# the machine-to-machine endpoints, hit thousands of times a second: served past the router
# (idp.web.direct), and first in the router's list for their other methods
machine_routes = [
    Route("/token", token, methods=["POST"]),
    Route("/introspect", introspect, methods=["POST"]),
    Route("/userinfo", userinfo, methods=["GET", "POST"]),
    Route("/revoke", revoke, methods=["POST"]),
]
routes = [
    *machine_routes,
    Route("/.well-known/jwks.json", jwks, methods=["GET"]),
    Route("/.well-known/openid-configuration", discovery, methods=["GET"]),
    Route("/.well-known/oauth-authorization-server", discovery, methods=["GET"]),
]
# the paths only clients call: their errors are OAuth error JSON whatever the Accept header says
JSON_PATHS = frozenset(route.path for route in routes)
