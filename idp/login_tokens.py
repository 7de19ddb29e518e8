"""SSO login tokens: an enterprise portal hands its already-signed-in user over to us.

The portal is a client of the tenant with ``login_token_acr`` set. Its backend mints a short JWT
(RFC 7519) for one of the tenant's people and the person's browser presents it at
``/login/token``; the backend may instead exchange it at ``/token`` (RFC 8693). The token:

- is signed with a key of the client's JWKS (RS256, PS256, ES256, EdDSA) or, for a client with a
  secret, HS256 with that secret; ``alg: none`` and any other algorithm are refused;
- has ``iss`` = the client_id (the portal speaks only for itself), ``aud`` = our issuer or the
  login-token endpoint URL, ``exp`` at most 300 s after ``iat`` (and not passed), a ``jti`` that
  is accepted once (remembered in ``used_assertions`` until it expires, as client assertions
  are, RFC 7523 §3 item 7), and ``sub`` (an eID id or username of the tenant) or ``email``.

It proves the factor :attr:`~levels_of_assurance.policy.Method.LOGIN_TOKEN` (basic) or
``LOGIN_TOKEN_ADVANCED``, amr ``fed``. A person the tenant does not know is refused, or created
when the tenant says ``login_token_unknown_users = create``. Pure verification here; the
caller owns storage and HTTP.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects import postgresql, sqlite

from idp import eids, tenants
from idp.clients import Client
from idp.errors import LoginError
from idp.storage import tables
from idp.storage.database import Tx
from levels_of_assurance.ladder import AMR, Level, parse_acr
from levels_of_assurance.policy import Factor, Method

MAX_LIFETIME = 300.0
LEEWAY = 30.0
MAX_TOKEN = 8192
MAX_JTI = 200
ASYMMETRIC = ("RS256", "PS256", "ES256", "EdDSA")
JTI_PREFIX = "login_token:"  # shares used_assertions with client assertions, apart from them
SUBJECT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"  # RFC 8693 §3


class Problem(StrEnum):
    MALFORMED = "malformed"
    ALGORITHM = "algorithm_not_allowed"
    UNKNOWN_ISSUER = "unknown_issuer"
    NOT_ENABLED = "not_enabled"
    BAD_SIGNATURE = "bad_signature"
    WRONG_AUDIENCE = "wrong_audience"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    LIFETIME = "lifetime_too_long"
    MISSING_CLAIM = "missing_claim"
    REPLAYED = "replayed"
    UNKNOWN_USER = "unknown_user"
    INACTIVE_USER = "inactive_user"
    OTHER_TENANT = "other_tenant"


class LoginTokenError(LoginError):
    """The login token is refused; ``code`` is a :class:`Problem`, the message says why."""

    def __init__(self, problem: Problem, message: str) -> None:
        super().__init__(problem, message)
        self.problem = problem


@dataclass(slots=True, frozen=True)
class LoginTokenClaims:
    client_id: str
    jti: str
    exp: float
    iat: float
    sub: str | None
    email: str | None
    given_name: str | None = None
    family_name: str | None = None


def _segment(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def peek(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims, NOT verified: only to find the client (``iss``) and its key."""
    if not token or len(token) > MAX_TOKEN or token.count(".") != 2:
        raise LoginTokenError(Problem.MALFORMED, "the login token is not a compact JWS (RFC 7515 §7.1)")
    head, body, _sig = token.split(".")
    try:
        header, claims = _segment(head), _segment(body)
    except (ValueError, RecursionError):
        raise LoginTokenError(Problem.MALFORMED, "the login token's header or claims are not JSON") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise LoginTokenError(Problem.MALFORMED, "the login token's header and claims must be JSON objects")
    return header, claims


def issuer_of(token: str) -> str:
    _header, claims = peek(token)
    iss = claims.get("iss")
    if not isinstance(iss, str) or not iss or len(iss) > 64:
        raise LoginTokenError(Problem.MISSING_CLAIM, "the login token needs iss: the portal's client_id")
    return iss


