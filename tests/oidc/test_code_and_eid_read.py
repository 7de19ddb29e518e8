"""The token endpoint reads the authorization code with the whole eID it was issued to in one
statement (``store.load_code_and_eid``), as the two reads it replaced gave them. On SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import Connection

from idp import audit, eids, tenants
from idp.storage import migrate
from idp.storage.database import Database
from idp.web import account_login
from oidc import store
from tests.support.factors import person


async def _code(db: Database, someone: eids.EID) -> str:
    digest = uuid.uuid4().hex

    def unit(tx: Any) -> None:
        client_id = account_login.ensure_client(tx, tenants.get(tx.conn, someone.tenant_id))
        row = {
            "digest": digest,
            "grant_id": str(uuid.uuid4()),
            "client_id": client_id,
            "eid_id": someone.id,
            "sid": None,
            "redirect_uri": "https://rp.example/cb",
            "scope": "openid email",
            "nonce": "n",
            "code_challenge": None,
            "code_challenge_method": None,
            "auth_time": tx.now,
            "acr": "urn:eid:loa:advanced",
            "amr": ["pwd", "otp"],
            "created_at": tx.now,
            "expires_at": tx.now + 60,
            "used_at": None,
        }
        store.save_code(tx, row=row, event=audit.AuditEvent("code.issued", eid_id=someone.id))

    await db.write(unit)
    return digest


async def test_the_code_comes_with_its_own_eid(db: Database) -> None:
    first, second = await person(db, given_name="Ana"), await person(db, given_name="Bor")
    for someone in (first, second):
        digest = await _code(db, someone)
        code, found = await db.read(lambda conn, d=digest: store.load_code_and_eid(conn, d))
        assert code == await db.read(lambda conn, d=digest: store.load_code(conn, d))
        assert code is not None and code.amr == ("pwd", "otp") and code.eid_id == someone.id
        assert found == await db.read(lambda conn, s=someone: eids.get(conn, s.id))
    assert await db.read(lambda conn: store.load_code_and_eid(conn, "no-such-code")) == (None, None)


async def test_one_statement(tmp_path: Any) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'idp.db'}"
    await asyncio.to_thread(migrate.upgrade, url)
    db = Database(url)
    try:
        digest = await _code(db, await person(db))
        statements: list[str] = []

        def traced(conn: Connection) -> Any:
            raw: Any = conn.connection.dbapi_connection
            raw.set_trace_callback(statements.append)
            try:
                return store.load_code_and_eid(conn, digest)
            finally:
                raw.set_trace_callback(None)

        code, found = await db.read(traced)
    finally:
        await db.close()
    assert code is not None and found is not None and len(statements) == 1, statements
