"""The sign-in steps read the person together with what the step asks about them, in one statement:
the password hash and the lock (the password step), the code options, the lock and the identity
proofing (the code step and the page before it). On SQLite and PostgreSQL.

Each value comes from a scalar subquery on the eID the statement reads, repeated on every row of its
attributes: these tests give two eIDs of one tenant opposite answers (and one eID no attributes at
all) so that a value read for the wrong eID, or lost with the attribute rows, shows.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import Connection

from idp import eids, lockout, logins, proofing, tenants
from idp.eids import EID, Attribute
from idp.errors import ConflictError, NotFoundError
from idp.storage import migrate, tables
from idp.storage.database import Database
from idp.web import code_routes, password_check
from levels_of_assurance.authenticators import password, recovery_codes
from levels_of_assurance.ladder import AMR, Level, RequestedLevel, acr_for
from levels_of_assurance.policy import Factor, Method
from tests.support.factors import person

HASH = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"  # read back, never verified
PHONE = "+38640123456"
NOW = 1_800_000_000.0


async def _full(db: Database) -> EID:
    """An eID with everything: password, app, recovery codes (one of three used), a verified
    phone, and a proofing (an older one revoked)."""
    verified = {"phone_number": Attribute(PHONE, "sms", NOW)}
    someone = await person(db)

    def unit(tx: Any) -> EID:
        full = eids.create(
            tx,
            tenant_id=someone.tenant_id,
            attributes={"email": "full@example.com", "given_name": "Ana"},
            verified=verified,
        )
        password.set_hash(tx, eid_id=full.id, tenant_id=full.tenant_id, new_hash=HASH, reason="set")
        _app(tx, full.id, confirmed=True)
        codes = recovery_codes.issue(tx, eid_id=full.id, now=NOW, count=3)
        recovery_codes.use(tx, eid_id=full.id, code=codes[0], now=NOW)
        proofing.record(
            tx, eid_id=full.id, method="videoid", level="urn:eid:loa:qualified", evidence_id=f"old-{full.id}"
        )
        proofing.revoke(tx, eid_id=full.id, reason="test")
        proofing.record(
            tx, eid_id=full.id, method="videoid", level="urn:eid:loa:qualified", evidence_id=f"new-{full.id}"
        )
        return full

    return await db.write(unit)


async def _bare(db: Database, tenant_id: str, *, email: str | None = None) -> EID:
    """A locked eID of ``tenant_id`` with nothing else: no password, no factor, no proofing (and no
    attributes at all without ``email``); an app enrolment it never confirmed."""

    def unit(tx: Any) -> EID:
        bare = eids.create(
            tx,
            tenant_id=tenant_id,
            attributes={"email": email} if email else {},
            username=None if email else "bare",
        )
        lockout.lock(tx, eid_id=bare.id, tenant_id=tenant_id, reason="password_failures")
        _app(tx, bare.id, confirmed=False)
        return bare

    return await db.write(unit)


def _app(tx: Any, eid_id: str, *, confirmed: bool) -> None:
    tx.conn.execute(
        tables.totp_credentials.insert().values(
            id=str(uuid.uuid4()),
            eid_id=eid_id,
            secret_sealed=b"sealed",
            confirmed_at=NOW if confirmed else None,
            created_at=NOW,
        )
    )


async def test_the_code_step_reads_each_eids_own_options_lock_and_proofing(db: Database) -> None:
    full = await _full(db)
    bare = await _bare(db, full.tenant_id)
    got_full = await db.read(lambda conn: code_routes.signer(conn, full.id))
    got_bare = await db.read(lambda conn: code_routes.signer(conn, bare.id))

    assert got_full.person == await db.read(lambda conn: eids.get(conn, full.id))
    assert set(got_full.person.attributes) == {"email", "given_name", "phone_number"}
    assert got_full.options == code_routes.Options(totp=True, phone=PHONE, recovery=2)
    assert (got_full.locked, got_full.proofed) == (False, True)

    assert got_bare.person.username == "bare" and got_bare.person.attributes == {}
    assert got_bare.options == code_routes.Options(totp=False, phone=None, recovery=0)
    assert got_bare.options.methods == []
    assert (got_bare.locked, got_bare.proofed) == (True, False)

    with pytest.raises(NotFoundError):
        await db.read(lambda conn: code_routes.signer(conn, "no-such-eid"))


async def test_a_revoked_proofing_or_an_unverified_phone_does_not_count(db: Database) -> None:
    someone = await person(db, phone_number=PHONE)  # given, not verified

    def unit(tx: Any) -> None:
        proofing.record(
            tx,
            eid_id=someone.id,
            method="videoid",
            level="urn:eid:loa:qualified",
            evidence_id=f"x-{someone.id}",
        )
        proofing.revoke(tx, eid_id=someone.id, reason="test")

    await db.write(unit)
    got = await db.read(lambda conn: code_routes.signer(conn, someone.id))
    assert got.options.phone is None and got.proofed is False


async def test_the_password_step_reads_each_eids_own_hash_and_lock(db: Database) -> None:
    full = await _full(db)
    bare = await _bare(db, full.tenant_id, email="bare@example.com")
    tenant_id = full.tenant_id

    def subject(*, eid_id: str | None = None, email: str = "") -> Any:
        return db.read(
            lambda conn: password_check.subject(conn, tenant_id=tenant_id, eid_id=eid_id, email=email)
        )

    for found in (await subject(email=" Full@Example.com"), await subject(eid_id=full.id)):
        person_, stored, locked = found
        assert person_ is not None and person_.id == full.id
        assert set(person_.attributes) == {"email", "given_name", "phone_number"}
        assert (stored, locked) == (HASH, False)
    for found in (await subject(email="bare@example.com"), await subject(eid_id=bare.id)):
        person_, stored, locked = found
        assert person_ is not None and person_.id == bare.id
        assert (stored, locked) == (None, True)

    assert await subject(email="nobody@example.com") == (None, None, False)
    assert await subject(email="not an address") == (None, None, False)
    other_tenant = await person(db, email="elsewhere@example.com")
    assert await subject(email=other_tenant.value("email") or "") == (None, None, False)
    with pytest.raises(NotFoundError):
        await subject(eid_id="no-such-eid")


async def test_completing_a_login_reads_the_eids_status_and_proofing_in_its_transaction(db: Database) -> None:
    """The eID's status as committed when the login completes, not as the request read it before."""
    full = await _full(db)
    login = logins.Login(
        request_id="r1",
        client_id="c",
        client_name="C",
        tenant=await db.read(lambda conn: tenants.get(conn, full.tenant_id)),
        requested=RequestedLevel(Level.QUALIFIED, acr_for(Level.QUALIFIED)),
        eid_id=full.id,
        factors=(Factor(Method.PASSWORD, (AMR.PWD,), NOW), Factor(Method.TOTP, (AMR.OTP,), NOW)),
        params={},
        created_at=NOW,
    )

    def finish(tx: Any) -> tuple[Any, Any]:
        return logins.finish_if_reached(tx, login, cookie=None, ttl=60.0, client_ip=None)

    await db.write(lambda tx: eids.suspend(tx, eid_id=full.id, reason="test"))
    with pytest.raises(ConflictError, match="suspended or blocked"):
        await db.write(finish)
    await db.write(lambda tx: eids.set_status(tx, eid_id=full.id, status=eids.EIDStatus.ACTIVE, reason="t"))
    decided, completed = await db.write(finish)
    # qualified = advanced factors + a proofing that is not revoked
    assert decided.satisfied and decided.level == Level.QUALIFIED
    assert completed is not None and completed.person.id == full.id and completed.person.active


async def test_each_read_takes_one_statement(tmp_path: Any) -> None:
    """One round trip each (on PostgreSQL each is a send to the server and a wait for the answer)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'idp.db'}"
    await asyncio.to_thread(migrate.upgrade, url)
    db = Database(url)
    try:
        full = await _full(db)
        statements: list[str] = []

        def traced(conn: Connection) -> None:
            raw: Any = conn.connection.dbapi_connection
            raw.set_trace_callback(statements.append)
            try:
                code_routes.signer(conn, full.id)
                password_check.subject(conn, tenant_id=full.tenant_id, eid_id=None, email="full@example.com")
            finally:
                raw.set_trace_callback(None)

        await db.read(traced)
    finally:
        await db.close()
    assert len(statements) == 2, statements
