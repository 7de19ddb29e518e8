"""PostgreSQL connections kept checked out between units of work.

Taking a connection from SQLAlchemy's async pool and giving it back costs the event loop about
50 µs a unit (the ``AsyncConnection`` and its ``Connection``, the pool's checkout and its reset on
return, the read engine's isolation level set and reset, a greenlet), a third of what a statement
costs, and a sign-in runs a dozen units. :class:`HeldConnections` keeps a few idle connections
itself and hands them to the next unit as they are.

A connection is kept only when its unit ended cleanly and left it as it found it: no transaction
open, the same execution options (a read may ask for a snapshot isolation level), not
invalidated. Any other connection is closed, which gives it back to SQLAlchemy's pool with the
reset it did before (or drops it when it was lost), and so is every connection beyond the few kept,
and every connection while the pool has none left to give: a unit waiting in the pool's queue then
gets it, where it would wait behind the units that take kept connections, until its timeout.

A connection the server closed (a restart, a failover, an administrator ending sessions) is not
handed to a unit when the driver has already seen it closed, which costs no round trip. When
the pool invalidates one all the same (a unit met it first), the kept ones are likely gone too:
they go back to the pool, which replaces every connection older than the loss at its next
checkout, so at most one unit meets a lost connection, and it is run again on a new one (a
read always, a write when the loss came before its COMMIT: :class:`idp.storage.database.Database`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection, event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import QueuePool

T = TypeVar("T")


class HeldConnections:
    """Up to ``keep`` idle connections of ``engine``; see the module docstring."""

    __slots__ = ("__weakref__", "_engine", "_idle", "_keep", "_pool", "_stale")

    def __init__(self, engine: AsyncEngine, *, keep: int) -> None:
        self._engine = engine
        self._keep = keep
        self._idle: list[AsyncConnection] = []
        pool = engine.pool
        if not isinstance(pool, QueuePool):
            raise TypeError(f"connections are kept from a queue pool, not from {type(pool).__name__}")
        self._pool = pool
        self._stale = False
        event.listen(pool, "invalidate", self._on_invalidate)

    def _on_invalidate(self, _dbapi_connection: Any, _record: Any, _exception: BaseException | None) -> None:
        self._stale = True

    def _exhausted(self) -> bool:
        """No connection left to check out (kept ones count as checked out): others may wait."""
        pool = self._pool
        overflow = pool._max_overflow  # the engine's max_overflow; negative for no limit
        return overflow >= 0 and pool.checkedout() >= pool.size() + overflow

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(connection, *args)`` inside ``run_sync`` on an idle connection or a new one."""
        if self._stale:
            self._stale = False
            await self.close()
        conn = await self._open_connection()
        sync = conn.sync_connection
        assert sync is not None
        options = sync.get_execution_options()
        try:
            result = await conn.run_sync(fn, *args)
        except BaseException:
            await asyncio.shield(conn.close())
            raise
        if (
            len(self._idle) < self._keep
            and not self._exhausted()
            and not sync.invalidated
            and not sync.in_transaction()
            and sync.get_execution_options() is options
        ):
            self._idle.append(conn)
        else:
            await conn.close()
        return result

    async def _open_connection(self) -> AsyncConnection:
        """A kept connection, else one from the pool, that the driver has not seen the server
        close. asyncpg notices a closed socket as soon as the event loop reads it, so after a
        restart of the server the dead ones are passed over without a round trip; what the
        driver has not noticed yet fails its unit, and the pool takes it from there."""
        for _ in range(self._keep + self._pool.size() + 1):
            conn = self._idle.pop() if self._idle else await self._engine.connect()
            if not _closed_by_server(conn):
                return conn
            await conn.invalidate()  # the pool discards it and checks the others out anew
            await conn.close()
        return await self._engine.connect()

    async def close(self) -> None:
        while self._idle:
            await self._idle.pop().close()


def _closed_by_server(conn: AsyncConnection) -> bool:
    sync = conn.sync_connection
    driver = sync.connection.driver_connection if sync is not None else None
    is_closed = getattr(driver, "is_closed", None)  # asyncpg's Connection.is_closed()
    return bool(callable(is_closed) and is_closed())


def end_autobegun(conn: Connection) -> None:
    """End the transaction SQLAlchemy's Core began on its own (autobegin). In autocommit nothing
    reaches the server; a read that asked for another isolation level rolls its snapshot back."""
    if conn.in_transaction():
        conn.rollback()
