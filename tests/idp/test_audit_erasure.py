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


async def test_an_event_about_an_eid_records_its_tenant_and_username(db: Database) -> None:
    """DESIGN.md: every event records tenant and username. An event that names only the eID (as
    one about a verified attribute or a status does) gets them from the eID; none after erasure."""
    tenant = await db.write(lambda tx: tenants.create(tx, slug="subject", name="Subject"))
    person = await db.write(
        lambda tx: eids.create(tx, tenant_id=tenant.id, attributes={"email": "named@example.com"})
    )
    await db.write(
        lambda tx: eids.set_verified(
            tx, eid_id=person.id, values={"phone_number": "+38640123456"}, method="sms", evidence_ref=None
        )
    )
    await db.write(
        lambda tx: eids.set_status(tx, eid_id=person.id, status=eids.EIDStatus.SUSPENDED, reason="t")
    )

    def events(conn: Any) -> list[dict[str, Any]]:
        c = tables.audit_events.c
        rows = conn.execute(select(tables.audit_events).where(c.eid_id == person.id).order_by(c.seq))
        return audit.readable(conn, [dict(r) for r in rows.mappings()])

    named = {e["event_type"]: e for e in await db.read(events)}
    for kind in ("eid.attributes_verified", "eid.status_changed"):
        assert named[kind]["tenant_id"] == tenant.id, kind
        assert named[kind]["username"] == "named@example.com", kind

    await db.write(lambda tx: eids.erase(tx, eid_id=person.id, reason="gdpr", actor="test"))
    erased = [e for e in await db.read(events) if e["event_type"] == "eid.erased"]
    assert erased[0]["tenant_id"] == tenant.id and erased[0]["username"] is None
