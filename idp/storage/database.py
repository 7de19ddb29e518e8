"""One way to read and write, on SQLite and on PostgreSQL.

Units of work are plain synchronous functions of a :class:`Tx` (SQLAlchemy Core on a sync
connection). They are written once and driven two ways:

* **SQLite** has one writer. Queued units run together in one transaction, committed at once
  (group commit, see :class:`_SqliteWriter`). If any unit raises, that transaction is rolled
  back and each unit of the batch runs again in a transaction of its own, so only the failing one
  fails: units must therefore be safe to run twice (they only touch the database they are given).
  Every caller's ``await`` returns only after its own commit. Reads are primary-key lookups that
  run directly: on the writer's connection between commits when commits run on the event loop
  (``synchronous=NORMAL``: its page cache stays warm), else on a second connection (WAL lets
  them proceed during a commit). Hot statements run on the driver itself
  (:mod:`idp.storage.prepared`).
* **PostgreSQL** runs each unit in its own transaction on the asyncpg driver through
  ``AsyncConnection.run_sync``, on a connection kept between units (:mod:`idp.storage.held`);
  concurrency comes from the server; hot statements go to the dialect's DBAPI cursor
  (:mod:`idp.storage.prepared`). Reads run in autocommit:
  each statement is its own transaction, which is what READ COMMITTED gives a statement inside
  one anyway, without the BEGIN and ROLLBACK round trips around them (two of the three a
  one-statement read took, each a send to the server and a wait for its answer).

Rows that nobody reads back in the same unit (audit events, issued tokens) may be deferred with
:meth:`Tx.defer_insert`; they are inserted with one ``executemany`` per table per batch, or on
PostgreSQL, when the audit chain's head moved, in the statement that moves it (:func:`_flush`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    Update,
    bindparam,
    create_engine,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from idp.cpus import name_os_thread
from idp.storage import tables
from idp.storage.checkpoint import Checkpointer
from idp.storage.held import HeldConnections, end_autobegun
from idp.storage.prepared import Prepared, insert_rows

log = logging.getLogger(__name__)
T = TypeVar("T")

GENESIS_HASH = "0" * 64


@dataclass(slots=True)
class _Batch:
    """State shared by the units of one transaction: deferred rows and the audit chain's head."""

    deferred: list[tuple[Table, dict[str, Any]]] = field(default_factory=list)
    head: tuple[int, str] | None = None
    head_loaded: tuple[int, str] | None = None


class Tx:
    """What a unit of work sees: a connection, the time, and deferred inserts."""

    __slots__ = ("_batch", "conn", "now")

    def __init__(self, conn: Connection, batch: _Batch, now: float) -> None:
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


def _flush(conn: Connection, batch: _Batch) -> None:
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


def _run_unit(conn: Connection, unit: Callable[[Tx], T]) -> T:
    """Run one unit in a transaction of its own and flush what it deferred (PostgreSQL path)."""
    with conn.begin():
        batch = _Batch()
        result = unit(Tx(conn, batch, time.time()))
        _flush(conn, batch)
        return result


def _read(conn: Connection, fn: Callable[[Connection], T]) -> T:
    result = fn(conn)
    end_autobegun(conn)
    return result


