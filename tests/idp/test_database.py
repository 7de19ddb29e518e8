"""Units of work on both engines: commit, failure isolation, deferred rows, the audit chain under load."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, column, event, func, select, table
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from idp import audit, tenants
from idp.storage import held, migrate, tables
from idp.storage.checkpoint import Checkpointer
from idp.storage.database import Database, Tx
from idp.storage.held import HeldConnections, end_autobegun


class BoomError(Exception):
    pass


def _tenant_slugs(conn: Connection) -> set[str]:
    return set(conn.execute(select(tables.tenants.c.slug)).scalars())


def _events(conn: Connection) -> list[dict[str, Any]]:
    return [
        dict(r)
        for r in conn.execute(select(tables.audit_events).order_by(tables.audit_events.c.seq)).mappings()
    ]


def _uid() -> str:
    return uuid.uuid4().hex[:10]


async def test_result_is_returned_after_commit(db: Database) -> None:
    slug = f"t-{_uid()}"

    def unit(tx: Tx) -> str:
        return tenants.create(tx, slug=slug, name="Acme").id

    tenant_id = await db.write(unit)
    # a new Database (another connection pool) sees it: the write was committed before it returned
    other = Database(db.url)
    try:
        found = await other.read(lambda conn: tenants.get(conn, slug))
    finally:
        await other.close()
    assert found.id == tenant_id


async def test_reads_see_committed_writes(db: Database) -> None:
    slug = f"t-{_uid()}"
    assert slug not in await db.read(_tenant_slugs)
    await db.write(lambda tx: tenants.create(tx, slug=slug, name="Acme"))
    assert slug in await db.read(_tenant_slugs)


async def test_failing_unit_raises_and_leaves_nothing(db: Database) -> None:
    slug = f"t-{_uid()}"

    def unit(tx: Tx) -> None:
        tenants.create(tx, slug=slug, name="Acme")  # writes a row and an audit event ...
        raise BoomError("then fails")

    events_before = len(await db.read(_events))
    with pytest.raises(BoomError, match="then fails"):
        await db.write(unit)
    assert slug not in await db.read(_tenant_slugs)
    assert len(await db.read(_events)) == events_before
    await db.read(audit.verify)


async def test_failures_in_a_concurrent_batch_fail_alone(db: Database) -> None:
    run = _uid()
    failing = {7, 19, 20, 43}

    def make(i: int) -> Callable[[Tx], str]:
        def unit(tx: Tx) -> str:
            tenant = tenants.create(tx, slug=f"b{run}-{i}", name=f"Tenant {i}")
            if i in failing:
                raise BoomError(f"unit {i}")
            return tenant.slug

        return unit

    results = await asyncio.gather(*(db.write(make(i)) for i in range(50)), return_exceptions=True)
    for i, result in enumerate(results):
        if i in failing:
            assert isinstance(result, BoomError) and str(result) == f"unit {i}", result
        else:
            assert result == f"b{run}-{i}", result
    slugs = {s for s in await db.read(_tenant_slugs) if s.startswith(f"b{run}-")}
    assert slugs == {f"b{run}-{i}" for i in range(50) if i not in failing}
    events = [e for e in await db.read(_events) if e["event_type"] == "tenant.created"]
    created = {e["details"]["slug"] for e in events if str(e["details"]["slug"]).startswith(f"b{run}-")}
    assert created == slugs
    await db.read(audit.verify)


async def test_deferred_insert_appears_after_commit(db: Database) -> None:
    jti = f"jti-{_uid()}"
    u = tables.used_assertions.c

    def unit(tx: Tx) -> int:
        tx.defer_insert(tables.used_assertions, {"client_id": "c1", "jti": jti, "expires_at": tx.now + 60})
        # not visible inside the unit that deferred it
        return len(tx.conn.execute(select(u.jti).where(u.jti == jti)).all())

    assert await db.write(unit) == 0
    rows = await db.read(lambda conn: conn.execute(select(u.client_id, u.jti).where(u.jti == jti)).all())
    assert [tuple(r) for r in rows] == [("c1", jti)]


async def test_deferred_insert_of_a_failing_unit_is_dropped(db: Database) -> None:
    jti = f"jti-{_uid()}"
    u = tables.used_assertions.c

    def unit(tx: Tx) -> None:
        tx.defer_insert(tables.used_assertions, {"client_id": "c1", "jti": jti, "expires_at": tx.now + 60})
        raise BoomError

    with pytest.raises(BoomError):
        await db.write(unit)
    assert await db.read(lambda conn: conn.execute(select(u.jti).where(u.jti == jti)).all()) == []


async def _append(db: Database, n: int, tag: str, *, concurrency: int | None = None) -> list[str]:
    """``n`` audit appends at once (at most ``concurrency`` in flight, to spare the server's
    connection slots when two pools run)."""
    gate = asyncio.Semaphore(concurrency or n)

    async def one(i: int) -> str:
        event = audit.AuditEvent("test.append", details={"tag": tag, "i": i})
        async with gate:
            return await db.write(lambda tx: audit.record(tx, event))

    return list(await asyncio.gather(*(one(i) for i in range(n))))


def _assert_contiguous(conn: Connection) -> list[dict[str, Any]]:
    events = _events(conn)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    head = conn.execute(select(tables.audit_head.c.seq)).scalar_one()
    assert head == len(events)
    return events


async def test_concurrent_audit_appends_keep_one_chain(db: Database) -> None:
    tag = _uid()
    ids = await _append(db, 200, tag)
    assert len(set(ids)) == 200
    report = await db.read(audit.verify)
    events = await db.read(_assert_contiguous)
    assert report.events == len(events)
    mine = [e for e in events if e["event_type"] == "test.append" and e["details"]["tag"] == tag]
    assert sorted(e["details"]["i"] for e in mine) == list(range(200))
    assert {e["id"] for e in mine} == set(ids)


async def test_two_instances_append_to_one_chain(pg_database_url: str) -> None:
    """Two app instances on one PostgreSQL database: the locked head serialises their appends."""
    first, second = Database(pg_database_url), Database(pg_database_url)
    tag = _uid()
    try:
        await asyncio.gather(
            _append(first, 150, tag + "a", concurrency=8), _append(second, 150, tag + "b", concurrency=8)
        )
        report = await first.read(audit.verify)
        events = await second.read(_assert_contiguous)
    finally:
        await first.close()
        await second.close()
    assert report.events == len(events)
    tags = [e["details"]["tag"] for e in events if e["event_type"] == "test.append"]
    assert tags.count(tag + "a") == 150 and tags.count(tag + "b") == 150


def _transaction_of_each_statement(conn: Connection) -> tuple[str, bool]:
    """The isolation level, and whether two statements 10 ms apart ran in one transaction."""
    level = conn.exec_driver_sql("SHOW transaction_isolation").scalar()
    first = conn.exec_driver_sql("SELECT now()").scalar()
    conn.exec_driver_sql("SELECT pg_sleep(0.01)")
    return str(level), first == conn.exec_driver_sql("SELECT now()").scalar()


async def test_postgresql_reads_run_each_statement_alone_and_writes_in_one_transaction(
    pg_database_url: str,
) -> None:
    """Reads go without BEGIN and ROLLBACK (two round trips each); a write is one transaction; a
    read that asks for a snapshot (``audit.verify``) still gets one, and it does not stay on the
    pooled connection for the next read."""
    db = Database(pg_database_url)

    def snapshot(conn: Connection) -> tuple[str, bool]:
        conn.execution_options(isolation_level="REPEATABLE READ")
        return _transaction_of_each_statement(conn)

    try:
        assert await db.read(_transaction_of_each_statement) == ("read committed", False)
        assert await db.write(lambda tx: _transaction_of_each_statement(tx.conn)) == ("read committed", True)
        assert await db.read(snapshot) == ("repeatable read", True)
        assert await db.read(_transaction_of_each_statement) == ("read committed", False)
    finally:
        await db.close()


async def test_verify_during_concurrent_appends(pg_database_url: str) -> None:
    """``idp audit verify`` on a live system sees one consistent trail, not a half-read one.

    Reads and writes share one pool here, so a snapshot isolation level leaking from the verify
    into the pool would make the appends (which lock the head) fail.
    """
    writer = reader = Database(pg_database_url)
    stop = asyncio.Event()

    async def keep_appending() -> None:
        while not stop.is_set():
            await _append(writer, 20, "live")

    task = asyncio.create_task(keep_appending())
    try:
        for _ in range(30):
            await reader.read(audit.verify)
    finally:
        stop.set()
        await task
        await writer.close()


def test_migrations_are_idempotent_and_at_head(database_url: str) -> None:
    from alembic.script import ScriptDirectory

    migrate.upgrade(database_url)
    migrate.upgrade(database_url)
    head = ScriptDirectory.from_config(migrate.alembic_config(database_url)).get_current_head()
    assert head is not None
    assert migrate.current(database_url) == head


def test_upgrade_creates_the_chain_genesis(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "idp.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT id, seq, hash FROM audit_head").fetchall() == [(1, 0, "0" * 64)]


async def test_sqlite_reads_share_the_idle_writer_connection_and_writes_still_lock_first(
    tmp_path: Path, sqlite_template: Path
) -> None:
    """Reads run on the writer's connection between commits (its page cache stays warm) but in
    a DEFERRED transaction; each write still begins IMMEDIATE, also after a read that failed."""
    path = tmp_path / "idp.db"
    path.write_bytes(sqlite_template.read_bytes())
    db = Database(f"sqlite+aiosqlite:///{path}")
    seen: dict[int, list[str]] = {}

    def trace(dbapi: sqlite3.Connection, _record: object) -> None:
        # the WAL checkpointer has a connection of its own, opened on its own thread; it may
        # not have run a statement yet when the database closes, so it is told by its thread
        if threading.current_thread().name != "idp-sqlite-checkpoint":
            dbapi.set_trace_callback(seen.setdefault(id(dbapi), []).append)

    try:
        assert db.sync_engine is not None
        event.listen(db.sync_engine, "connect", trace)
        slug = f"t-{_uid()}"
        await db.write(lambda tx: tenants.create(tx, slug=slug, name="Acme"))
        assert slug in await db.read(_tenant_slugs)

        def broken(conn: Connection) -> None:
            _tenant_slugs(conn)
            raise BoomError

        with pytest.raises(BoomError):
            await db.read(broken)
        await db.write(lambda tx: tenants.create(tx, slug=f"t-{_uid()}", name="Other"))
        assert slug in await db.read(_tenant_slugs)  # the failed read left nothing open
    finally:
        await db.close()
    # every read and write went through one connection
    used = list(seen.values())
    assert len(used) == 1
    begins = [s for s in used[0] if s.startswith("BEGIN")]
    write, read = "BEGIN IMMEDIATE", "BEGIN DEFERRED"
    assert begins == [write, read, read, write, read]


async def test_the_sqlite_wal_starts_over_under_a_steady_write_load(
    tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under commits that never pause, no passive checkpoint ever finds the WAL fully copied when
    a write begins, so SQLite would append to it for as long as the load lasts. Once it holds
    RESTART_FRAMES frames the writer holds one batch back for a checkpoint, and the WAL starts
    over: its file stays a few times that size, however much was written."""
    monkeypatch.setattr(Checkpointer, "RESTART_FRAMES", 64)
    monkeypatch.setattr(Checkpointer, "EVERY", 0.01)
    path = tmp_path / "idp.db"
    path.write_bytes(sqlite_template.read_bytes())
    db = Database(f"sqlite+aiosqlite:///{path}")
    wal = Path(f"{path}-wal")
    page = 4096 + 24  # a WAL frame: its header and one page
    written = 0
    deadline = asyncio.get_running_loop().time() + 2.0

    def unit(tx: Tx) -> None:
        tenants.create(tx, slug=f"t-{_uid()}", name="Acme " + "x" * 190)

    async def writer() -> None:
        nonlocal written
        while asyncio.get_running_loop().time() < deadline:
            await db.write(unit)
            written += 1

    try:
        await asyncio.gather(*(writer() for _ in range(16)))
        largest = wal.stat().st_size
    finally:
        await db.close()
    bound = 16 * 64 * page  # room for a checkpointer thread that a busy machine holds up
    # each commit writes at least the tenant's page and the audit head's: without starting over
    # the WAL would have outgrown the bound twice (46 MB here, and 0.7 to 1.3 MB with it)
    assert written * 2 * page > 2 * bound, written
    assert largest < bound, (largest, written)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM tenants WHERE name LIKE 'Acme x%'").fetchone()[0] == written


