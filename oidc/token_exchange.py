"""OAuth 2.0 Token Exchange (RFC 8693) for portals: a login token becomes the person's access token.

A portal's backend (a client with the token-exchange grant and ``login_token_acr``) posts to
``/token``::

    grant_type=urn:ietf:params:oauth:grant-type:token-exchange
    subject_token=<a login token it minted, idp.login_tokens>
    subject_token_type=urn:ietf:params:oauth:token-type:jwt
    scope=openid email          (optional; limited to the client's scopes)

and receives an access token for the person (``issued_token_type`` access_token, no refresh
token), at the level the tenant trusts the portal for. The login token must be the client's own
(``iss`` = the authenticated client), and is single use as at ``/login/token``. Errors follow
RFC 8693 §2.2.2 (RFC 6749 §5.2 JSON): ``invalid_request`` for missing or unsupported parameters,
``invalid_grant`` for a subject token that is not acceptable.

The subject token is verified, its jti consumed and its person found (or created) before authlib
runs (:meth:`oidc.endpoints.Endpoints.token`), since that needs the database; this grant then
authenticates the client and issues the token from the prepared context.
"""

from __future__ import annotations

from typing import Any, ClassVar

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError, UnauthorizedClientError

from idp.clients import TOKEN_EXCHANGE
from idp.login_tokens import SUBJECT_TOKEN_TYPE
from oidc.context import current

ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # RFC 8693 §3


class TokenExchangeGrant(grants.BaseGrant, grants.TokenEndpointMixin):  # type: ignore[misc]
    GRANT_TYPE = TOKEN_EXCHANGE
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ]

    def validate_token_request(self) -> None:
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError(f"the client may not use grant_type={self.GRANT_TYPE}")
        form = self.request.form
        if not form.get("subject_token"):
            raise InvalidRequestError("subject_token is required (RFC 8693 section 2.1)")
        if form.get("subject_token_type") != SUBJECT_TOKEN_TYPE:
            raise InvalidRequestError(f"subject_token_type must be {SUBJECT_TOKEN_TYPE}")
        if form.get("actor_token") or form.get("actor_token_type"):
            raise InvalidRequestError("actor tokens (delegation) are not supported")
        wanted = form.get("requested_token_type")
        if wanted and wanted != ACCESS_TOKEN_TYPE:
            raise InvalidRequestError(f"requested_token_type must be {ACCESS_TOKEN_TYPE}")
        if form.get("resource") or form.get("audience"):
            raise InvalidRequestError("resource and audience are not supported; tokens are for this issuer")
        ctx = current.get()
        if ctx.exchange_error is not None or ctx.subject is None or ctx.exchanged is None:
            # the message may quote the token's own values: only what an error_description can carry
            description = "".join(
                c if 0x20 <= ord(c) <= 0x7E and c not in '"\\' else "?" for c in ctx.exchange_error or ""
            )
            raise InvalidGrantError(description=description[:300] or "the subject_token is not acceptable")
        if ctx.exchanged.get("client_id") != client.get_client_id():
            raise InvalidGrantError(description="the subject_token was issued by another client")
        self.request.client = client
        self.request.user = ctx.subject
        self.validate_requested_scope()

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        token = self.generate_token(
            user=self.request.user, scope=self.request.payload.scope, include_refresh_token=False
        )
        token["issued_token_type"] = ACCESS_TOKEN_TYPE
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER
