"""Signing keys: created on first start, sealed at rest, rotated with the old keys kept in the JWKS
for as long as their tokens live (DESIGN.md, "Rules that hold everywhere")."""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.exceptions import InvalidTag
from joserfc import jws
from sqlalchemy import Connection, select
from sqlalchemy.engine import make_url

from idp.storage import migrate, tables
from idp.storage.database import Database
from oidc import keys
from tests.conftest import _pg_admin
from tests.oidc.conftest import PartyFactory
from tests.support.server import SECRET, ServedApp, serve, settings_factory_for

K = tables.signing_keys.c
OTHER_SECRET = "another-instance-secret-" + "y" * 30


def _rows(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(select(tables.signing_keys).order_by(K.created_at)).mappings()]


def _active(conn: Connection) -> dict[str, str]:
    return {r.alg: r.kid for r in conn.execute(select(K.alg, K.kid).where(K.status == "active"))}


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[str]:
    """A migrated database that no app has started on yet (the run's shared PostgreSQL one has keys)."""
    if request.param == "sqlite":
        shutil.copy(sqlite_template, tmp_path / "fresh.db")
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
        return
    shared = make_url(str(request.getfixturevalue("pg_database_url")))
    name = f"{shared.database}_keys_{uuid.uuid4().hex[:6]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    url = shared.set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _jwks(app: ServedApp) -> dict[str, Any]:
    with app.client() as http:
        response = http.get("/.well-known/jwks.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_first_start_creates_one_key_per_algorithm(
    empty_database_url: str, tls: tuple[Path, Path], tmp_path: Path
) -> None:
    factory = settings_factory_for(empty_database_url, tmp_path)
    with serve(factory, tls=tls, outbox=tmp_path / "mail") as app:
        rows = app.run(app.state.db.read(_rows))
        published = _jwks(app)["keys"]
    assert sorted(r["alg"] for r in rows) == ["ES256", "RS256"]
    assert {r["status"] for r in rows} == {"active"}
    assert sorted((k["kid"], k["alg"], k["kty"], k["use"]) for k in published) == sorted(
        (r["kid"], r["alg"], "RSA" if r["alg"] == "RS256" else "EC", "sig") for r in rows
    )
    for jwk in published:  # public halves only
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(jwk), jwk
    # a second start finds them and makes none
    with serve(factory, tls=tls, outbox=tmp_path / "mail") as app:
        again = app.run(app.state.db.read(_rows))
        assert {k["kid"] for k in _jwks(app)["keys"]} == {r["kid"] for r in rows}
    assert [r["kid"] for r in again] == [r["kid"] for r in rows]


async def test_ensure_keys_is_idempotent(db: Database) -> None:
    await db.write(lambda tx: keys.ensure_keys(tx, secret=SECRET))
    active = await db.read(_active)
    assert set(active) == {"RS256", "ES256"}
    assert await db.write(lambda tx: keys.ensure_keys(tx, secret=SECRET)) == []
    assert await db.read(_active) == active


async def test_private_keys_are_sealed_at_rest(db: Database) -> None:
    await db.write(lambda tx: keys.ensure_keys(tx, secret=SECRET))
    rows = await db.read(_rows)
    assert rows
    for row in rows:
        sealed = bytes(row["private_key"])
        assert b"-----BEGIN" not in sealed and b"PRIVATE KEY" not in sealed
        assert sealed.startswith(b"v1")
        pem = keys.unseal(SECRET, sealed, kid=row["kid"])
        assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
        with pytest.raises(InvalidTag):
            keys.unseal(OTHER_SECRET, sealed, kid=row["kid"])
        with pytest.raises(InvalidTag):  # the kid is bound: a sealed key moved to another row fails
            keys.unseal(SECRET, sealed, kid=row["kid"] + "x")
        with pytest.raises(InvalidTag):
            keys.unseal(SECRET, sealed[:-1] + bytes([sealed[-1] ^ 1]), kid=row["kid"])


async def test_a_ring_cannot_be_loaded_with_another_secret(db: Database) -> None:
    await db.write(lambda tx: keys.ensure_keys(tx, secret=SECRET))
    with pytest.raises(InvalidTag):
        await db.read(lambda conn: keys.load(conn, secret=OTHER_SECRET, now=time.time()))


