"""Shared fixtures: databases (SQLite and PostgreSQL), settings, and the served app over TLS.

PostgreSQL is at ``IDP_TEST_DATABASE_URL`` (default the local server's ``test`` database); each
test run creates its own database there and drops it at the end, so runs never see each other's
rows. Without a reachable server the PostgreSQL cases fail, unless ``IDP_TEST_ALLOW_NO_POSTGRES=1``
says to skip them (CI never sets it).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from idp.settings import Settings
from idp.storage import migrate
from idp.storage.database import Database
from tests.support.server import ServedApp, database_url_on, make_tls, serve, settings_factory_for

PG_ADMIN_URL = os.environ.get("IDP_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


async def _pg_admin(statement: str) -> None:
    import asyncpg

    url = PG_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _pg_url(name: str) -> str:
    from sqlalchemy.engine import make_url

    return (
        make_url(PG_ADMIN_URL)
        .set(drivername="postgresql+asyncpg", database=name)
        .render_as_string(hide_password=False)
    )


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test run."""
    name = f"idp_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except (TimeoutError, OSError) as exc:
        if os.environ.get("IDP_TEST_ALLOW_NO_POSTGRES") == "1":
            pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
        raise RuntimeError(
            f"PostgreSQL is required at {PG_ADMIN_URL} (set IDP_TEST_DATABASE_URL, or "
            f"IDP_TEST_ALLOW_NO_POSTGRES=1 to skip its cases): {exc}"
        ) from exc
    url = _pg_url(name)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own on each engine, not migrated (for tests of the migrations)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'idp.db'}"
        return
    name = f"idp_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield _pg_url(name)
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once keeps the suite fast)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "idp.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """Each storage or flow test runs on both engines."""
    return database_url_on(request.param, request, tmp_path, sqlite_template)


@pytest.fixture
def settings_factory(tmp_path: Path, database_url: str) -> object:
    return settings_factory_for(database_url, tmp_path, issuer="https://idp.test")


@pytest.fixture
def settings(settings_factory: object) -> Settings:
    return settings_factory()  # type: ignore[operator, no-any-return]


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: the served app speaks HTTPS like production."""
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def served(settings_factory: object, tls: tuple[Path, Path], tmp_path: Path) -> Iterator[ServedApp]:
    """The app served by uvicorn over TLS on a free port, in its own thread and event loop."""
    with serve(settings_factory, tls=tls, outbox=tmp_path / "mail") as app:  # type: ignore[arg-type]
        yield app
