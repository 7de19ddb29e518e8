"""One way to read and write, on SQLite and on PostgreSQL.

Units of work are plain synchronous functions of a :class:`Tx` (SQLAlchemy Core on a sync
connection). They are written once and driven two ways:

* **SQLite** has one writer. Queued units run together in one transaction, committed at once
  (group commit, :mod:`idp.storage.sqlite_writer`). If any unit raises, that transaction is rolled
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
PostgreSQL, when the audit chain's head moved, in the statement that moves it
(:mod:`idp.storage.units`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from idp.storage.held import HeldConnections, end_autobegun
from idp.storage.sqlite_writer import SqliteWriter, sqlite_engine
from idp.storage.units import GENESIS_HASH, LostBeforeCommitError, Tx, run_unit

__all__ = ["GENESIS_HASH", "Database", "Tx"]

log = logging.getLogger(__name__)
T = TypeVar("T")


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
        self._writer: SqliteWriter | None = None
        self.sync_engine: Engine | None = None
        if self.is_sqlite:
            self.sync_engine = sqlite_engine(parsed.database or "", echo=echo, synchronous=sqlite_synchronous)
            self._writer = SqliteWriter(self.sync_engine, inline_commit=sqlite_synchronous == "NORMAL")
        else:
            async_url = parsed.set(drivername="postgresql+asyncpg")
            self._async_engine = create_async_engine(async_url, echo=echo, pool_size=10, max_overflow=10)
            self._writes = HeldConnections(self._async_engine, keep=5)
            # the same pool; a connection is in autocommit while reads hold it
            self._reads = HeldConnections(
                self._async_engine.execution_options(isolation_level="AUTOCOMMIT"), keep=5
            )

    async def write(self, unit: Callable[[Tx], T]) -> T:
        """Run ``unit`` in a transaction; return its result once committed, or raise its error.

        On PostgreSQL a unit whose connection turns out to be lost before its COMMIT was sent (the
        server restarted or failed over since the connection was last used) runs once more on a
        new one: the server rolled the first transaction back, and units are safe to run twice
        (SQLite's group commit runs them again too). A connection lost at the COMMIT itself fails
        the write: whether it was committed cannot be known, so it is not run again."""
        if self._writer is not None:
            return await self._writer.submit(unit)
        assert self._writes is not None
        try:
            return await self._writes.run(run_unit, unit)
        except LostBeforeCommitError as lost:
            log.warning("a write's connection was lost (%s); writing again on a new one", lost.error.orig)
        try:
            return await self._writes.run(run_unit, unit)
        except LostBeforeCommitError as again:
            raise again.error from None

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn``, which only reads, on a connection; each of its statements sees what was
        committed before it (on PostgreSQL each statement in a transaction of its own, and on
        SQLite a statement at a time between the writer's commits). ``fn`` must not write: on
        PostgreSQL what it wrote would stay.

        On PostgreSQL a read whose connection turns out to be lost (the server restarted or failed
        over since it was last used) runs once more on a new one: it wrote nothing, so running it
        again changes nothing, and the request it serves does not fail (a write, see :meth:`write`)."""
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