class Database:
    """Reads and writes through units of work; see the module docstring."""

    def __init__(self, url: str, *, echo: bool = False, sqlite_synchronous: str = "NORMAL") -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self._async_engine: AsyncEngine | None = None
        self._writes: HeldConnections | None = None
        self._reads: HeldConnections | None = None
        self._writer: _SqliteWriter | None = None
        self.sync_engine: Engine | None = None
        if self.is_sqlite:
            self.sync_engine = _sqlite_engine(
                parsed.database or "", echo=echo, synchronous=sqlite_synchronous
            )
            self._writer = _SqliteWriter(self.sync_engine, inline_commit=sqlite_synchronous == "NORMAL")
        else:
            async_url = parsed.set(drivername="postgresql+asyncpg")
            self._async_engine = create_async_engine(async_url, echo=echo, pool_size=10, max_overflow=10)
            self._writes = HeldConnections(self._async_engine, keep=5)
            # the same pool; a connection is in autocommit while reads hold it
            self._reads = HeldConnections(
                self._async_engine.execution_options(isolation_level="AUTOCOMMIT"), keep=5
            )

    async def write(self, unit: Callable[[Tx], T]) -> T:
        """Run ``unit`` in a transaction; return its result once committed, or raise its error."""
        if self._writer is not None:
            return await self._writer.submit(unit)
        assert self._writes is not None
        return await self._writes.run(_run_unit, unit)

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn``, which only reads, on a connection; each of its statements sees what was
        committed before it (on PostgreSQL each statement in a transaction of its own, and on
        SQLite a statement at a time between the writer's commits). ``fn`` must not write: on
        PostgreSQL what it wrote would stay.

        On PostgreSQL a read whose connection turns out to be lost (the server restarted or failed
        over since it was last used) runs once more on a new one: it wrote nothing, so running it
        again changes nothing, and the request it serves does not fail. A write is not run again."""
        if self._writer is not None:
            return self._writer.read(fn)
        assert self._reads is not None
        try:
            return await self._reads.run(_read, fn)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            log.warning("a read's database connection was lost (%s); reading again on a new one", exc.orig)
            return await self._reads.run(_read, fn)

    async def ping(self) -> None:
        await self.read(lambda conn: conn.exec_driver_sql("SELECT 1").scalar())

    async def close(self) -> None:
        if self._writer is not None:
            await self._writer.drain()
            await asyncio.get_running_loop().run_in_executor(None, self._writer.stop)
        if self.sync_engine is not None:
            self.sync_engine.dispose()
        for held in (self._reads, self._writes):
            if held is not None:
                await held.close()
        if self._async_engine is not None:
            await self._async_engine.dispose()


def _bind_without_lookups() -> None:
    """sqlite3 binds int, float and str as they are, but sends each None and bytes parameter
    through its adapter registry, where a miss costs two failed attribute lookups (``__adapt__``,
    ``__conform__``), each formatting an AttributeError, before the value is bound unchanged. A
    token request binds a dozen NULLs. Registering the identity for those two types makes that one
    dictionary hit; what is bound does not change (None as NULL, bytes as a BLOB)."""
    none: Callable[[None], None] = {}.get  # type: ignore[assignment]  # an empty dict's get: C, None for None
    sqlite3.register_adapter(type(None), none)
    sqlite3.register_adapter(bytes, bytes)  # bytes(b) is b for an exact bytes object


def _sqlite_engine(path: str, *, echo: bool, synchronous: str) -> Engine:
    _bind_without_lookups()
    if synchronous not in ("NORMAL", "FULL", "EXTRA"):
        raise ValueError(f"sqlite synchronous must be NORMAL, FULL or EXTRA, got {synchronous!r}")
    if path and path != ":memory:":
        from pathlib import Path

        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        f"sqlite+pysqlite:///{path}",
        echo=echo,
        connect_args={"check_same_thread": False, "timeout": 30},
        poolclass=NullPool if not path or path == ":memory:" else None,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # let SQLAlchemy, not the driver, decide where transactions begin (needed for SAVEPOINT)
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        # WAL + NORMAL: a commit survives a crash of the process (the response waits for it); FULL
        # also survives power loss at the cost of an fsync per commit group
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute(f"PRAGMA busy_timeout={5000 if synchronous == 'NORMAL' else 30000}")
        # hot B-tree pages (random token digests) stay in memory instead of being re-read per commit
        cur.execute("PRAGMA cache_size=-65536")
        cur.execute("PRAGMA mmap_size=268435456")
        # checkpoints run on the checkpointer's thread, never inside a commit on the event loop
        cur.execute("PRAGMA wal_autocheckpoint=0")
        # after a burst has grown it, the WAL shrinks back to this when it starts over
        cur.execute("PRAGMA journal_size_limit=67108864")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # IMMEDIATE takes the write lock up front so a batch never fails half-way on SQLITE_BUSY
        mode = conn.info.pop("sqlite_begin_once", None) or conn.get_execution_options().get(
            "sqlite_begin", "DEFERRED"
        )
        # on the driver itself: SQLAlchemy's own execution costs more than the BEGIN
        conn.connection.driver_connection.execute(f"BEGIN {mode}")  # type: ignore[union-attr]

    return engine


_Item = tuple[Callable[[Tx], Any], asyncio.Future[Any]]


class _SqliteWriter:
    """SQLite's one writer: group commit on the event loop.

    Units queue up; a pump on the event loop runs a whole batch's statements (fast: they touch
    SQLite's page cache only) and commits them at once. With ``synchronous=FULL`` the COMMIT
    (an fsync) runs on a dedicated thread and requests arriving meanwhile form the next batch.
    Checkpoints, which copy the WAL back into the database file, run on their own thread
    (:class:`Checkpointer`) so no commit ever waits for one.
    """

    MAX_BATCH = 512

    def __init__(self, engine: Engine, *, inline_commit: bool) -> None:
        self._engine = engine
        self._inline_commit = inline_commit
        self._checkpointer = Checkpointer(engine)
        self._pending: list[_Item] = []
        self._conn: Connection | None = None
        self._read_conn: Connection | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._committer = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="idp-sqlite-commit", initializer=name_os_thread
        )

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self._engine.connect().execution_options(sqlite_begin="IMMEDIATE")
        return self._conn

    def _reset_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # already unusable; dropping it is all that is left
                conn.invalidate()

    def read(self, fn: Callable[[Connection], T]) -> T:
        if self._inline_commit:
            # commits run on the event loop, so between two of them this connection is idle: reading
            # on it keeps its page cache, which SQLite drops on any other connection after each
            # commit (a primary-key lookup costs twice as much there)
            # No BEGIN of its own: a statement on the driver runs as its own (implicit) transaction,
            # each seeing what was committed before it, as PostgreSQL's READ COMMITTED does. On one
            # event loop with this as the only writer, nothing commits between the statements of
            # ``fn`` (it does not await). A Core statement begins a DEFERRED transaction (SQLAlchemy's
            # autobegin), which ends here. A BEGIN and COMMIT per read were about a tenth of the
            # CPU of a refresh-token grant (bench/token_inprocess.py).
            conn = self._connection()
            assert not conn.in_transaction()
            info = conn.info
            info["sqlite_begin_once"] = "DEFERRED"  # a read takes no write lock
            try:
                result = fn(conn)
                if conn.in_transaction():
                    conn.commit()
                return result
            except Exception:
                if conn.invalidated:
                    self._reset_connection()
                elif conn.in_transaction():
                    conn.rollback()
                raise
            finally:
                info.pop("sqlite_begin_once", None)  # the next write begins IMMEDIATE again
        if self._read_conn is None:
            self._read_conn = self._engine.connect()
        conn = self._read_conn
        try:
            with conn.begin():
                return fn(conn)
        except Exception:
            if conn.invalidated:
                self._read_conn = None
            raise

    def submit(self, unit: Callable[[Tx], T]) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((unit, future))
        if self._pump_task is None:
            self._pump_task = loop.create_task(self._pump())
        return future

    async def drain(self) -> None:
        if self._pump_task is not None:
            await asyncio.shield(self._pump_task)

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        # let the requests already readable in this loop iteration queue up too: larger groups
        await asyncio.sleep(0)
        try:
            while self._pending:
                if self._checkpointer.restart_due:
                    # no write transaction is open between batches: let the WAL be copied whole
                    # a failed or slow checkpoint must not fail or stall the writes
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(asyncio.wrap_future(self._checkpointer.catch_up()), 2.0)
                items = self._pending[: self.MAX_BATCH]
                del self._pending[: self.MAX_BATCH]
                outcomes: list[tuple[bool, Any]] = []
                try:
                    conn = self._connection()
                    together = await self._together(loop, conn, items) if len(items) > 1 else None
                    if together is not None:
                        outcomes = together
                    else:
                        # a unit failed (or ran alone): each in its own transaction, so only it fails
                        for unit, _future in items:
                            outcomes.append(await self._alone(loop, conn, unit))
                except Exception as exc:  # the connection itself broke: fail what has not run, keep pumping
                    outcomes += [(False, exc)] * (len(items) - len(outcomes))
                    self._reset_connection()
                _resolve(
                    [
                        (future, ok, value)
                        for (_unit, future), (ok, value) in zip(items, outcomes, strict=True)
                    ]
                )
        finally:
            self._pump_task = None

    async def _commit(self, loop: asyncio.AbstractEventLoop, trans: Any) -> None:
        if self._inline_commit:
            # WAL with synchronous=NORMAL: a commit appends to the WAL without fsync (tens of
            # microseconds for a batch), cheaper than a hop to a thread and back
            trans.commit()
        else:
            await loop.run_in_executor(self._committer, trans.commit)
        self._checkpointer.poke()

    async def _together(
        self, loop: asyncio.AbstractEventLoop, conn: Connection, items: list[_Item]
    ) -> list[tuple[bool, Any]] | None:
        batch = _Batch()
        trans = conn.begin()
        try:
            results: list[tuple[bool, Any]] = [
                (True, unit(Tx(conn, batch, time.time()))) for unit, _f in items
            ]
            _flush(conn, batch)
        except Exception:
            trans.rollback()
            return None
        try:
            await self._commit(loop, trans)
        except Exception as exc:  # the commit failed: nobody's work is durable
            if trans.is_active:
                trans.rollback()
            return [(False, exc)] * len(items)
        return results

    async def _alone(
        self, loop: asyncio.AbstractEventLoop, conn: Connection, unit: Callable[[Tx], Any]
    ) -> tuple[bool, Any]:
        batch = _Batch()
        trans = conn.begin()
        try:
            result = unit(Tx(conn, batch, time.time()))
            _flush(conn, batch)
            await self._commit(loop, trans)
        except Exception as exc:
            if trans.is_active:
                trans.rollback()
            return False, exc
        return True, result

    def stop(self) -> None:
        self._committer.shutdown(wait=True)
        self._checkpointer.stop()
        for conn in (self._conn, self._read_conn):
            if conn is not None:
                conn.close()
        self._conn = self._read_conn = None


def _resolve(results: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in results:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
