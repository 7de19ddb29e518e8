"""The code step reads its login and the person it identified in one statement
(``code_routes.login_and_signer``), and answers as the two reads it replaced did: the login only
when it is live, in this browser and a sign-in; the person's own options. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import Connection

from idp import eids, lockout, logins, tenants
from idp.errors import NotFoundError
from idp.storage import migrate
from idp.storage.database import Database
from idp.web import account_login, code_routes
from levels_of_assurance.ladder import Level
from tests.support.factors import person

BROWSER = "browser-one"


async def _request(db: Database, tenant_id: str, *, eid_id: str | None, purpose: str = "account") -> str:
    def unit(tx: Any) -> str:
        tenant = tenants.get(tx.conn, tenant_id)
        return account_login.create_request(
            tx, tenant=tenant, purpose=purpose, level=Level.ADVANCED, browser_value=BROWSER, eid_id=eid_id
        )

    return await db.write(unit)


def _read(db: Database, request_id: str, *, browser: str = BROWSER, now: float | None = None) -> Any:
    at = time.time() if now is None else now
    return db.read(lambda conn: code_routes.login_and_signer(conn, request_id, browser=browser, now=at))


async def test_the_login_comes_with_its_own_person_as_the_two_reads_gave_them(db: Database) -> None:
    first = await person(db, phone_number="+38640123456")
    other = await db.write(
        lambda tx: eids.create(tx, tenant_id=first.tenant_id, attributes={"email": "o@example.com"})
    )
    await db.write(lambda tx: lockout.lock(tx, eid_id=other.id, tenant_id=other.tenant_id, reason="test"))
    for someone, locked in ((first, False), (other, True)):
        request_id = await _request(db, someone.tenant_id, eid_id=someone.id)
        found = await _read(db, request_id)
        assert found is not None
        login, known = found
        now = time.time()
        assert login == await db.read(
            lambda conn, r=request_id, at=now: logins.load(conn, r, browser=BROWSER, now=at)
        )
        assert known == await db.read(lambda conn, s=someone: code_routes.signer(conn, s.id))
        assert known.person.id == someone.id and known.locked is locked


async def test_no_login_unless_live_in_this_browser_a_sign_in_and_someone_identified(db: Database) -> None:
    someone = await person(db)
    request_id = await _request(db, someone.tenant_id, eid_id=someone.id)
    assert await _read(db, request_id, browser="another-browser") is None
    assert await _read(db, request_id, now=4_000_000_000.0) is None  # expired
    assert await _read(db, "no-such-request") is None
    assert await _read(db, await _request(db, someone.tenant_id, eid_id=None)) is None
    reset = await _request(db, someone.tenant_id, eid_id=someone.id, purpose="reset")
    assert await _read(db, reset) is None
    assert await _read(db, request_id) is not None


async def test_one_statement(tmp_path: Any) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'idp.db'}"
    await asyncio.to_thread(migrate.upgrade, url)
    db = Database(url)
    try:
        someone = await person(db)
        request_id = await _request(db, someone.tenant_id, eid_id=someone.id)
        statements: list[str] = []

        def traced(conn: Connection) -> Any:
            raw: Any = conn.connection.dbapi_connection
            raw.set_trace_callback(statements.append)
            try:
                return code_routes.login_and_signer(conn, request_id, browser=BROWSER, now=0.0)
            finally:
                raw.set_trace_callback(None)

        assert await db.read(traced) is not None
    finally:
        await db.close()
    assert len(statements) == 1, statements


async def test_a_person_erased_during_the_login_is_not_found_as_before(db: Database) -> None:
    someone = await person(db)
    request_id = await _request(db, someone.tenant_id, eid_id=someone.id)
    await db.write(lambda tx: eids.erase(tx, eid_id=someone.id, reason="test"))
    with pytest.raises(NotFoundError):
        await _read(db, request_id)