async def test_a_writer_that_gives_up_on_a_checkpoint_does_not_stop_the_checkpointer(
    tmp_path: Path, sqlite_template: Path
) -> None:
    path = tmp_path / "idp.db"
    path.write_bytes(sqlite_template.read_bytes())
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        await db.write(lambda tx: tenants.create(tx, slug=f"t-{_uid()}", name="Acme"))
        assert db.sync_engine is not None
        checkpointer = Checkpointer(db.sync_engine)
        try:
            for _ in range(20):  # cancelled before and while the checkpointer takes them up
                checkpointer.catch_up().cancel()
            assert await asyncio.wait_for(asyncio.wrap_future(checkpointer.catch_up()), 5) is True
        finally:
            checkpointer.stop()
    finally:
        await db.close()


async def test_a_postgresql_write_cancelled_mid_transaction_leaves_nothing_behind(
    pg_database_url: str,
) -> None:
    """A request cancelled while its unit waits on the server (the client went away): its rows
    are not committed, and the units after it, on connections kept between units, run as usual."""
    db = Database(pg_database_url)
    slug, after = f"t-{_uid()}", f"t-{_uid()}"
    waiting = asyncio.Event()

    def slow(tx: Tx) -> None:
        tenants.create(tx, slug=slug, name="Cancelled")
        waiting.set()
        tx.conn.exec_driver_sql("SELECT pg_sleep(5)")

    try:
        task = asyncio.create_task(db.write(slow))
        await waiting.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(3):
            await db.write(lambda tx: tenants.create(tx, slug=f"{after}-{_uid()}", name="After"))
            assert await db.read(_transaction_of_each_statement) == ("read committed", False)
        slugs = await db.read(_tenant_slugs)
    finally:
        await db.close()
    assert slug not in slugs
    assert len([s for s in slugs if s.startswith(after)]) == 3


