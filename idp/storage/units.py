"""What a unit of work sees (:class:`Tx`) and how what it deferred is written.

A unit is a plain synchronous function of a :class:`Tx`: a connection, the time, deferred
inserts and the audit chain's head, shared by the units of one transaction (:class:`Batch`).
At the end of the transaction :func:`flush` writes the deferred rows, one ``executemany`` per
table, or on PostgreSQL, when the audit chain's head moved, in the statement that moves it.
:mod:`idp.storage.database` drives units on either engine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection, Table, Update, bindparam, insert, select, update
from sqlalchemy.exc import DBAPIError

from idp.storage import tables
from idp.storage.prepared import Prepared, insert_rows

T = TypeVar("T")

GENESIS_HASH = "0" * 64


@dataclass(slots=True)
class Batch:
    """State shared by the units of one transaction: deferred rows and the audit chain's head."""

    deferred: list[tuple[Table, dict[str, Any]]] = field(default_factory=list)
    head: tuple[int, str] | None = None
    head_loaded: tuple[int, str] | None = None


class Tx:
    """What a unit of work sees: a connection, the time, and deferred inserts."""

    __slots__ = ("_batch", "conn", "now")

    def __init__(self, conn: Connection, batch: Batch, now: float) -> None:
        self.conn = conn
        self.now = now
        self._batch = batch

    def defer_insert(self, table: Table, row: dict[str, Any]) -> None:
        """Insert ``row`` at the end of the batch (not visible to reads in this unit)."""
        self._batch.deferred.append((table, row))

    def audit_head(self) -> tuple[int, str]:
        """The chain's head ``(seq, hash)``, locked for the rest of the transaction."""
        if self._batch.head is None:
            row = _HEAD_FOR_UPDATE.first(self.conn)
            if row is None:
                self.conn.execute(tables.audit_head.insert().values(id=1, seq=0, hash=GENESIS_HASH))
                self._batch.head = (0, GENESIS_HASH)
            else:
                self._batch.head = (int(row["seq"]), str(row["hash"]))
            self._batch.head_loaded = self._batch.head
        return self._batch.head

    def advance_audit_head(self, seq: int, digest: str) -> None:
        self._batch.head = (seq, digest)


# built once and run on the driver (idp.storage.prepared): every audited write runs both
_HEAD_FOR_UPDATE = Prepared(
    select(tables.audit_head.c.seq, tables.audit_head.c.hash)
    .where(tables.audit_head.c.id == 1)
    .with_for_update()
)
_HEAD_UPDATE = Prepared(
    update(tables.audit_head)
    .where(tables.audit_head.c.id == 1)
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)


# the deferred rows of one unit and the head's update in one statement, by the unit's shape: its
# tables and how many rows of each (a few shapes recur: a sign-in step's events, a token grant's)
_FLUSHES: dict[tuple[tuple[Table, int], ...], Prepared] = {}
_FLUSHES_MAX = 256
_TOGETHER_MAX_ROWS = 32  # more (a bulk unit's events) go as before: one executemany per table


def _flush_statement(shape: tuple[tuple[Table, int], ...]) -> Prepared:
    flush = _FLUSHES.get(shape)
    if flush is None:
        rows = [
            insert(table)
            .values(
                [
                    {c.name: bindparam(f"t{k}r{i}_{c.name}", type_=c.type) for c in table.c}
                    for i in range(count)
                ]
            )
            .cte(f"rows_{k}")
            for k, (table, count) in enumerate(shape)
        ]
        assert isinstance(_HEAD_UPDATE.statement, Update)
        flush = Prepared(_HEAD_UPDATE.statement.add_cte(*rows))
        if len(_FLUSHES) < _FLUSHES_MAX:
            _FLUSHES[shape] = flush
    return flush


def _flush_together(
    conn: Connection, grouped: list[tuple[Table, list[dict[str, Any]]]], head: tuple[int, str]
) -> None:
    """On PostgreSQL: the deferred rows and the head's update as one statement (a round trip
    each costs the event loop about as much as the statement's own work). The head was read
    FOR UPDATE earlier in this transaction, so the chain is as safe as with separate statements."""
    params: dict[str, Any] = {"new_seq": head[0], "new_hash": head[1]}
    for k, (_table, rows) in enumerate(grouped):
        for i, row in enumerate(rows):
            params.update({f"t{k}r{i}_{name}": value for name, value in row.items()})
    _flush_statement(tuple((table, len(rows)) for table, rows in grouped)).run(conn, params)


def flush(conn: Connection, batch: Batch) -> None:
    head = batch.head if batch.head is not None and batch.head != batch.head_loaded else None
    grouped: dict[str, tuple[Table, list[dict[str, Any]]]] = {}
    for table, row in batch.deferred:
        grouped.setdefault(table.name, (table, []))[1].append(row)
    if (
        head is not None
        and conn.dialect.name == "postgresql"
        and 0 < len(batch.deferred) <= _TOGETHER_MAX_ROWS
        and all(len(row) == len(table.c) for table, row in batch.deferred)
    ):
        batch.deferred.clear()
        _flush_together(conn, list(grouped.values()), head)
        return
    batch.deferred.clear()
    for table, rows in grouped.values():
        insert_rows(conn, table, rows)
    if head is not None:
        _HEAD_UPDATE.run(conn, {"new_seq": head[0], "new_hash": head[1]})


class LostBeforeCommitError(Exception):
    """The connection was lost while a unit ran, before its COMMIT was sent: the server rolled
    its transaction back when the session ended, so nothing of it was committed."""

    def __init__(self, error: DBAPIError) -> None:
        super().__init__(str(error))
        self.error = error


def run_unit(conn: Connection, unit: Callable[[Tx], T]) -> T:
    """Run one unit in a transaction of its own and flush what it deferred (PostgreSQL path).

    A connection lost before the COMMIT raises :class:`LostBeforeCommitError`; one lost at the
    COMMIT raises the driver's error as it is, since the transaction may have been committed."""
    with conn.begin():
        batch = Batch()
        try:
            result = unit(Tx(conn, batch, time.time()))
            flush(conn, batch)
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise LostBeforeCommitError(exc) from exc
            raise
        return result
