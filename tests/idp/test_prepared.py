"""Prepared statements (idp.storage.prepared) on both engines: the same rows, types, counts and
errors as SQLAlchemy's own execution."""

from __future__ import annotations

import json
import sqlite3
import uuid
from typing import Any

import pytest
from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.exc import IntegrityError

from idp import clients, tenants
from idp.storage import tables
from idp.storage.database import Database, Tx
from idp.storage.prepared import Prepared, _json_text

_C = tables.clients.c
_R = tables.auth_requests.c
CLIENT = Prepared(select(tables.clients).where(_C.client_id == bindparam("id")))
CLIENTS_OF = Prepared(select(tables.clients).where(_C.tenant_id == bindparam("t")).order_by(_C.name))
NAME = Prepared(select(_C.name).where(_C.client_id == bindparam("id")))
RENAME = Prepared(
    update(tables.clients)
    .where((_C.client_id == bindparam("id")) & (_C.name == bindparam("old")))
    .values(name=bindparam("new"), redirect_uris=bindparam("uris", type_=_C.redirect_uris.type))
)
NEW_REQUEST = Prepared(tables.auth_requests.insert())
REQUEST = Prepared(select(tables.auth_requests).where(_R.id == bindparam("id")))


async def _two_clients(db: Database) -> tuple[str, list[str]]:
    def unit(tx: Tx) -> tuple[str, list[str]]:
        tenant = tenants.create(tx, slug=f"t-{uuid.uuid4().hex[:10]}", name="Acme")
        made = [
            clients.create(
                tx,
                tenant_id=tenant.id,
                name=name,
                client_type=clients.ClientType.CONFIDENTIAL,
                redirect_uris=[f"https://{name}.example/cb"],
                default_acr=None,
            ).client.client_id
            for name in ("alpha", "beta")
        ]
        return tenant.id, made

    return await db.write(unit)


def _by_sqlalchemy(conn: Connection, statement: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(statement, params).mappings()]


async def test_rows_and_types_are_those_sqlalchemy_reads(db: Database) -> None:
    tenant_id, (alpha, _beta) = await _two_clients(db)

    def read(conn: Connection) -> tuple[Any, ...]:
        return (
            CLIENT.first(conn, {"id": alpha}),
            _by_sqlalchemy(conn, CLIENT.statement, {"id": alpha}),
            CLIENTS_OF.all(conn, {"t": tenant_id}),
            _by_sqlalchemy(conn, CLIENTS_OF.statement, {"t": tenant_id}),
            NAME.scalar(conn, {"id": alpha}),
            CLIENT.first(conn, {"id": "no-such-client"}),
            NAME.scalar(conn, {"id": "no-such-client"}),
        )

    one, expected, every, expected_every, name, missing, no_name = await db.read(read)
    assert one == expected[0]
    assert one is not None and one["active"] is True  # Boolean, not SQLite's 1
    assert one["redirect_uris"] == ["https://alpha.example/cb"]  # JSON, decoded
    assert one["default_acr"] is None
    assert every == expected_every and [c["name"] for c in every] == ["alpha", "beta"]
    assert name == "alpha"
    assert missing is None and no_name is None


async def test_run_counts_the_rows_it_changed_and_binds_json(db: Database) -> None:
    _tenant_id, (alpha, _beta) = await _two_clients(db)
    params = {"id": alpha, "old": "alpha", "new": "gamma", "uris": ["https://gamma.example/cb"]}
    assert await db.write(lambda tx: RENAME.run(tx.conn, params)) == 1
    assert await db.write(lambda tx: RENAME.run(tx.conn, params)) == 0  # the condition no longer holds
    row = await db.read(lambda conn: CLIENT.first(conn, {"id": alpha}))
    assert row is not None and row["name"] == "gamma" and row["redirect_uris"] == ["https://gamma.example/cb"]


def _request(client_id: str, request_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": request_id,
        "client_id": client_id,
        "params": {"scope": "openid", "nested": {"n": 1}},
        "browser_digest": "b" * 64,
        "created_at": 1.5,
        "expires_at": 2.5,
        **extra,
    }


