"""Relying-party clients of a tenant: registration, lookup and the in-memory cache.

Clients are read on every token request, so the registry keeps them in memory; an entry lives
``ttl`` seconds and is dropped at once when this instance changes it or when another instance
announces a change (:mod:`idp.cache`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, select, update

from idp import audit, secrets, value_rules
from idp.errors import ConflictError, NotFoundError
from idp.storage import tables
from idp.storage.database import Database, Tx
from levels_of_assurance.ladder import Level, parse_acr


class ClientType(StrEnum):
    CONFIDENTIAL = "confidential"
    PUBLIC = "public"


class AuthMethod(StrEnum):
    """Token endpoint authentication methods (OIDC Core §9, RFC 7591 §2)."""

    SECRET_BASIC = "client_secret_basic"
    SECRET_POST = "client_secret_post"
    PRIVATE_KEY_JWT = "private_key_jwt"
    NONE = "none"


TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # RFC 8693 §2.1
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials", TOKEN_EXCHANGE)
SCOPES = ("openid", "profile", "email", "phone", "offline_access", "groups")
# the tenant administration API (idp.admin): ``admin`` administers the client's own tenant,
# ``admin:platform`` every tenant; never a default, only granted explicitly
ADMIN_SCOPE = "admin"
PLATFORM_SCOPE = "admin:platform"
SECRET_PURPOSE = b"client-secret"


@dataclass(slots=True, frozen=True)
class Client:
    client_id: str
    tenant_id: str
    name: str
    client_type: str
    token_endpoint_auth_method: str
    secret_digest: str | None = None
    redirect_uris: tuple[str, ...] = ()
    post_logout_redirect_uris: tuple[str, ...] = ()
    grant_types: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    jwks: Mapping[str, Any] | None = None
    id_token_signed_response_alg: str = "RS256"
    default_acr: str | None = None
    minimum_acr: str | None = None
    active: bool = True
    login_token_acr: str | None = None  # None: may not mint SSO login tokens
    login_token_secret: bytes | None = None  # sealed; only for HS256 login tokens

    @property
    def is_public(self) -> bool:
        return self.client_type == ClientType.PUBLIC


@dataclass(slots=True, frozen=True)
class NewClient:
    client: Client
    client_secret: str | None  # shown once, stored only as a digest


def _from_row(row: Any) -> Client:
    return Client(
        client_id=row["client_id"],
        tenant_id=row["tenant_id"],
        name=row["name"],
        client_type=row["client_type"],
        token_endpoint_auth_method=row["token_endpoint_auth_method"],
        secret_digest=row["secret_digest"],
        redirect_uris=tuple(row["redirect_uris"] or ()),
        post_logout_redirect_uris=tuple(row["post_logout_redirect_uris"] or ()),
        grant_types=tuple(row["grant_types"] or ()),
        scopes=tuple(row["scopes"] or ()),
        jwks=row["jwks"],
        id_token_signed_response_alg=row["id_token_signed_response_alg"],
        default_acr=row["default_acr"],
        minimum_acr=row["minimum_acr"],
        active=bool(row["active"]),
        login_token_acr=row["login_token_acr"],
        login_token_secret=row["login_token_secret"],
    )


def validate_redirect_uri(uri: str, *, field: str = "redirect_uri") -> str:
    """OAuth 2.0 Security BCP §4.1: absolute, no fragment; http only for loopback; no wildcards.

    ``field`` says which list the URI is in (``redirect_uri``, ``post_logout_redirect_uri``).
    """
    subject = field.replace("_", " ").replace("uri", "URI")
    # urlsplit drops tabs and line breaks: what is checked must be what is stored
    value_rules.url_text(uri, field=field, subject=subject)
    parts = urlsplit(uri)

    def refuse(reason: str) -> value_rules.ValueRuleError:
        return value_rules.ValueRuleError(f"{reason}: {uri!r}", field=field, subject=subject)

    if not parts.scheme or parts.fragment or "*" in uri:
        raise refuse("must be absolute, without fragment or wildcard")
    if parts.scheme == "http" and parts.hostname not in {"127.0.0.1", "localhost", "::1"}:
        raise refuse("over plain http is allowed only for loopback")
    if parts.scheme in {"javascript", "data", "file", "vbscript"}:
        raise refuse("has a scheme that is not allowed")
    if parts.scheme in {"http", "https"} and not parts.hostname:
        raise refuse("needs a host")
    return uri


def create(
    tx: Tx,
    *,
    tenant_id: str,
    name: str,
    client_type: ClientType,
    redirect_uris: Sequence[str] = (),
    post_logout_redirect_uris: Sequence[str] = (),
    grant_types: Sequence[str] = ("authorization_code", "refresh_token"),
    scopes: Sequence[str] = SCOPES,
    auth_method: AuthMethod | None = None,
    jwks: Mapping[str, Any] | None = None,
    id_token_alg: str = "RS256",
    default_acr: str | None = None,
    minimum_acr: str | None = None,
    client_id: str | None = None,
    login_token_acr: str | None = None,
    seal_key: str | None = None,
) -> NewClient:
    """Register a client. Confidential clients get a secret unless they authenticate by key.

    ``login_token_acr`` lets it mint SSO login tokens (:mod:`idp.login_tokens`) at that level; a
    secret-authenticated portal's secret is then also kept sealed with ``seal_key`` (the instance
    secret) so that HS256 login tokens can be checked.
    """
    name = value_rules.single_line(name, field="name", subject="client name", max_length=200)
    check_login_token_acr(login_token_acr)
    for g in grant_types:
        if g not in GRANT_TYPES:
            raise ValueError(f"unsupported grant type {g!r}; expected one of {', '.join(GRANT_TYPES)}")
    for uri in redirect_uris:
        validate_redirect_uri(uri)
    for uri in post_logout_redirect_uris:
        validate_redirect_uri(uri, field="post_logout_redirect_uri")
    if "authorization_code" in grant_types and not redirect_uris:
        raise ValueError("the authorization_code grant needs at least one redirect URI")
    if id_token_alg not in ("RS256", "ES256"):
        raise ValueError(f"id_token_signed_response_alg must be RS256 or ES256, got {id_token_alg!r}")
    for acr in (default_acr, minimum_acr):
        if acr is not None:
            parse_acr(acr)
    if client_type == ClientType.PUBLIC:
        if auth_method not in (None, AuthMethod.NONE):
            raise ValueError("a public client cannot authenticate; its auth method is 'none'")
        if "client_credentials" in grant_types:
            raise ValueError("a public client cannot use client_credentials")
        method = AuthMethod.NONE
    else:
        method = auth_method or (AuthMethod.PRIVATE_KEY_JWT if jwks else AuthMethod.SECRET_BASIC)
        if method == AuthMethod.NONE:
            raise ValueError("a confidential client must authenticate")
        if method == AuthMethod.PRIVATE_KEY_JWT and not jwks:
            raise ValueError("private_key_jwt needs the client's public keys (jwks)")
    secret = secrets.new_secret() if method in (AuthMethod.SECRET_BASIC, AuthMethod.SECRET_POST) else None
    cid = client_id or secrets.new_secret(16)
    if len(cid) > 64:
        raise ValueError("a client_id is at most 64 characters")
    if tx.conn.execute(select(tables.clients.c.client_id).where(tables.clients.c.client_id == cid)).first():
        raise ConflictError(f"client {cid!r} already exists")
    client = Client(
        client_id=cid,
        tenant_id=tenant_id,
        name=name,
        client_type=client_type,
        token_endpoint_auth_method=method,
        secret_digest=secrets.digest(secret) if secret else None,
        redirect_uris=tuple(redirect_uris),
        post_logout_redirect_uris=tuple(post_logout_redirect_uris),
        grant_types=tuple(grant_types),
        scopes=tuple(scopes),
        jwks=jwks,
        id_token_signed_response_alg=id_token_alg,
        default_acr=default_acr,
        minimum_acr=minimum_acr,
        login_token_acr=login_token_acr,
        login_token_secret=_sealed(seal_key, cid, secret) if login_token_acr else None,
    )
    tx.conn.execute(
        tables.clients.insert().values(
            client_id=cid,
            tenant_id=tenant_id,
            name=client.name,
            client_type=str(client_type),
            secret_digest=client.secret_digest,
            token_endpoint_auth_method=str(method),
            redirect_uris=list(redirect_uris),
            post_logout_redirect_uris=list(post_logout_redirect_uris),
            grant_types=list(grant_types),
            scopes=list(scopes),
            jwks=dict(jwks) if jwks else None,
            id_token_signed_response_alg=id_token_alg,
            default_acr=default_acr,
            minimum_acr=minimum_acr,
            active=True,
            created_at=tx.now,
            updated_at=tx.now,
            login_token_acr=login_token_acr,
            login_token_secret=client.login_token_secret,
        )
    )
    audit.record(
        tx,
        audit.AuditEvent(
            "client.created",
            tenant_id=tenant_id,
            details={"client_id": cid, "type": str(client_type), "auth_method": str(method)},
        ),
    )
    return NewClient(client, secret)


def check_login_token_acr(acr: str | None) -> None:
    """A portal is trusted for basic or advanced, never more: a login token proves only that the
    portal vouches for the person, not a qualified authentication."""
    if acr is not None and parse_acr(acr) > Level.ADVANCED:
        raise ValueError("login tokens can give at most the advanced level")


def _sealed(seal_key: str | None, client_id: str, secret: str | None) -> bytes | None:
    if secret is None:
        return None
    if not seal_key:
        raise ValueError("keeping the secret for HS256 login tokens needs the instance secret")
    return secrets.seal(seal_key, secret.encode(), purpose=SECRET_PURPOSE, associated_data=client_id.encode())


def login_token_key(client: Client, seal_key: str) -> bytes | None:
    """The HS256 key of a portal's login tokens: its client secret, unsealed; None if not kept."""
    if client.login_token_secret is None:
        return None
    return secrets.unseal(
        seal_key,
        client.login_token_secret,
        purpose=SECRET_PURPOSE,
        associated_data=client.client_id.encode(),
    )


