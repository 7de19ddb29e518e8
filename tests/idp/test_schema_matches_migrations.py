"""The migrations build exactly the schema that ``idp.storage.tables`` declares (both engines)."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import exc
from sqlalchemy.ext.asyncio import create_async_engine

from idp.storage import migrate
from idp.storage.tables import metadata

# SQLite cannot reflect an index on an expression (lower(username)); it is created by the
# migration (a uniqueness test proves it works) but autogenerate cannot see it there
EXPRESSION_INDEXES = {"uq_eids_tenant_username_ci"}


def _visible(entry: Any, dialect: str) -> bool:
    if dialect == "sqlite" and isinstance(entry, tuple) and entry[0] in ("add_index", "remove_index"):
        return entry[1].name not in EXPRESSION_INDEXES
    return True


def test_no_difference_between_migrations_and_tables(database_url: str) -> None:
    async def diff() -> tuple[list[Any], str]:
        engine = create_async_engine(migrate.async_url(database_url))
        try:
            async with engine.connect() as conn:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", "Skipped unsupported reflection", exc.SAWarning)
                    warnings.filterwarnings(
                        "ignore", "autogenerate skipping metadata-specified expression-based"
                    )
                    found = await conn.run_sync(
                        lambda sync: compare_metadata(
                            MigrationContext.configure(sync, opts={"compare_type": True}), metadata
                        )
                    )
                return found, engine.dialect.name
        finally:
            await engine.dispose()

    found, dialect = asyncio.run(diff())
    assert [d for d in found if _visible(d, dialect)] == []
