"""authlib grants and extensions wired to the preloaded :class:`~oidc.context.GrantContext`."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import grants as oidc_grants

from idp import secrets
from idp.ids import uuid7
from oidc.claims import claims_for
from oidc.context import current
from oidc.models import CodeRecord, OAuthClient, Subject, TokenRecord

if TYPE_CHECKING:
    from oidc.server import Provider

SECRET_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
MAX_NONCE = 512
MAX_JTI = 255  # the used_assertions.jti column


def usable_jti(jti: object) -> bool:
    """A ``jti`` we can remember (RFC 7523 §3 item 7): a string the storage can hold."""
    return isinstance(jti, str) and 0 < len(jti) <= MAX_JTI and "\x00" not in jti


def _active_subject() -> Subject:
    subject = current.get().subject
    if subject is None or not subject.eid.active:
        raise InvalidGrantError(description="the eID behind this grant is not active")
    return subject


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    """RFC 6749 §4.1 with PKCE; codes are single use and short-lived."""

    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = [*SECRET_METHODS, "none"]

    @staticmethod
    def validate_authorization_redirect_uri(request: Any, client: OAuthClient) -> str:
        # authlib's message repeats the URI, and an error_description that would carry a character
        # outside printable ASCII (RFC 6749 §4.1.2.1) makes authlib raise ValueError: a 500
        uri = request.payload.redirect_uri
        if uri and not client.check_redirect_uri(uri):
            raise InvalidRequestError(
                "redirect_uri does not exactly match a redirect URI registered for this client",
                state=request.payload.state,
            )
        return str(grants.AuthorizationCodeGrant.validate_authorization_redirect_uri(request, client))

    def generate_authorization_code(self) -> str:
        return secrets.new_secret()

    def save_authorization_code(self, code: str, request: Any) -> None:
        ctx = current.get()
        subject: Subject = request.user
        data = request.payload.data
        provider: Provider = self.server.provider
        assert ctx.client is not None and ctx.acr is not None and ctx.session is not None
        ctx.new_code = {
            "digest": secrets.digest(code),
            "grant_id": uuid7(),
            "client_id": ctx.client.client_id,
            "eid_id": subject.eid.id,
            "sid": subject.sid,
            "redirect_uri": request.payload.redirect_uri or ctx.client.get_default_redirect_uri(),
            "scope": request.payload.scope or "",
            "nonce": data.get("nonce"),
            "code_challenge": data.get("code_challenge"),
            "code_challenge_method": data.get("code_challenge_method")
            if data.get("code_challenge")
            else None,
            "auth_time": ctx.session.auth_time,
            "acr": ctx.acr,
            "amr": list(ctx.session.amr),
            "created_at": time.time(),
            "expires_at": time.time() + provider.settings.authorization_code_ttl,
        }

    def query_authorization_code(self, code: str, client: OAuthClient) -> CodeRecord | None:
        record = current.get().code
        if record is None or not secrets.matches(code, record.digest):
            return None
        if record.client_id != client.get_client_id() or record.expires_at <= time.time():
            return None
        current.get().grant_id = record.grant_id  # the tokens join the code's grant
        return record

    def delete_authorization_code(self, authorization_code: CodeRecord) -> None:
        # the code is marked used by a conditional update in the same transaction as its tokens
        # (oidc.store.redeem_code), which also decides a race between two redemptions
        assert current.get().grant_id == authorization_code.grant_id

    def authenticate_user(self, authorization_code: CodeRecord) -> Subject:
        return _active_subject()


class RefreshTokenGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    """RFC 6749 §6 with rotation: every use returns a new refresh token and retires the old one."""

    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = [*SECRET_METHODS, "none"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> TokenRecord | None:
        record = current.get().token
        if record is None or record.kind != "refresh":
            return None
        if not secrets.token_matches(refresh_token, record.digest):
            return None
        if record.is_revoked() or record.is_expired():
            return None
        current.get().grant_id = record.grant_id  # successors stay in the same family
        return record

    def authenticate_user(self, refresh_token: TokenRecord) -> Subject:
        return _active_subject()

    def revoke_old_credential(self, refresh_token: TokenRecord) -> None:
        # retired by a conditional update in the transaction that stores its successor
        # (oidc.store.rotate_refresh); a second use then revokes the family
        assert current.get().grant_id == refresh_token.grant_id


class ClientCredentialsGrant(grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = SECRET_METHODS


class PKCE(CodeChallenge):  # type: ignore[misc]
    """RFC 7636 with S256 only; public clients must use it (RFC 9700 §2.1.1)."""

    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        request = grant.request
        client = request.client
        challenge = request.payload.data.get("code_challenge")
        if client is not None and client.record.is_public and not challenge:
            raise InvalidRequestError(
                "PKCE is required for public clients: send code_challenge with code_challenge_method=S256",
                redirect_uri=redirect_uri,
            )
        if challenge and request.payload.data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256", redirect_uri=redirect_uri)
        super().validate_code_challenge(grant, redirect_uri)


class OpenIDCode(oidc_grants.OpenIDCode):  # type: ignore[misc]
    """OIDC Core §3.1: the ID token, signed with the active key of the client's algorithm."""

    def __init__(self, provider: Provider) -> None:
        super().__init__(require_nonce=False)
        self.provider = provider

    def validate_openid_authorization_request(self, grant: Any, redirect_uri: str) -> None:
        nonce = grant.request.payload.data.get("nonce")
        if nonce is not None and (len(nonce) > MAX_NONCE or not nonce.isprintable()):
            # it is stored with the code and returned in the ID token
            raise InvalidRequestError(
                f"nonce must be at most {MAX_NONCE} printable characters", redirect_uri=redirect_uri
            )
        super().validate_openid_authorization_request(grant, redirect_uri)

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        # a nonce binds the ID token to the RP's browser session; replay of a code is stopped by
        # single use, so a nonce seen before is the RP's to judge (OIDC Core §15.5.2)
        return False

    def resolve_client_private_key(self, client: OAuthClient) -> Any:
        return self.provider.keyring.key_for(client.id_token_signed_response_alg)

    def get_encode_header(self, client: OAuthClient) -> dict[str, str]:
        key = self.provider.keyring.key_for(client.id_token_signed_response_alg)
        return {"alg": client.id_token_signed_response_alg, "kid": str(key.kid), "typ": "JWT"}

    def get_client_claims(self, client: OAuthClient) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self.provider.settings.issuer,
            "aud": [client.get_client_id()],
            "iat": now,
            "exp": now + self.provider.settings.id_token_ttl,
        }

    def generate_user_info(self, user: Subject, scope: str) -> dict[str, Any]:
        info = claims_for(user.eid, scope, groups=user.groups)
        if user.sid:
            info["sid"] = user.sid
        return info


class PrivateKeyJWT(JWTBearerClientAssertion):  # type: ignore[misc]
    """``private_key_jwt`` client authentication (OIDC Core §9, RFC 7523 §2.2)."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, provider: Provider) -> None:
        super().__init__(validate_jti=True, leeway=30)
        self.provider = provider

    def get_audiences(self) -> list[str]:
        issuer = self.provider.settings.issuer
        return [issuer, f"{issuer}/token", f"{issuer}/introspect", f"{issuer}/revoke", f"{issuer}/par"]

    def validate_jti(self, claims: Any, jti: str) -> bool:
        ctx = current.get()
        if ctx.assertion_seen or not usable_jti(jti):
            return False
        exp = float(claims.get("exp") or time.time() + 300)
        ctx.assertion_jti = (str(claims["sub"]), str(jti), exp)
        return True

    def resolve_client_public_key(self, client: OAuthClient) -> Any:
        from joserfc.jwk import KeySet

        jwks = client.record.jwks
        if not jwks:
            raise InvalidGrantError(description="the client has no registered keys")
        return KeySet.import_key_set(dict(jwks))  # type: ignore[arg-type]