def get(conn: Connection, client_id: str) -> Client | None:
    row = (
        conn.execute(select(tables.clients).where(tables.clients.c.client_id == client_id)).mappings().first()
    )
    return _from_row(row) if row else None


def list_for_tenant(conn: Connection, tenant_id: str) -> list[Client]:
    c = tables.clients.c
    rows = conn.execute(select(tables.clients).where(c.tenant_id == tenant_id).order_by(c.name)).mappings()
    return [_from_row(r) for r in rows]


def set_active(tx: Tx, *, client_id: str, active: bool) -> None:
    c = tables.clients.c
    result = tx.conn.execute(
        update(tables.clients).where(c.client_id == client_id).values(active=active, updated_at=tx.now)
    )
    if result.rowcount != 1:
        raise NotFoundError(f"no client {client_id!r}")
    audit.record(tx, audit.AuditEvent("client.updated", details={"client_id": client_id, "active": active}))


@dataclass(slots=True)
class ClientRegistry:
    """Clients by id, cached in memory for ``ttl`` seconds (misses are cached too, briefly)."""

    db: Database
    ttl: float = 30.0
    _cache: dict[str, tuple[float, Client | None]] = field(default_factory=dict)

    async def get(self, client_id: str) -> Client | None:
        now = time.monotonic()
        hit = self._cache.get(client_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        if len(client_id) > 64 or "\x00" in client_id:  # no client has such an id; PostgreSQL text
            return None  # cannot even hold NUL, so asking would be an error
        client = await self.db.read(lambda conn: get(conn, client_id))
        self._cache[client_id] = (now + (self.ttl if client else min(self.ttl, 2.0)), client)
        if len(self._cache) > 10_000:
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
        return client

    def invalidate(self, client_ids: Iterable[str] | None = None) -> None:
        if client_ids is None:
            self._cache.clear()
        else:
            for cid in client_ids:
                self._cache.pop(cid, None)
