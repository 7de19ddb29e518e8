"""Signing keys: generated on first start, sealed at rest with the instance secret, rotated.

The JWKS publishes every active key and every retired key whose tokens may still be in use
(``not_after``); ID tokens are signed with the active key of the client's algorithm.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from joserfc.jwk import ECKey, RSAKey
from sqlalchemy import Connection, select, update

from idp import audit, secrets
from idp.storage import tables
from idp.storage.database import Tx

ALGORITHMS = ("RS256", "ES256")
SigningKey = RSAKey | ECKey


_PURPOSE = b"signing-keys/v1"


def seal(secret: str, plaintext: bytes, *, kid: str) -> bytes:
    """AES-256-GCM with a key derived from the instance secret; the kid is bound as associated data."""
    return secrets.seal(secret, plaintext, purpose=_PURPOSE, associated_data=kid.encode())


def unseal(secret: str, sealed: bytes, *, kid: str) -> bytes:
    try:
        return secrets.unseal(secret, sealed, purpose=_PURPOSE, associated_data=kid.encode())
    except ValueError as exc:
        raise ValueError(f"signing key {kid}: {exc}") from None


def generate(alg: str) -> SigningKey:
    params: Any = {"alg": alg, "use": "sig"}
    key: SigningKey
    if alg == "RS256":
        key = RSAKey.generate_key(2048, parameters=params, auto_kid=True)
    elif alg == "ES256":
        key = ECKey.generate_key("P-256", parameters=params, auto_kid=True)
    else:
        raise ValueError(f"unsupported signing algorithm {alg!r}")
    return key


def _insert(tx: Tx, secret: str, key: SigningKey) -> None:
    kid = str(key.kid)
    tx.conn.execute(
        tables.signing_keys.insert().values(
            kid=kid,
            alg=key.alg,
            private_key=seal(secret, key.as_pem(private=True), kid=kid),
            public_jwk=key.as_dict(private=False),
            status="active",
            created_at=tx.now,
        )
    )


def ensure_keys(tx: Tx, *, secret: str) -> list[str]:
    """Create an active key for each algorithm that has none; returns the new kids."""
    k = tables.signing_keys.c
    have = {r.alg for r in tx.conn.execute(select(k.alg).where(k.status == "active"))}
    created = []
    for alg in ALGORITHMS:
        if alg not in have:
            key = generate(alg)
            _insert(tx, secret, key)
            created.append(str(key.kid))
    if created:
        audit.record(tx, audit.AuditEvent("keys.generated", details={"kids": created}))
    return created


def rotate(tx: Tx, *, secret: str, keep_for: float) -> dict[str, list[str]]:
    """New active keys; the old ones stay in the JWKS for ``keep_for`` seconds, then leave it."""
    k = tables.signing_keys.c
    old = [r.kid for r in tx.conn.execute(select(k.kid).where(k.status == "active"))]
    tx.conn.execute(
        update(tables.signing_keys)
        .where(k.status == "active")
        .values(status="retired", retired_at=tx.now, not_after=tx.now + keep_for)
    )
    new = []
    for alg in ALGORITHMS:
        key = generate(alg)
        _insert(tx, secret, key)
        new.append(str(key.kid))
    audit.record(tx, audit.AuditEvent("keys.rotated", details={"retired": old, "new": new}))
    return {"retired": old, "active": new}


@dataclass(slots=True)
class KeyRing:
    """The keys in memory: active signing keys by algorithm and the published JWKS."""

    signing: dict[str, SigningKey] = field(default_factory=dict)
    public: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    jwks_json: bytes = b'{"keys":[]}'
    fingerprint: str = ""

    def key_for(self, alg: str) -> SigningKey:
        try:
            return self.signing[alg]
        except KeyError:
            raise LookupError(f"no active {alg} signing key") from None

    def public_key(self, kid: str) -> Mapping[str, Any] | None:
        return self.public.get(kid)


def load(
    conn: Connection, *, secret: str, now: float, known: Mapping[str, SigningKey] | None = None
) -> KeyRing:
    """The keys in the database. A key among ``known`` (the ring loaded before) with the kid of an
    active row is taken as it is: a kid names one key (its thumbprint), and importing an RSA key
    again (cryptography checks it) cost about 50 ms on the event loop at every periodic reload."""
    reuse = {str(key.kid): key for key in (known or {}).values()}
    k = tables.signing_keys.c
    rows = (
        conn.execute(
            select(tables.signing_keys)
            .where((k.status == "active") | (k.not_after > now))
            .order_by(k.created_at.desc(), k.kid)  # one order, so every reload picks the same key
        )
        .mappings()
        .all()
    )
    ring = KeyRing()
    for row in rows:
        ring.public[row["kid"]] = row["public_jwk"]
        if row["status"] == "active" and row["alg"] not in ring.signing:
            same = reuse.get(row["kid"])
            if same is not None and same.alg == row["alg"]:
                ring.signing[row["alg"]] = same
                continue
            pem = unseal(secret, row["private_key"], kid=row["kid"])
            cls = RSAKey if row["alg"] == "RS256" else ECKey
            ring.signing[row["alg"]] = cls.import_key(
                pem, {"kid": row["kid"], "alg": row["alg"], "use": "sig"}
            )
    ring.jwks_json = json.dumps({"keys": list(ring.public.values())}, separators=(",", ":")).encode()
    ring.fingerprint = base64.urlsafe_b64encode(hashlib.sha256(ring.jwks_json).digest()[:12]).decode()
    return ring
