"""Usernames in the audit trail are encrypted per eID and become unreadable when it is erased."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from idp import audit, eids, tenants
from idp.storage import tables
from idp.storage.database import Database


async def test_erasure_shreds_the_username_and_keeps_the_chain(db: Database) -> None:
    tenant = await db.write(lambda tx: tenants.create(tx, slug="erasure", name="Erasure"))
    person = await db.write(
        lambda tx: eids.create(tx, tenant_id=tenant.id, attributes={"email": "gone.soon@example.com"})
    )
    await db.write(
        lambda tx: audit.record(
            tx,
            audit.AuditEvent(
                "login.succeeded",
                tenant_id=tenant.id,
                eid_id=person.id,
                username=person.username,
                transaction_id="tx-erasure",
            ),
        )
    )

    def raw(conn: Any) -> list[Any]:
        c = tables.audit_events.c
        return list(conn.execute(select(c.username).where(c.eid_id == person.id)).scalars())

    stored = await db.read(raw)
    assert stored and all(name and "gone.soon" not in name for name in stored)  # encrypted at rest
    before = await db.read(lambda conn: audit.export_transaction(conn, "tx-erasure"))
    assert before[0]["username"] == "gone.soon@example.com"  # readable while the eID exists

    await db.write(lambda tx: eids.erase(tx, eid_id=person.id, reason="gdpr", actor="test"))

    after = await db.read(lambda conn: audit.export_transaction(conn, "tx-erasure"))
    assert after[0]["username"] is None and after[0]["eid_id"] == person.id  # pseudonymous
    report = await db.read(audit.verify)  # every event is still there, the chain intact
    assert report.events >= 3
    dump = " ".join(
        str(r) for r in await db.read(lambda conn: list(conn.execute(select(tables.audit_events))))
    )
    assert "gone.soon" not in dump
