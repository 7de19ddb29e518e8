"""The tamper-evident audit trail: append-only, hash-chained events.

Each event's ``hash`` is SHA-256 over the previous event's hash and a canonical JSON form of
every recorded field, so changing, removing or reordering any event breaks the chain from there
on. Events are appended inside the transaction of the state change they describe
(:func:`record`), so a change and its event commit or fail together.

The personal data of an event, its ``username``, is stored encrypted (AES-256-GCM) under a key
of the eID's own (``audit_subject_keys``). Erasing the eID deletes that key with it
(crypto-shredding, GDPR Art. 17): the trail keeps every event and its hash chain, and what is left
is pseudonymous — the eID's random id. Readers (:func:`export_transaction`, :func:`readable`)
decrypt while the key exists and show ``None`` after erasure.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, bindparam, select

from idp.errors import AuditChainError
from idp.ids import uuid7
from idp.storage import tables
from idp.storage.database import GENESIS_HASH, Tx
from idp.storage.prepared import Prepared

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


_second: tuple[int, str] = (-1, "")  # the last whole second formatted, and its text


def _iso(ts: float) -> str:
    """2026-11-22T07:44:26.123456Z: the text of ``datetime.fromtimestamp(ts, UTC)`` to the
    microsecond (rounded half to even, as it rounds), with Z for +00:00. The date and time of day
    are formatted once per second: isoformat cost as much as the rest of the event's fields."""
    second = math.floor(ts)
    micros = round((ts - second) * 1e6)  # exact: ts - second is the fraction, with no rounding
    if micros == 1_000_000:
        second, micros = second + 1, 0
    global _second
    known = _second  # one read: another thread may replace it meanwhile
    if known[0] != second:
        known = _second = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    return f"{known[1]}.{micros:06d}Z"


# built once: json.dumps with options builds an encoder per call, a third of the hash's cost
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    """SHA-256 of the previous hash and the canonical JSON of the event's fields."""
    body = _CANONICAL.encode({name: row[name] for name in FIELDS})
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


_SEALED = "aes256gcm:"
_KEYS = tables.audit_subject_keys.c
# keys never change while their eID exists; an erased eID has no further events to encrypt.
# The cipher itself is kept: building one (its key schedule) cost as much as the encryption.
_CIPHER_CACHE: dict[str, AESGCM] = {}
_CIPHER_CACHE_MAX = 50_000
# a sign-in's first event for its eID misses the cache in all but the busiest processes: built
# per call, this select cost SQLAlchemy more than the rest of the event
_KEY_OF = Prepared(select(_KEYS.key).where(_KEYS.eid_id == bindparam("eid_id")))


def _subject_cipher(tx: Tx, eid_id: str) -> AESGCM | None:
    cipher = _CIPHER_CACHE.get(eid_id)
    if cipher is not None:
        return cipher
    key = _KEY_OF.scalar(tx.conn, {"eid_id": eid_id})
    if key is None:
        if tx.conn.execute(select(tables.eids.c.id).where(tables.eids.c.id == eid_id)).first() is None:
            return None  # no such eID (any more): nothing personal may be written for it
        key = os.urandom(32)
        tx.conn.execute(tables.audit_subject_keys.insert().values(eid_id=eid_id, key=key, created_at=tx.now))
        return AESGCM(key)  # cached only once read back committed: this transaction may still roll back
    if len(_CIPHER_CACHE) >= _CIPHER_CACHE_MAX:
        _CIPHER_CACHE.clear()
    cipher = _CIPHER_CACHE[eid_id] = AESGCM(bytes(key))
    return cipher


def _seal_username(tx: Tx, eid_id: str | None, username: str | None) -> str | None:
    if username is None or eid_id is None:
        return username
    cipher = _subject_cipher(tx, eid_id)
    if cipher is None:
        return None
    nonce = os.urandom(12)
    sealed = cipher.encrypt(nonce, username.encode(), eid_id.encode())
    return _SEALED + base64.b64encode(nonce + sealed).decode()


def readable(conn: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` with their usernames decrypted where the eID's key still exists (else ``None``)."""
    wanted = {
        r["eid_id"] for r in rows if isinstance(r.get("username"), str) and r["username"].startswith(_SEALED)
    }
    keys = (
        {
            k.eid_id: bytes(k.key)
            for k in conn.execute(select(_KEYS.eid_id, _KEYS.key).where(_KEYS.eid_id.in_(wanted)))
        }
        if wanted
        else {}
    )
    out = []
    for row in rows:
        name = row.get("username")
        if isinstance(name, str) and name.startswith(_SEALED):
            key = keys.get(row["eid_id"])
            if key is None:
                name = None  # erased
            else:
                raw = base64.b64decode(name[len(_SEALED) :])
                name = AESGCM(key).decrypt(raw[:12], raw[12:], str(row["eid_id"]).encode()).decode()
        out.append({**row, "username": name})
    return out


_SUBJECT = Prepared(
    select(tables.eids.c.tenant_id, tables.eids.c.username).where(tables.eids.c.id == bindparam("id"))
)


def record(tx: Tx, event: AuditEvent) -> str:
    """Append ``event`` to the trail within ``tx``; returns the event id. An event about an eID
    that does not name its tenant or username gets them from the eID (every event records both)."""
    tenant_id, username = event.tenant_id, event.username
    if event.eid_id is not None and (tenant_id is None or username is None):
        subject = _SUBJECT.first(tx.conn, {"id": event.eid_id})
        if subject is not None:
            tenant_id, username = tenant_id or subject["tenant_id"], username or subject["username"]
    seq, prev = tx.audit_head()
    row: dict[str, Any] = {
        "seq": seq + 1,
        "id": uuid7(),  # time-ordered: appends to the id index
        "tenant_id": tenant_id,
        "eid_id": event.eid_id,
        "username": _seal_username(tx, event.eid_id, username),
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
    return readable(conn, [dict(r) for r in rows])