def _number(claims: dict[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LoginTokenError(Problem.MISSING_CLAIM, f"the login token needs a numeric {name} claim")
    return float(value)


def _text(claims: dict[str, Any], name: str, limit: int) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit or not value.isprintable():
        raise LoginTokenError(Problem.MISSING_CLAIM, f"{name} must be 1-{limit} printable characters")
    return value


def verify(
    token: str,
    *,
    client: Client | None,
    hs256_key: bytes | None,
    audiences: Sequence[str],
    now: float,
) -> LoginTokenClaims:
    """Check everything the module docstring lists except single use (:func:`consume`)."""
    from joserfc import jwt
    from joserfc.errors import JoseError
    from joserfc.jwk import KeySet, OctKey

    header, unverified = peek(token)
    alg = header.get("alg")
    if alg not in (*ASYMMETRIC, "HS256"):
        raise LoginTokenError(
            Problem.ALGORITHM,
            f"alg {str(alg)[:20]!r} is not allowed; use one of {', '.join(ASYMMETRIC)}, HS256",
        )
    iss = unverified.get("iss")
    if client is None or client.client_id != iss or not client.active:
        raise LoginTokenError(Problem.UNKNOWN_ISSUER, "iss is not the client_id of an active client")
    if client.login_token_acr is None:
        raise LoginTokenError(Problem.NOT_ENABLED, f"client {client.client_id!r} may not issue login tokens")
    key: Any
    if alg == "HS256":
        if hs256_key is None:
            raise LoginTokenError(
                Problem.NOT_ENABLED, "this client has no secret kept for HS256 login tokens"
            )
        key = OctKey.import_key(hs256_key)
    else:
        if not client.jwks:
            raise LoginTokenError(Problem.NOT_ENABLED, "this client has no registered keys (jwks)")
        key = KeySet.import_key_set(dict(client.jwks))  # type: ignore[arg-type]
    try:
        claims = dict(jwt.decode(token, key, algorithms=[str(alg)]).claims)
    except (JoseError, ValueError, TypeError):
        raise LoginTokenError(Problem.BAD_SIGNATURE, "the login token's signature does not verify") from None
    if claims.get("iss") != client.client_id:
        raise LoginTokenError(Problem.UNKNOWN_ISSUER, "iss is not the client_id of an active client")
    aud = claims.get("aud")
    auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if not any(a in audiences for a in auds):
        raise LoginTokenError(Problem.WRONG_AUDIENCE, f"aud must be one of {', '.join(audiences)}")
    exp, iat = _number(claims, "exp"), _number(claims, "iat")
    if exp - iat > MAX_LIFETIME:
        raise LoginTokenError(Problem.LIFETIME, f"exp may be at most {MAX_LIFETIME:.0f} s after iat")
    if exp <= now - LEEWAY:
        raise LoginTokenError(Problem.EXPIRED, "the login token has expired")
    nbf = claims.get("nbf")
    if iat > now + LEEWAY or (_isnum(nbf) and float(nbf or 0) > now + LEEWAY):
        raise LoginTokenError(
            Problem.NOT_YET_VALID, "the login token is not valid yet (iat/nbf in the future)"
        )
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI or "\x00" in jti:
        raise LoginTokenError(Problem.MISSING_CLAIM, f"the login token needs a jti of 1-{MAX_JTI} characters")
    sub = _text(claims, "sub", 320)
    email = _text(claims, "email", 254)
    if sub is None and email is None:
        raise LoginTokenError(Problem.MISSING_CLAIM, "the login token must name the person: sub or email")
    return LoginTokenClaims(
        client_id=client.client_id,
        jti=jti,
        exp=exp,
        iat=iat,
        sub=sub,
        email=email,
        given_name=_text(claims, "given_name", 200),
        family_name=_text(claims, "family_name", 200),
    )


def _isnum(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float)


def consume(tx: Tx, claims: LoginTokenClaims) -> None:
    """Accept the token's ``jti`` once; a second use (or a racing one) is :attr:`Problem.REPLAYED`."""
    insert = postgresql.insert if tx.conn.dialect.name == "postgresql" else sqlite.insert
    result = tx.conn.execute(
        insert(tables.used_assertions)
        .values(client_id=claims.client_id, jti=JTI_PREFIX + claims.jti, expires_at=claims.exp + LEEWAY)
        .on_conflict_do_nothing()
    )
    if result.rowcount != 1:
        raise LoginTokenError(Problem.REPLAYED, "this login token was used before")


def _find(conn: Connection, tenant_id: str, claims: LoginTokenClaims) -> eids.EID | None:
    e = tables.eids.c
    if claims.sub is not None:
        row = conn.execute(
            select(e.id).where(
                (e.tenant_id == tenant_id)
                & ((e.id == claims.sub) | (func.lower(e.username) == claims.sub.lower()))
            )
        ).first()
        if row is not None:
            return eids.get(conn, row.id)
    if claims.email is not None:
        try:
            return eids.find_by_email(conn, tenant_id=tenant_id, email=claims.email)
        except ValueError:
            raise LoginTokenError(Problem.MISSING_CLAIM, "email is not an email address") from None
    return None


def person_for(
    tx: Tx, *, tenant: tenants.Tenant, claims: LoginTokenClaims, client_ip: str | None
) -> eids.EID:
    """The tenant's eID the token names; created when unknown and the tenant says so."""
    person = _find(tx.conn, tenant.id, claims)
    if person is None:
        if tenant.login_token_unknown_users != "create":
            raise LoginTokenError(
                Problem.UNKNOWN_USER, "the tenant has no eID for the person this token names"
            )
        attributes = {
            k: v
            for k, v in (
                ("email", claims.email),
                ("given_name", claims.given_name),
                ("family_name", claims.family_name),
            )
            if v
        }
        try:
            person = eids.create(
                tx, tenant_id=tenant.id, attributes=attributes, username=claims.sub, client_ip=client_ip
            )
        except ValueError as exc:
            raise LoginTokenError(Problem.MISSING_CLAIM, f"cannot create the eID: {exc}") from None
    if not person.active:
        raise LoginTokenError(Problem.INACTIVE_USER, "the eID is suspended or blocked")
    return person


def factor_for(client: Client, *, now: float) -> Factor:
    """What the login token proves: the level the tenant trusts this portal for."""
    assert client.login_token_acr is not None
    advanced = parse_acr(client.login_token_acr) >= Level.ADVANCED
    method = Method.LOGIN_TOKEN_ADVANCED if advanced else Method.LOGIN_TOKEN
    return Factor(method, (AMR.FED,), now)
