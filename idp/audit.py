"""The tamper-evident audit trail: append-only, hash-chained events.

Each event's ``hash`` is SHA-256 over the previous event's hash and a canonical JSON form of
every recorded field, so changing, removing or reordering any event breaks the chain from there
on. Events are appended inside the transaction of the state change they describe
(:func:`record`), so a change and its event commit or fail together.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from idp.errors import AuditChainError
from idp.storage import tables
from idp.storage.database import GENESIS_HASH, Tx

FIELDS = (
    "seq",
    "id",
    "tenant_id",
    "eid_id",
    "username",
    "event_type",
    "occurred_at",
    "success",
    "transaction_id",
    "transaction_name",
    "details",
    "process_state",
    "client_ip",
)


@dataclass(slots=True, frozen=True)
class AuditEvent:
    """One thing that happened. ``details`` holds login method, LoA, signature type and the like."""

    event_type: str
    success: bool = True
    tenant_id: str | None = None
    eid_id: str | None = None
    username: str | None = None
    transaction_id: str | None = None
    transaction_name: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    process_state: str | None = None
    client_ip: str | None = None


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def chain_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    """SHA-256 of the previous hash and the canonical JSON of the event's fields."""
    body = json.dumps(
        {name: row[name] for name in FIELDS}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


def record(tx: Tx, event: AuditEvent) -> str:
    """Append ``event`` to the trail within ``tx``; returns the event id."""
    seq, prev = tx.audit_head()
    row: dict[str, Any] = {
        "seq": seq + 1,
        "id": str(uuid.uuid4()),
        "tenant_id": event.tenant_id,
        "eid_id": event.eid_id,
        "username": event.username,
        "event_type": event.event_type,
        "occurred_at": _iso(tx.now),
        "success": event.success,
        "transaction_id": event.transaction_id,
        "transaction_name": event.transaction_name,
        "details": dict(event.details),
        "process_state": event.process_state,
        "client_ip": event.client_ip,
    }
    row["prev_hash"] = prev
    row["hash"] = chain_hash(prev, row)
    tx.defer_insert(tables.audit_events, row)
    tx.advance_audit_head(seq + 1, row["hash"])
    return str(row["id"])


def _rows(conn: Connection, *, batch: int = 1000) -> Iterator[dict[str, Any]]:
    last = 0
    cols = tables.audit_events.c
    while True:
        chunk = (
            conn.execute(select(tables.audit_events).where(cols.seq > last).order_by(cols.seq).limit(batch))
            .mappings()
            .all()
        )
        if not chunk:
            return
        for row in chunk:
            yield dict(row)
        last = int(chunk[-1]["seq"])


@dataclass(slots=True, frozen=True)
class VerifyReport:
    events: int
    head_seq: int
    head_hash: str


def verify(conn: Connection) -> VerifyReport:
    """Walk the whole chain; raise :class:`AuditChainError` at the first broken link."""
    if conn.dialect.name == "postgresql" and not conn.in_transaction():
        # one snapshot for the events and the head: appends committing while we read (other
        # instances keep serving) must not look like a trail that ends before its head
        conn.execution_options(isolation_level="REPEATABLE READ")
    prev = GENESIS_HASH
    expected_seq = 1
    count = 0
    for row in _rows(conn):
        seq = int(row["seq"])
        if seq != expected_seq:
            raise AuditChainError(expected_seq, f"missing; the next event present is #{seq}")
        if row["prev_hash"] != prev:
            raise AuditChainError(seq, "prev_hash does not match the hash of the event before it")
        if chain_hash(prev, row) != row["hash"]:
            raise AuditChainError(seq, "its content does not match its hash (the event was altered)")
        prev = row["hash"]
        expected_seq += 1
        count += 1
    head = conn.execute(select(tables.audit_head).where(tables.audit_head.c.id == 1)).mappings().one_or_none()
    # the head vouches for the end of the trail: without it, cutting off the newest events would
    # leave a chain that verifies
    if head is None:
        raise AuditChainError(count, "the chain head is missing (the schema creates it; nothing deletes it)")
    head_seq = int(head["seq"])
    if head_seq > count:
        raise AuditChainError(
            count + 1, f"missing; the chain head names #{head_seq} but the trail ends at #{count}"
        )
    if head_seq < count:
        raise AuditChainError(
            head_seq + 1, f"the trail goes on to #{count} past the chain head at #{head_seq}"
        )
    if head["hash"] != prev:
        raise AuditChainError(count, "the last event's hash does not match the chain head")
    return VerifyReport(events=count, head_seq=count, head_hash=prev)


def export_transaction(conn: Connection, transaction_id: str) -> list[dict[str, Any]]:
    """Every event of one transaction, oldest first, as JSON-ready dicts."""
    cols = tables.audit_events.c
    rows = conn.execute(
        select(tables.audit_events).where(cols.transaction_id == transaction_id).order_by(cols.seq)
    ).mappings()
    return [dict(r) for r in rows]
