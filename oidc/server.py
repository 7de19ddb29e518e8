"""The authorization server: authlib's core with our grants, endpoints and storage bridge.

Framework-neutral: requests come in as authlib ``OAuth2Request`` objects and responses leave as
:class:`OAuthResponse`; the Starlette adapter (``oidc.starlette``) converts both ways.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import unquote

from authlib.oauth2.base import invalid_error_characters
from authlib.oauth2.rfc6749 import AuthorizationServer as _AuthorizationServer
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.errors import (
    InvalidRequestError,
    OAuth2Error,
    UnsupportedGrantTypeError,
    UnsupportedResponseTypeError,
)
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _IntrospectionEndpoint
from authlib.oauth2.rfc9207 import IssuerParameter
from authlib.oidc.rpinitiated import EndSessionEndpoint as _EndSessionEndpoint

from idp import secrets
from idp.ids import uuid7
from idp.secrets import new_token
from idp.settings import Settings
from oidc import signals
from oidc.context import current
from oidc.grants import (
    PKCE,
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    OpenIDCode,
    PrivateKeyJWT,
    RefreshTokenGrant,
    usable_jti,
)
from oidc.keys import KeyRing
from oidc.models import OAuthClient, Subject, TokenRecord
from oidc.token_exchange import TokenExchangeGrant

ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]


@dataclass(slots=True)
class OAuthResponse:
    status: int
    body: Any
    headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def location(self) -> str | None:
        for name, value in self.headers:
            if name.lower() == "location":
                return value
        return None

    @location.setter
    def location(self, value: str) -> None:
        self.headers = [(n, v) for n, v in self.headers if n.lower() != "location"] + [("Location", value)]

    @property
    def json(self) -> dict[str, Any]:
        return self.body if isinstance(self.body, dict) else json.loads(self.body or "{}")


class _Issuer(IssuerParameter):  # type: ignore[misc]
    def __init__(self, issuer: str) -> None:
        self.issuer = issuer

    def get_issuer(self) -> str:
        return self.issuer


def printable(text: str, limit: int = 100) -> str:
    """``text`` fit for an ``error_description``: printable ASCII without ``"`` and ``\\``
    (RFC 6749 §5.2); authlib raises ValueError on anything else."""
    text = text if len(text) <= limit else text[:limit] + "..."
    return "".join("?" if invalid_error_characters(c) else c for c in text)


class _TokenParameter:
    """RFC 7009 §2.1, RFC 7662 §2.1: ``token`` is required; authlib's error would not say which."""

    def check_params(self, request: OAuth2Request, client: OAuthClient) -> None:
        if not request.form.get("token"):
            raise InvalidRequestError("the token parameter is required")
        repeated = sorted(name for name, values in request.payload.datalist.items() if len(values) > 1)
        if repeated:  # RFC 6749 §3.2 holds for these endpoints too
            raise InvalidRequestError(f"parameters must not be repeated: {printable(', '.join(repeated))}")
        super().check_params(request, client)  # type: ignore[misc]


