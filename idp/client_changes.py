"""Changes to registered clients after creation: settings, secret rotation, deletion.

Used by the tenant administration API; every change writes its audit event in the caller's
transaction. The caller drops the client from the in-memory registry afterwards (and announces it
to other instances), so a change takes effect at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, update

from idp import audit, secrets, value_rules
from idp.clients import (
    GRANT_TYPES,
    TOKEN_EXCHANGE,
    AuthMethod,
    Client,
    NewClient,
    _sealed,
    check_login_token_acr,
    get,
    validate_redirect_uri,
)
from idp.errors import NotFoundError
from idp.storage import tables
from idp.storage.database import Tx
from levels_of_assurance.ladder import parse_acr


def validate_jwks(jwks: Mapping[str, Any]) -> dict[str, Any]:
    """A JWK Set (RFC 7517 §5) of public keys only: a private key must never be registered."""
    from joserfc.jwk import KeySet

    keys = jwks.get("keys")
    if not isinstance(keys, list) or not keys:
        raise ValueError('jwks must be a JWK Set with at least one key: {"keys": [...]}')
    for key in keys:
        if not isinstance(key, dict):
            raise ValueError("every member of jwks.keys must be a JWK object")
        if any(name in key for name in ("d", "p", "q", "dp", "dq", "qi", "k")):
            raise ValueError("jwks must hold public keys only (no private or symmetric key members)")
    try:
        KeySet.import_key_set({"keys": keys})
    except Exception as exc:  # joserfc raises several types for malformed keys
        raise ValueError(f"jwks is not a usable JWK Set: {exc}") from None
    return {"keys": keys}


def _owned(tx: Tx, tenant_id: str, client_id: str) -> Client:
    client = get(tx.conn, client_id)
    if client is None or client.tenant_id != tenant_id:
        raise NotFoundError(f"no client {client_id!r} in this tenant")
    return client


def update_client(
    tx: Tx,
    *,
    tenant_id: str,
    client_id: str,
    changes: Mapping[str, Any],
    actor: str | None = None,
) -> Client:
    """Apply ``changes`` (only the keys given) after checking the result as :func:`create` would."""
    current = _owned(tx, tenant_id, client_id)
    merged: dict[str, Any] = {
        "name": current.name,
        "redirect_uris": list(current.redirect_uris),
        "post_logout_redirect_uris": list(current.post_logout_redirect_uris),
        "grant_types": list(current.grant_types),
        "scopes": list(current.scopes),
        "jwks": dict(current.jwks) if current.jwks else None,
        "default_acr": current.default_acr,
        "minimum_acr": current.minimum_acr,
        "active": current.active,
        "login_token_acr": current.login_token_acr,
    }
    unknown = set(changes) - set(merged)
    if unknown:
        raise ValueError(f"cannot change {sorted(unknown)}")
    merged.update(changes)
    merged["name"] = value_rules.single_line(
        str(merged["name"]), field="name", subject="client name", max_length=200
    )
    for g in merged["grant_types"]:
        if g not in GRANT_TYPES:
            raise ValueError(f"unsupported grant type {g!r}; expected one of {', '.join(GRANT_TYPES)}")
    for uri in (*merged["redirect_uris"], *merged["post_logout_redirect_uris"]):
        validate_redirect_uri(uri)
    if "authorization_code" in merged["grant_types"] and not merged["redirect_uris"]:
        raise ValueError("the authorization_code grant needs at least one redirect URI")
    if current.is_public and {"client_credentials", TOKEN_EXCHANGE} & set(merged["grant_types"]):
        raise ValueError("a public client cannot use client_credentials or token exchange")
    for acr in (merged["default_acr"], merged["minimum_acr"]):
        if acr is not None:
            parse_acr(acr)
    check_login_token_acr(merged["login_token_acr"])
    if merged["jwks"] is not None:
        merged["jwks"] = validate_jwks(merged["jwks"])
    elif current.token_endpoint_auth_method == AuthMethod.PRIVATE_KEY_JWT:
        raise ValueError("a private_key_jwt client needs its public keys (jwks)")
    values = {k: v for k, v in merged.items() if k in changes}
    if merged["login_token_acr"] is None:
        values["login_token_secret"] = None
    c = tables.clients.c
    tx.conn.execute(
        update(tables.clients).where(c.client_id == client_id).values(updated_at=tx.now, **values)
    )
    audit.record(
        tx,
        audit.AuditEvent(
            "client.updated",
            tenant_id=tenant_id,
            details={"client_id": client_id, "changed": sorted(changes), "actor": actor},
        ),
    )
    updated = get(tx.conn, client_id)
    assert updated is not None
    return updated


def rotate_secret(
    tx: Tx, *, tenant_id: str, client_id: str, seal_key: str, actor: str | None = None
) -> NewClient:
    """A new secret for a secret-authenticated client; the old one stops working at once."""
    current = _owned(tx, tenant_id, client_id)
    if current.token_endpoint_auth_method not in (AuthMethod.SECRET_BASIC, AuthMethod.SECRET_POST):
        raise ValueError(
            f"client {client_id!r} authenticates with {current.token_endpoint_auth_method}; it has no secret"
        )
    secret = secrets.new_secret()
    sealed = _sealed(seal_key, client_id, secret) if current.login_token_acr else None
    c = tables.clients.c
    tx.conn.execute(
        update(tables.clients)
        .where(c.client_id == client_id)
        .values(secret_digest=secrets.digest(secret), login_token_secret=sealed, updated_at=tx.now)
    )
    audit.record(
        tx,
        audit.AuditEvent(
            "client.secret_rotated", tenant_id=tenant_id, details={"client_id": client_id, "actor": actor}
        ),
    )
    updated = get(tx.conn, client_id)
    assert updated is not None
    return NewClient(updated, secret)


def delete_client(tx: Tx, *, tenant_id: str, client_id: str, actor: str | None = None) -> None:
    """Remove the client; its codes, tokens and pending requests go with it (foreign keys cascade)."""
    _owned(tx, tenant_id, client_id)
    tx.conn.execute(delete(tables.clients).where(tables.clients.c.client_id == client_id))
    audit.record(
        tx,
        audit.AuditEvent(
            "client.deleted", tenant_id=tenant_id, details={"client_id": client_id, "actor": actor}
        ),
    )
