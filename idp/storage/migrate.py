"""Run Alembic migrations programmatically (``idp migrate``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).with_name("migrations")


def async_url(url: str) -> str:
    """The async driver's URL for ``url`` (aiosqlite for SQLite, asyncpg for PostgreSQL)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", async_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision``; safe to run again."""
    command.upgrade(alembic_config(url), revision)


def current(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.ext.asyncio import create_async_engine

    async def run() -> str | None:
        engine = create_async_engine(async_url(url))
        async with engine.connect() as conn:
            rev = await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())
        await engine.dispose()
        return rev

    return asyncio.run(run())


def head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def require_current(url: str) -> None:
    """Refuse to serve a database whose schema is not the code's (``StorageError`` says what to do)."""
    from idp.errors import StorageError

    try:
        have = current(url)
    except Exception as exc:
        raise StorageError(f"cannot read the schema version of IDP_DATABASE_URL: {exc}") from exc
    want = head()
    if have != want:
        raise StorageError(
            f"the database schema is at revision {have or 'none'} but this code needs {want}: "
            "run 'idp migrate'"
        )