async def test_rotation_keeps_old_public_keys_until_not_after(db: Database) -> None:
    await db.write(lambda tx: keys.ensure_keys(tx, secret=SECRET))
    before = await db.read(_active)
    result = await db.write(lambda tx: keys.rotate(tx, secret=SECRET, keep_for=600))
    after = await db.read(_active)
    assert set(after) == {"RS256", "ES256"}
    assert set(after.values()).isdisjoint(before.values())
    assert sorted(result["active"]) == sorted(after.values())
    assert set(before.values()) <= set(result["retired"])

    now = time.time()
    ring = await db.read(lambda conn: keys.load(conn, secret=SECRET, now=now))
    assert {alg: str(ring.key_for(alg).kid) for alg in ("RS256", "ES256")} == after
    assert set(before.values()) | set(after.values()) <= set(ring.public)
    assert set(before.values()) | set(after.values()) <= {k["kid"] for k in _json(ring.jwks_json)["keys"]}

    later = await db.read(lambda conn: keys.load(conn, secret=SECRET, now=now + 601))
    assert set(before.values()).isdisjoint(later.public)
    assert set(after.values()) <= set(later.public)
    assert {alg: str(later.key_for(alg).kid) for alg in ("RS256", "ES256")} == after
    assert ring.fingerprint != later.fingerprint


async def test_a_reload_keeps_the_keys_it_has_and_imports_the_new_ones(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reloaded every minute: a key already in memory is not unsealed and imported again (an RSA
    import cost about 50 ms on the event loop); a rotated-in key is, and a retired one is dropped.
    On a database of its own: the run's shared one has apps that may add keys meanwhile."""
    db = Database(empty_database_url)
    try:
        await _reload_keeps_known_keys(db, monkeypatch)
    finally:
        await db.close()


async def _reload_keeps_known_keys(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    await db.write(lambda tx: keys.ensure_keys(tx, secret=SECRET))
    now = time.time()
    first = await db.read(lambda conn: keys.load(conn, secret=SECRET, now=now))
    unsealed: list[str] = []
    real_unseal = keys.unseal

    def counting(secret: str, sealed: bytes, *, kid: str) -> bytes:
        unsealed.append(kid)
        return real_unseal(secret, sealed, kid=kid)

    monkeypatch.setattr(keys, "unseal", counting)
    again = await db.read(lambda conn: keys.load(conn, secret=SECRET, now=now, known=first.signing))
    assert unsealed == []
    assert all(again.signing[alg] is first.signing[alg] for alg in ("RS256", "ES256"))
    assert again.jwks_json == first.jwks_json

    await db.write(lambda tx: keys.rotate(tx, secret=SECRET, keep_for=600))
    after = await db.read(_active)
    rotated = await db.read(lambda conn: keys.load(conn, secret=SECRET, now=now, known=again.signing))
    assert sorted(unsealed) == sorted(after.values())  # the new keys only
    assert {alg: str(rotated.key_for(alg).kid) for alg in ("RS256", "ES256")} == after


def _json(raw: bytes) -> dict[str, Any]:
    import json

    value: dict[str, Any] = json.loads(raw)
    return value


def _kid(id_token: str) -> str:
    return str(jws.extract_compact(id_token.encode()).protected["kid"])


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_rotation_in_a_running_app(served: ServedApp, party: PartyFactory, alg: str) -> None:
    p = party(id_token_alg=alg)
    old = p.tokens()
    old_kid = _kid(old["id_token"])
    assert old_kid in {k["kid"] for k in _jwks(served)["keys"]}

    result = served.write(lambda tx: keys.rotate(tx, secret=SECRET, keep_for=3600))
    served.run(served.state.reload_keys())
    new_kids = set(result["active"])
    assert old_kid in result["retired"]

    published = {k["kid"]: k for k in _jwks(served)["keys"]}
    assert old_kid in published and new_kids <= set(published)
    # what the RP already holds still verifies against the JWKS it fetches now
    p.rp.verify_id_token(old["id_token"], nonce=old["_nonce"])

    new = p.tokens(prompt="login")
    new_kid = _kid(new["id_token"])
    assert new_kid in new_kids and published[new_kid]["alg"] == alg
    claims = p.rp.verify_id_token(new["id_token"], nonce=new["_nonce"])
    assert claims["aud"] == p.client_id or p.client_id in claims["aud"]


def test_jwks_is_served_as_json(served: ServedApp) -> None:
    with httpx.Client(base_url=served.issuer, verify=served.ssl_context()) as http:
        response = http.get("/.well-known/jwks.json")
    assert response.headers["content-type"].startswith("application/json")
    assert {k["alg"] for k in response.json()["keys"]} >= {"RS256", "ES256"}