class RevocationEndpoint(_TokenParameter, _RevocationEndpoint):  # type: ignore[misc]
    """RFC 7009; public clients may revoke their own tokens."""

    CLIENT_AUTH_METHODS: ClassVar[list[str]] = [*ENDPOINT_AUTH_METHODS, "none"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenRecord | None:
        record = current.get().token
        if record is None or not secrets.token_matches(token_string, record.digest):
            return None
        return record

    def revoke_token(self, token: TokenRecord, request: OAuth2Request) -> None:
        current.get().revoked = token


class IntrospectionEndpoint(_TokenParameter, _IntrospectionEndpoint):  # type: ignore[misc]
    """RFC 7662; a client may introspect only tokens of its own tenant."""

    CLIENT_AUTH_METHODS = ENDPOINT_AUTH_METHODS

    def __init__(self, server: AuthorizationServer) -> None:
        super().__init__(server)

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenRecord | None:
        record = current.get().token
        if record is None or not secrets.token_matches(token_string, record.digest):
            return None
        return record

    def check_permission(self, token: TokenRecord, client: OAuthClient, request: OAuth2Request) -> bool:
        return bool(token.tenant_id == client.record.tenant_id)

    def introspect_token(self, token: TokenRecord) -> dict[str, Any]:
        ctx = current.get()
        body: dict[str, Any] = {
            "active": True,
            "client_id": token.client_id,
            "token_type": "Bearer" if token.kind == "access" else "refresh_token",
            "scope": token.scope,
            "exp": int(token.expires_at),
            "iat": int(token.issued_at),
            "iss": self.server.provider.settings.issuer,
        }
        if token.eid_id:
            body["sub"] = token.eid_id
            if ctx.subject is not None:
                body["username"] = ctx.subject.eid.username
        if token.acr:
            body["acr"] = token.acr
        if token.auth_time:
            body["auth_time"] = int(token.auth_time)
        return body


class EndSessionEndpoint(_EndSessionEndpoint):  # type: ignore[misc]
    """OpenID Connect RP-Initiated Logout 1.0; the session is ended by the caller afterwards."""

    def get_server_jwks(self) -> dict[str, Any]:
        ring: KeyRing = self.server.provider.keyring
        return {"keys": list(ring.public.values())}

    def validate_request(self, request: OAuth2Request) -> Any:
        # authlib reads the first of repeated values: a second id_token_hint or redirect URI would
        # be ignored while the first ends the session (RFC 6749 §3.1 holds here as at /authorize)
        repeated = sorted(name for name, values in request.payload.datalist.items() if len(values) > 1)
        if repeated:
            raise InvalidRequestError(f"parameters must not be repeated: {printable(', '.join(repeated))}")
        return super().validate_request(request)

    def end_session(self, end_session_request: Any) -> None:
        current.get().end_session = True

    def resolve_client_from_id_token_claims(self, id_token_claims: dict[str, Any]) -> OAuthClient | None:
        # our ID tokens carry ``aud`` as a one-element list; authlib resolves only a plain string
        aud = id_token_claims.get("aud")
        if isinstance(aud, list) and len(aud) == 1:
            aud = aud[0]
        return self.server.query_client(aud) if isinstance(aud, str) else None


class AuthorizationServer(_AuthorizationServer):  # type: ignore[misc]
    """authlib's server over the preloaded grant context (see :mod:`oidc.context`)."""

    def __init__(self, provider: Provider) -> None:
        super().__init__(scopes_supported=None)
        self.provider = provider
        settings = provider.settings

        def expires_in(client: OAuthClient, grant_type: str) -> int:
            return settings.access_token_ttl

        self.register_token_generator(
            "default",
            BearerTokenGenerator(lambda *a, **k: new_token(), lambda *a, **k: new_token(), expires_in),
        )
        self.register_grant(AuthorizationCodeGrant, [PKCE(required=True), OpenIDCode(provider)])
        self.register_grant(RefreshTokenGrant)
        self.register_grant(ClientCredentialsGrant)
        self.register_grant(TokenExchangeGrant)
        self.register_client_auth_method(PrivateKeyJWT.CLIENT_AUTH_METHOD, PrivateKeyJWT(provider))
        self.register_endpoint(RevocationEndpoint(self))
        self.register_endpoint(IntrospectionEndpoint(self))
        self.register_endpoint(EndSessionEndpoint(self))
        self.register_extension(_Issuer(settings.issuer))

    def get_authorization_grant(self, request: OAuth2Request) -> Any:
        if any(grant.check_authorization_endpoint(request) for grant, _ in self._authorization_grants):
            return super().get_authorization_grant(request)
        # authlib's own error swaps its arguments (the value lands in error_description), and raises
        # ValueError (a 500) for a value an error_description cannot carry (RFC 6749 §4.1.2.1)
        client = self.query_client(request.payload.client_id or "")
        redirect_uri = None
        if client is not None:  # redirect only to a URI the client registered (§4.1.2.1)
            asked = request.payload.redirect_uri
            if asked:
                redirect_uri = asked if client.check_redirect_uri(asked) else None
            else:
                redirect_uri = client.get_default_redirect_uri()
        response_type = request.payload.response_type or ""
        error = UnsupportedResponseTypeError(response_type, redirect_uri=redirect_uri)
        error.description = f"response_type '{printable(response_type)}' is not supported; use code"
        raise error

    def create_token_response(self, request: OAuth2Request | None = None) -> OAuthResponse:
        """RFC 6749 §3.2, §5.2: checks authlib leaves out, answered in the token endpoint's format."""
        assert request is not None
        grant_types = [grant.GRANT_TYPE for grant, _extensions in self._token_grants]
        repeated = sorted(name for name, values in request.payload.datalist.items() if len(values) > 1)
        grant_type = request.payload.grant_type
        error: OAuth2Error | None = None
        if repeated:
            error = InvalidRequestError(f"parameters must not be repeated: {printable(', '.join(repeated))}")
        elif not grant_type:
            error = InvalidRequestError(f"grant_type is required; one of {', '.join(grant_types)}")
        elif grant_type not in grant_types:
            error = UnsupportedGrantTypeError(grant_type)
            error.description = (
                f"grant_type {printable(grant_type)} is not supported; one of {', '.join(grant_types)}"
            )
        if error is not None:
            return self.handle_error_response(request, error)  # type: ignore[no-any-return]
        return super().create_token_response(request)  # type: ignore[no-any-return]

    def query_client(self, client_id: str) -> OAuthClient | None:
        client = current.get().client
        if client is None or client.client_id != client_id or not client.record.active:
            return None
        return client

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        ctx = current.get()
        client: OAuthClient = request.client
        subject: Subject | None = request.user
        now = time.time()
        if ctx.grant_id is None:
            ctx.grant_id = uuid7()
        origin = ctx.code or ctx.token
        exchanged = ctx.exchanged or {}
        base = {
            "grant_id": ctx.grant_id,
            "client_id": client.client_id,
            "tenant_id": client.record.tenant_id,
            "eid_id": subject.eid.id if subject else None,
            "sid": subject.sid if subject else None,
            "scope": token.get("scope") or "",
            "auth_time": origin.auth_time if origin else exchanged.get("auth_time"),
            "acr": origin.acr if origin else exchanged.get("acr"),
            "amr": list(origin.amr) if origin else exchanged.get("amr"),
            "issued_at": now,
            "rotated_at": None,
            "revoked_at": None,
        }
        ctx.issued.append(
            {
                **base,
                "digest": secrets.token_key(token["access_token"]),
                "kind": "access",
                "expires_at": now + int(token.get("expires_in") or self.provider.settings.access_token_ttl),
            }
        )
        if token.get("refresh_token"):
            ctx.issued.append(
                {
                    **base,
                    "digest": secrets.token_key(token["refresh_token"]),
                    "kind": "refresh",
                    "expires_at": now + self.provider.settings.refresh_token_ttl,
                }
            )

    def create_oauth2_request(self, request: OAuth2Request) -> OAuth2Request:
        return request

    def create_json_request(self, request: Any) -> Any:
        return request

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> OAuthResponse:
        return OAuthResponse(status, body, list(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        signals.send(name, *args, **kwargs)


def client_id_of(request: OAuth2Request) -> str | None:
    """The client a token-endpoint request claims to be, before it is authenticated."""
    auth = request.headers.get("Authorization") or request.headers.get("authorization")
    if auth and auth[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(auth[6:].strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        return unquote(decoded.split(":", 1)[0])
    form = request.form
    assertion = form.get("client_assertion")
    if assertion:
        sub = unverified_claims(assertion).get("sub")
        return sub if isinstance(sub, str) else None
    cid = form.get("client_id")
    return cid if isinstance(cid, str) else None


def unverified_claims(token: str) -> dict[str, Any]:
    """The claims of a compact JWT, NOT verified: only to find which key or client to load.

    Empty for anything that is not a readable JWT; the caller verifies the token afterwards.
    """
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, RecursionError):
        return {}
    return claims if isinstance(claims, dict) else {}


def assertion_jti(request: OAuth2Request) -> str | None:
    assertion = request.form.get("client_assertion")
    if not assertion:
        return None
    jti = unverified_claims(assertion).get("jti")
    return jti if usable_jti(jti) else None


Loader = Callable[[str], Awaitable[Any]]


class Provider:
    """Holds what the server needs at run time: settings, keys and the authorization server."""

    def __init__(self, settings: Settings, keyring: KeyRing) -> None:
        self.settings = settings
        self.keyring = keyring
        self.server = AuthorizationServer(self)