@pytest.mark.parametrize("noticed", [True, False], ids=["driver_noticed", "driver_did_not_notice"])
@pytest.mark.parametrize("first", ["read", "write"])
async def test_connections_the_postgresql_server_dropped_fail_no_unit(
    pg_database_url: str, first: str, noticed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server ends the sessions of every kept connection (a restart, a failover). Those the
    driver has seen closed are passed over. One it has not (a socket whose end did not reach us
    yet) fails the statement that meets it; its unit, a read or a write whose COMMIT was not sent,
    runs again on a new connection, once: no request fails, and a write commits once. Every unit
    after that gets a connection that works, not one failure for each connection kept."""
    if not noticed:
        monkeypatch.setattr(held, "_closed_by_server", lambda _conn: False)
    db = Database(pg_database_url)
    slug = f"t-{_uid()}"
    runs: list[str] = []

    def backend(conn: Connection) -> int:
        return int(conn.exec_driver_sql("SELECT pg_backend_pid() FROM pg_sleep(0.05)").scalar_one())

    def one(conn: Connection) -> int:
        runs.append("read")
        return int(conn.exec_driver_sql("SELECT 1").scalar_one())

    def create(tx: Tx) -> None:
        runs.append("write")
        tx.conn.exec_driver_sql("SELECT 1")
        tenants.create(tx, slug=f"{slug}-{len(runs)}", name="Acme")

    try:
        # reads and writes at once, each holding its connection a moment: several are kept
        reads = await asyncio.gather(*(db.read(backend) for _ in range(4)))
        writes = await asyncio.gather(*(db.write(lambda tx: backend(tx.conn)) for _ in range(3)))
        assert len(set(reads)) == 4 and len(set(writes)) == 3
        await _terminate(pg_database_url, [*reads, *writes])
        await asyncio.sleep(0.1)  # the next request comes after the event loop read the closed sockets
        for kind in [first, "read", "write", "read", "write", "write"]:
            await (db.read(one) if kind == "read" else db.write(create))
        slugs = await db.read(_tenant_slugs)
    finally:
        await db.close()
    again = not noticed  # the first unit met a lost connection and ran again
    assert runs == [first] * (2 if again else 1) + ["read", "write", "read", "write", "write"]
    assert len([s for s in slugs if s.startswith(slug)]) == [first, "write", "write", "write"].count("write")


async def _terminate(pg_database_url: str, pids: list[int]) -> None:
    admin = Database(pg_database_url)
    try:
        await admin.read(
            lambda conn: conn.execute(
                select(func.pg_terminate_backend(column("pid")))
                .select_from(table("pg_stat_activity"))
                .where(column("pid").in_(pids))
            ).all()
        )
    finally:
        await admin.close()


async def test_a_write_whose_connection_is_lost_at_its_commit_is_not_run_again(pg_database_url: str) -> None:
    """Lost at the COMMIT, a transaction may or may not have been committed: the write fails (a
    clear error for its request) rather than run twice, and the next write works."""
    db = Database(pg_database_url)
    slug = f"t-{_uid()}"
    runs: list[int] = []

    def unit(tx: Tx) -> None:
        runs.append(1)
        # no audit event: one would be flushed after the unit, and the loss met there, before COMMIT
        tx.conn.execute(
            tables.tenants.insert().values(
                id=str(uuid.uuid4()), slug=slug, name="Acme", branding={}, status="active", created_at=tx.now
            )
        )
        pid = int(tx.conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
        if len(runs) == 1:  # the server ends this session after the unit's last statement
            ended = threading.Thread(target=lambda: asyncio.run(_terminate(pg_database_url, [pid])))
            ended.start()
            ended.join()

    try:
        with pytest.raises(DBAPIError) as lost:
            await db.write(unit)
        assert lost.value.connection_invalidated
        assert runs == [1]
        await db.write(unit)  # the first was rolled back by the server: the slug is free
        assert slug in await db.read(_tenant_slugs)
    finally:
        await db.close()


@pytest.mark.parametrize("events", [1, 3, 40])
async def test_a_unit_s_events_and_deferred_rows_commit_with_the_chain_head(
    db: Database, events: int
) -> None:
    """However many events and other deferred rows a unit has (PostgreSQL writes a few together
    with the head's update, more as before), all of them and the head commit, or none."""
    tag, jti = _uid(), f"jti-{_uid()}"
    u = tables.used_assertions.c

    def unit(tx: Tx, *, fail: bool = False) -> None:
        tx.defer_insert(tables.used_assertions, {"client_id": "c1", "jti": jti, "expires_at": tx.now + 60})
        for i in range(events):
            audit.record(tx, audit.AuditEvent("test.append", details={"tag": tag, "i": i, "ü": "≠"}))
        if fail:
            tx.defer_insert(tables.used_assertions, {"client_id": "c1", "jti": jti, "expires_at": tx.now})

    with pytest.raises(IntegrityError):
        await db.write(lambda tx: unit(tx, fail=True))
    assert [e for e in await db.read(_assert_contiguous) if e["details"].get("tag") == tag] == []
    await db.write(unit)
    mine = [e for e in await db.read(_assert_contiguous) if e["details"].get("tag") == tag]
    assert [(e["details"]["i"], e["details"]["ü"]) for e in mine] == [(i, "≠") for i in range(events)]
    assert await db.read(lambda conn: conn.execute(select(u.jti).where(u.jti == jti)).all()) == [(jti,)]
    await db.read(audit.verify)


async def test_kept_postgresql_connections_do_not_starve_units_waiting_for_the_pool(
    pg_database_url: str,
) -> None:
    """More units at once than the pool has connections: the ones waiting in the pool's queue
    get a connection as others finish, even while those go straight on to their next unit."""
    engine = create_async_engine(
        pg_database_url, pool_size=1, max_overflow=1, pool_timeout=2, isolation_level="AUTOCOMMIT"
    )
    held = HeldConnections(engine, keep=2)
    done: list[int] = []

    def unit(conn: Connection) -> None:
        conn.exec_driver_sql("SELECT pg_sleep(0.02)")
        end_autobegun(conn)  # as Database.read does: the connection may be kept

    async def busy(task: int) -> None:
        for _ in range(25):
            await held.run(unit)
        done.append(task)

    try:
        await asyncio.gather(*(busy(task) for task in range(4)))
    finally:
        await held.close()
        await engine.dispose()
    assert sorted(done) == [0, 1, 2, 3]
