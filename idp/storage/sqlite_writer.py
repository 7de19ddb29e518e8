"""SQLite's engine and its one writer: group commit on the event loop (see
:mod:`idp.storage.database` for how units of work are driven)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import NullPool

from idp.cpus import name_os_thread
from idp.storage.checkpoint import Checkpointer
from idp.storage.units import Batch, Tx, flush

log = logging.getLogger(__name__)
T = TypeVar("T")


def _bind_without_lookups() -> None:
    """sqlite3 binds int, float and str as they are, but sends each None and bytes parameter
    through its adapter registry, where a miss costs two failed attribute lookups (``__adapt__``,
    ``__conform__``), each formatting an AttributeError, before the value is bound unchanged. A
    token request binds a dozen NULLs. Registering the identity for those two types makes that one
    dictionary hit; what is bound does not change (None as NULL, bytes as a BLOB)."""
    none: Callable[[None], None] = {}.get  # type: ignore[assignment]  # an empty dict's get: C, None for None
    sqlite3.register_adapter(type(None), none)
    sqlite3.register_adapter(bytes, bytes)  # bytes(b) is b for an exact bytes object


def sqlite_engine(path: str, *, echo: bool, synchronous: str) -> Engine:
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


class SqliteWriter:
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
        batch = Batch()
        trans = conn.begin()
        try:
            results: list[tuple[bool, Any]] = [
                (True, unit(Tx(conn, batch, time.time()))) for unit, _f in items
            ]
            flush(conn, batch)
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
        batch = Batch()
        trans = conn.begin()
        try:
            result = unit(Tx(conn, batch, time.time()))
            flush(conn, batch)
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
