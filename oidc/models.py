"""authlib's model mixins over our records: clients, authorization codes, tokens, the subject."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, ClientMixin, TokenMixin
from authlib.oauth2.rfc6749.util import list_to_scope, scope_to_list

from idp import secrets
from idp.clients import Client
from idp.eids import EID


class OAuthClient(ClientMixin):  # type: ignore[misc]
    """A registered client as authlib sees it (RFC 6749 §2, RFC 7591 §2)."""

    def __init__(self, client: Client) -> None:
        self.record = client
        self.client_id = client.client_id
        self.id_token_signed_response_alg = client.id_token_signed_response_alg

    def get_client_id(self) -> str:
        return self.client_id

    @property
    def client_metadata(self) -> dict[str, Any]:
        return {"post_logout_redirect_uris": list(self.record.post_logout_redirect_uris)}

    def get_default_redirect_uri(self) -> str | None:
        # exact matching only: with several registered URIs the request must name one
        uris = self.record.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return ""
        allowed = set(self.record.scopes)
        return str(list_to_scope([s for s in scope_to_list(scope) if s in allowed]))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.record.redirect_uris  # exact string comparison, RFC 9700 §4.1.3

    def check_client_secret(self, client_secret: str) -> bool:
        digest = self.record.secret_digest
        return digest is not None and secrets.matches(client_secret, digest)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return bool(method == self.record.token_endpoint_auth_method)

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.record.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return self.record.active and grant_type in self.record.grant_types


@dataclass(slots=True, frozen=True)
class Subject:
    """The authenticated person behind a grant, with the SSO session it came from."""

    eid: EID
    sid: str | None = None
    groups: tuple[str, ...] = ()  # loaded only when the grant's scope asks for them

    def get_user_id(self) -> str:
        return self.eid.id


@dataclass(slots=True, frozen=True)
class CodeRecord(AuthorizationCodeMixin):  # type: ignore[misc]
    digest: str
    grant_id: str
    client_id: str
    eid_id: str
    sid: str | None
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: float
    acr: str
    amr: tuple[str, ...]
    expires_at: float
    used_at: float | None

    @classmethod
    def from_row(cls, row: Any) -> CodeRecord:
        return cls(
            row["digest"],
            row["grant_id"],
            row["client_id"],
            row["eid_id"],
            row["sid"],
            row["redirect_uri"],
            row["scope"],
            row["nonce"],
            row["code_challenge"],
            row["code_challenge_method"],
            row["auth_time"],
            row["acr"],
            tuple(row["amr"]),
            row["expires_at"],
            row["used_at"],
        )

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return int(self.auth_time)

    def get_acr(self) -> str:
        return self.acr

    def get_amr(self) -> list[str]:
        return list(self.amr)


@dataclass(slots=True, frozen=True)
class TokenRecord(TokenMixin):  # type: ignore[misc]
    digest: str
    kind: str
    grant_id: str
    client_id: str
    tenant_id: str
    eid_id: str | None
    sid: str | None
    scope: str
    auth_time: float | None
    acr: str | None
    amr: tuple[str, ...]
    issued_at: float
    expires_at: float
    rotated_at: float | None
    revoked_at: float | None

    @classmethod
    def from_row(cls, row: Any) -> TokenRecord:
        return cls(
            row["digest"],
            row["kind"],
            row["grant_id"],
            row["client_id"],
            row["tenant_id"],
            row["eid_id"],
            row["sid"],
            row["scope"],
            row["auth_time"],
            row["acr"],
            tuple(row["amr"] or ()),
            row["issued_at"],
            row["expires_at"],
            row["rotated_at"],
            row["revoked_at"],
        )

    def check_client(self, client: OAuthClient) -> bool:
        return hmac.compare_digest(self.client_id, client.get_client_id())

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return int(self.expires_at - self.issued_at)

    def is_expired(self) -> bool:
        return self.expires_at <= time.time()

    def is_revoked(self) -> bool:
        return self.revoked_at is not None or self.rotated_at is not None
