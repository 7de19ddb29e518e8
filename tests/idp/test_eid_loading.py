"""Reading an eID with its attributes: every sign-in step does it, in one statement."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import Connection

from idp import eids, tenants
from idp.eids import Attribute
from idp.storage.database import Database


async def _person(db: Database, attributes: dict[str, str], **more: Any) -> tuple[str, str]:
    def unit(tx: Any) -> tuple[str, str]:
        tenant = tenants.create(tx, slug=f"t{len(attributes)}-{tx.now:.0f}".replace(".", ""), name="T")
        person = eids.create(tx, tenant_id=tenant.id, attributes=attributes, **more)
        return tenant.id, person.id

    return await db.write(unit)


async def test_an_eid_comes_back_with_every_attribute_and_its_verification(db: Database) -> None:
    verified = {"phone_number": Attribute("+38640123456", "sms", 1_700_000_000.0, "otp:abc")}
    tenant_id, eid_id = await _person(
        db,
        {"email": "Ana.Novak@Example.si", "given_name": "Ana", "family_name": "Novak"},
        verified=verified,
    )
    by_id = await db.read(lambda conn: eids.get(conn, eid_id))
    by_email = await db.read(
        lambda conn: eids.find_by_email(conn, tenant_id=tenant_id, email="ana.novak@example.si")
    )
    assert by_email == by_id
    assert by_id.value("email") == "Ana.Novak@Example.si"
    assert set(by_id.attributes) == {"email", "given_name", "family_name", "phone_number"}
    assert by_id.attributes["phone_number"] == verified["phone_number"]
    assert by_id.attributes["given_name"].verified_method is None


async def test_an_eid_without_attributes_is_found_with_none(db: Database) -> None:
    _tenant_id, eid_id = await _person(db, {}, username="no-attributes")
    person = await db.read(lambda conn: eids.get(conn, eid_id))
    assert person.username == "no-attributes" and person.attributes == {}


async def test_an_unknown_eid_is_none_by_email(db: Database) -> None:
    tenant_id, _eid_id = await _person(db, {"email": "a@example.si"})
    found = await db.read(lambda conn: eids.find_by_email(conn, tenant_id=tenant_id, email="b@example.si"))
    assert found is None


async def test_loading_an_eid_takes_one_statement(tmp_path: Any) -> None:
    """One round trip, not one for the eID and another for its attributes (on PostgreSQL each
    statement is a send to the server and a wait for the answer)."""
    from idp.storage import migrate

    url = f"sqlite+aiosqlite:///{tmp_path / 'idp.db'}"
    await asyncio.to_thread(migrate.upgrade, url)
    db = Database(url)
    try:
        _tenant_id, eid_id = await _person(db, {"email": "a@example.si", "given_name": "Ana"})
        statements: list[str] = []

        def traced(conn: Connection) -> eids.EID:
            raw: Any = conn.connection.dbapi_connection
            raw.set_trace_callback(statements.append)
            try:
                return eids.get(conn, eid_id)
            finally:
                raw.set_trace_callback(None)

        person = await db.read(traced)
    finally:
        await db.close()
    assert set(person.attributes) == {"email", "given_name"}
    assert len(statements) == 1, statements
