"""The audit trail: every DESIGN.md field recorded, tampering found at the first broken event.

On PostgreSQL the database is shared by the whole run, so each tampering is undone afterwards
(and the undo is checked by a passing verify).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, delete, select, update

from idp import audit, eids, tenants
from idp.errors import AuditChainError
from idp.storage import tables
from idp.storage.database import Database, Tx

E = tables.audit_events.c
H = tables.audit_head.c


async def _append(db: Database, count: int, **fields: Any) -> list[int]:
    """Append ``count`` events one by one; returns their seqs."""
    tag = uuid.uuid4().hex[:8]
    seqs = []
    for i in range(count):
        event = audit.AuditEvent("test.event", details={"tag": tag, "i": i}, **fields)

        def unit(tx: Tx, event: audit.AuditEvent = event) -> int:
            audit.record(tx, event)
            return tx.audit_head()[0]

        seqs.append(await db.write(unit))
    return seqs


def _row(conn: Connection, seq: int) -> dict[str, Any]:
    return dict(conn.execute(select(tables.audit_events).where(E.seq == seq)).mappings().one())


def _head(conn: Connection) -> dict[str, Any]:
    return dict(conn.execute(select(tables.audit_head)).mappings().one())


async def _raw(db: Database, fn: Callable[[Connection], object]) -> None:
    await db.write(lambda tx: fn(tx.conn))


@asynccontextmanager
async def _restored(db: Database, seqs: list[int]) -> AsyncIterator[None]:
    """Put the events ``seqs`` and the head back as they were, whatever the block did to them."""
    rows = [await db.read(lambda conn, s=s: _row(conn, s)) for s in seqs]  # type: ignore[misc]
    head = await db.read(_head)
    try:
        yield
    finally:

        def restore(conn: Connection) -> None:
            conn.execute(delete(tables.audit_events).where(E.seq.in_(seqs)))
            conn.execute(tables.audit_events.insert(), rows)
            if conn.execute(select(H.id)).first() is None:
                conn.execute(tables.audit_head.insert().values(head))
            conn.execute(update(tables.audit_head).values(seq=head["seq"], hash=head["hash"]))

        await _raw(db, restore)
        await db.read(audit.verify)


async def _broken_at(db: Database) -> int:
    with pytest.raises(AuditChainError) as caught:
        await db.read(audit.verify)
    assert re.match(rf"audit event #{caught.value.seq}: ", str(caught.value)), str(caught.value)
    return caught.value.seq


@pytest.fixture
async def trail(db: Database) -> list[int]:
    """Five events at the end of an intact trail."""
    seqs = await _append(db, 5)
    report = await db.read(audit.verify)
    assert report.head_seq == seqs[-1] == report.events
    return seqs


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("success", False),
        ("details", {"tag": "forged", "i": 0}),
        ("username", "mallory"),
        ("occurred_at", "2020-01-01T00:00:00.000000Z"),
        ("client_ip", "203.0.113.9"),
    ],
)
async def test_changed_field_is_found(db: Database, trail: list[int], column: str, value: object) -> None:
    middle = trail[2]
    async with _restored(db, trail):
        await _raw(
            db,
            lambda conn: conn.execute(
                update(tables.audit_events).where(E.seq == middle).values({column: value})
            ),
        )
        assert await _broken_at(db) == middle


async def test_the_first_of_several_changes_is_named(db: Database, trail: list[int]) -> None:
    async with _restored(db, trail):
        for seq in (trail[3], trail[1], trail[4]):
            await _raw(
                db,
                lambda conn, s=seq: conn.execute(
                    update(tables.audit_events).where(E.seq == s).values(success=False)
                ),  # type: ignore[misc]
            )
        assert await _broken_at(db) == trail[1]


async def test_changed_event_with_recomputed_hash_breaks_the_next_link(
    db: Database, trail: list[int]
) -> None:
    middle = trail[2]
    row = await db.read(lambda conn: _row(conn, middle))
    forged = {**row, "details": {"forged": True}}
    forged["hash"] = audit.chain_hash(row["prev_hash"], forged)
    async with _restored(db, trail):
        await _raw(
            db,
            lambda conn: conn.execute(
                update(tables.audit_events)
                .where(E.seq == middle)
                .values(details=forged["details"], hash=forged["hash"])
            ),
        )
        assert await _broken_at(db) == middle + 1


async def test_deleted_middle_event_is_found(db: Database, trail: list[int]) -> None:
    middle = trail[2]
    async with _restored(db, trail):
        await _raw(db, lambda conn: conn.execute(delete(tables.audit_events).where(E.seq == middle)))
        assert await _broken_at(db) == middle


async def test_deleted_tail_is_found_at_its_first_event(db: Database, trail: list[int]) -> None:
    """Cutting the newest events off (to hide them) leaves a head that names the lost end."""
    async with _restored(db, trail):
        await _raw(db, lambda conn: conn.execute(delete(tables.audit_events).where(E.seq >= trail[3])))
        assert await _broken_at(db) == trail[3]


async def test_swapped_events_are_found(db: Database, trail: list[int]) -> None:
    first, second = trail[1], trail[3]
    columns = [c for c in tables.audit_events.c.keys() if c != "seq"]

    def swap(conn: Connection) -> None:
        a, b = _row(conn, first), _row(conn, second)
        # ids are unique: park one first
        conn.execute(update(tables.audit_events).where(E.seq == first).values(id=str(uuid.uuid4())))
        conn.execute(update(tables.audit_events).where(E.seq == second).values({c: a[c] for c in columns}))
        conn.execute(update(tables.audit_events).where(E.seq == first).values({c: b[c] for c in columns}))

    async with _restored(db, trail):
        await _raw(db, swap)
        assert await _broken_at(db) == first


async def test_swapped_content_keeping_the_hashes_is_found(db: Database, trail: list[int]) -> None:
    first, second = trail[1], trail[2]
    content = ["event_type", "details", "success", "occurred_at"]

    def swap(conn: Connection) -> None:
        a, b = _row(conn, first), _row(conn, second)
        conn.execute(update(tables.audit_events).where(E.seq == first).values({c: b[c] for c in content}))
        conn.execute(update(tables.audit_events).where(E.seq == second).values({c: a[c] for c in content}))

    async with _restored(db, trail):
        await _raw(db, swap)
        assert await _broken_at(db) == first


async def test_changed_head_hash_is_found(db: Database, trail: list[int]) -> None:
    async with _restored(db, trail):
        await _raw(db, lambda conn: conn.execute(update(tables.audit_head).values(hash="f" * 64)))
        assert await _broken_at(db) == trail[-1]


async def test_head_ahead_of_the_trail_is_found(db: Database, trail: list[int]) -> None:
    async with _restored(db, trail):
        await _raw(db, lambda conn: conn.execute(update(tables.audit_head).values(seq=trail[-1] + 3)))
        assert await _broken_at(db) == trail[-1] + 1


async def test_trail_past_the_head_is_found(db: Database, trail: list[int]) -> None:
    """The head names an older event (e.g. it was rolled back together with the tail's deletion
    but the tail came back from a backup): the events it does not vouch for are the break."""
    async with _restored(db, trail):
        await _raw(
            db,
            lambda conn: conn.execute(
                update(tables.audit_head).values(seq=trail[2], hash=_row(conn, trail[2])["hash"])
            ),
        )
        assert await _broken_at(db) == trail[3]


async def test_deleted_head_is_found(db: Database, trail: list[int]) -> None:
    """Without its head the chain could be cut at the end unnoticed, so a missing head is a break."""
    async with _restored(db, trail):
        await _raw(db, lambda conn: conn.execute(delete(tables.audit_head)))
        with pytest.raises(AuditChainError):
            await db.read(audit.verify)


async def test_export_returns_one_transaction_in_order(db: Database) -> None:
    txn, other = f"txn-{uuid.uuid4()}", f"txn-{uuid.uuid4()}"
    steps = ["created", "sent", "opened", "signed"]
    for step in steps:
        await db.write(
            lambda tx, s=step: audit.record(  # type: ignore[misc]
                tx, audit.AuditEvent(f"document.{s}", transaction_id=txn, transaction_name="Contract 7")
            )
        )
        await db.write(lambda tx: audit.record(tx, audit.AuditEvent("document.noise", transaction_id=other)))
    exported = await db.read(lambda conn: audit.export_transaction(conn, txn))
    assert [e["event_type"] for e in exported] == [f"document.{s}" for s in steps]
    assert {e["transaction_id"] for e in exported} == {txn}
    seqs = [e["seq"] for e in exported]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    assert await db.read(lambda conn: audit.export_transaction(conn, "no-such-transaction")) == []


async def test_event_records_every_design_field(db: Database) -> None:
    tenant = await db.write(lambda tx: tenants.create(tx, slug=f"t{uuid.uuid4().hex[:10]}", name="Fields"))
    signer = await db.write(
        lambda tx: eids.create(tx, tenant_id=tenant.id, attributes={"email": "ana@example.com"})
    )
    event = audit.AuditEvent(
        "signature.created",
        success=False,
        tenant_id=tenant.id,
        eid_id=signer.id,
        username="ana@example.com",
        transaction_id="txn-42",
        transaction_name="Lease agreement",
        details={"login_method": "email_link", "loa": "urn:eid:loa:basic", "signature_type": "QES"},
        process_state="awaiting_signature",
        client_ip="198.51.100.7",
    )

    def unit(tx: Tx) -> tuple[str, float]:
        return audit.record(tx, event), tx.now

    event_id, now = await db.write(unit)
    row = await db.read(
        lambda conn: dict(conn.execute(select(tables.audit_events).where(E.id == event_id)).mappings().one())
    )
    assert uuid.UUID(row["id"])
    expected = {
        "tenant_id": event.tenant_id,
        "eid_id": event.eid_id,
        "username": "ana@example.com",
        "event_type": "signature.created",
        "success": False,
        "transaction_id": "txn-42",
        "transaction_name": "Lease agreement",
        "details": {"login_method": "email_link", "loa": "urn:eid:loa:basic", "signature_type": "QES"},
        "process_state": "awaiting_signature",
        "client_ip": "198.51.100.7",
    }
    assert row["username"] != "ana@example.com"  # personal data is encrypted at rest (erasable)
    readable = await db.read(lambda conn: audit.readable(conn, [row])[0])
    assert {k: readable[k] for k in expected} == expected
    occurred = datetime.strptime(row["occurred_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs(occurred.timestamp() - now) < 1e-3
    assert row["hash"] == audit.chain_hash(row["prev_hash"], row)
    exported = await db.read(lambda conn: audit.export_transaction(conn, "txn-42"))
    assert exported[-1]["id"] == event_id
    await db.read(audit.verify)


@pytest.mark.parametrize(
    "ts",
    [
        0.0,
        1_796_588_712.0,
        1_796_588_712.2019,
        1_796_588_712.9999995,  # rounds up into the next second
        1_796_588_712.9999994,
        1_796_588_712.0000005,  # half a microsecond: rounded half to even, as datetime does
        1_796_588_712.0000015,
        1_798_761_599.999_999_9,  # the last instant of a year
        4_102_444_800.5,
    ],
)
def test_event_time_is_the_text_of_its_utc_datetime(ts: float) -> None:
    expected = datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    assert audit._iso(ts) == expected
    assert audit._iso(ts + 1.25) == datetime.fromtimestamp(ts + 1.25, UTC).isoformat(
        timespec="microseconds"
    ).replace("+00:00", "Z")  # another second after it: the cached day and time move on
    assert audit._iso(ts) == expected