async def test_an_insert_leaves_out_only_nullable_columns(db: Database) -> None:
    _tenant_id, (alpha, _beta) = await _two_clients(db)
    request_id = uuid.uuid4().hex
    await db.write(lambda tx: NEW_REQUEST.run(tx.conn, _request(alpha, request_id, acr="urn:eid:loa:basic")))
    row = await db.read(lambda conn: REQUEST.first(conn, {"id": request_id}))
    assert row is not None
    assert row["params"] == {"scope": "openid", "nested": {"n": 1}}
    assert row["acr"] == "urn:eid:loa:basic" and row["eid_id"] is None and row["factors"] is None
    incomplete = _request(alpha, uuid.uuid4().hex)
    del incomplete["browser_digest"]
    with pytest.raises(ValueError, match="browser_digest"):
        await db.write(lambda tx: NEW_REQUEST.run(tx.conn, incomplete))


async def test_a_constraint_violation_is_sqlalchemys_integrity_error(db: Database) -> None:
    _tenant_id, (alpha, _beta) = await _two_clients(db)
    request_id = uuid.uuid4().hex
    await db.write(lambda tx: NEW_REQUEST.run(tx.conn, _request(alpha, request_id)))
    with pytest.raises(IntegrityError):  # the same id again
        await db.write(lambda tx: NEW_REQUEST.run(tx.conn, _request(alpha, request_id)))
    with pytest.raises(IntegrityError):  # no such client (foreign key)
        await db.write(lambda tx: NEW_REQUEST.run(tx.conn, _request("no-such-client", uuid.uuid4().hex)))
    # the failed units rolled back alone: the first request is intact
    assert await db.read(lambda conn: REQUEST.first(conn, {"id": request_id})) is not None


def test_only_plain_parameters_can_be_prepared() -> None:
    with pytest.raises(ValueError, match="only plain parameters"):
        Prepared(select(tables.clients).where(_C.client_id.in_(bindparam("ids", expanding=True))))


@pytest.mark.parametrize(
    "value",
    [
        ["email"],
        ["openid", "email", "phone"],
        [],
        [{"nested": 1}],  # not hashable: encoded, never cached
        ["a", 1],
        list("abcdefghij"),
        {"k": [1]},
        "s",
    ],
)
def test_json_column_text_is_the_json_of_the_value(value: Any) -> None:
    assert _json_text(value) == json.dumps(value)
    assert _json_text(value) == json.dumps(value)  # again, from the cache where it applies


async def test_none_and_bytes_parameters_bind_as_null_and_blob(db: Database) -> None:
    """The identity adapters the SQLite engine registers (no attribute lookups per parameter)
    bind the values as the driver would without them."""
    if not db.is_sqlite:
        pytest.skip("the adapters are sqlite3's")
    blob = b"\x00\xff"

    def unit(tx: Tx) -> list[Any]:
        driver = tx.conn.connection.driver_connection
        assert driver is not None
        sql = "SELECT ?, typeof(?), ?, typeof(?), ?, typeof(?)"
        return list(driver.execute(sql, (None, None, blob, blob, "x", "x")).fetchall())

    assert await db.write(unit) == [(None, "null", blob, "blob", "x", "text")]
    assert {(type(None), sqlite3.PrepareProtocol), (bytes, sqlite3.PrepareProtocol)} <= set(sqlite3.adapters)


async def test_a_postgresql_connection_lost_under_a_prepared_statement_leaves_the_pool(
    pg_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The statement fails as SQLAlchemy's own execution would (its error, marked as a lost
    connection): so the write, whose COMMIT was not sent, runs again on a live connection (one
    the driver has seen closed is not handed out at all, :mod:`idp.storage.held`)."""
    import asyncpg

    from idp.storage import held

    monkeypatch.setattr(held, "_closed_by_server", lambda _conn: False)
    db = Database(pg_database_url)
    tenant_id, (alpha, _beta) = await _two_clients(db)
    try:
        pid = await db.write(lambda tx: tx.conn.exec_driver_sql("SELECT pg_backend_pid()").scalar())
        admin = await asyncpg.connect(pg_database_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        runs: list[int] = []

        def unit(tx: Tx) -> Any:
            runs.append(1)
            return CLIENT.first(tx.conn, {"id": alpha})

        found = await db.write(unit)
        assert len(runs) == 2  # the first met the lost connection, marked as lost
        assert found is not None and found["tenant_id"] == tenant_id
    finally:
        await db.close()
