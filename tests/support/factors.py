"""Helpers for the tests of authentication factors: a person to enrol, their audit trail, limiters."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import redis.asyncio
from sqlalchemy import select

from idp import eids, tenants
from idp.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from idp.storage import tables
from idp.storage.database import Database

REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def person(db: Database, **attributes: str) -> eids.EID:
    """A fresh tenant with one eID (a unique email address unless one is given)."""
    slug = f"t{uuid.uuid4().hex[:12]}"
    tenant = await db.write(lambda tx: tenants.create(tx, slug=slug, name=slug.title()))
    values = {"email": f"{slug}@example.com", "given_name": "Ana", "family_name": "Novak", **attributes}
    return await db.write(lambda tx: eids.create(tx, tenant_id=tenant.id, attributes=values))


async def events(db: Database, prefix: str, *, tenant_id: str) -> list[dict[str, Any]]:
    """The tenant's audit events whose type starts with ``prefix``, oldest first (a run's
    PostgreSQL database is shared by all its tests, so events are always looked up by tenant)."""
    a = tables.audit_events.c

    def load(conn: Any) -> list[dict[str, Any]]:
        query = (
            select(tables.audit_events)
            .where(a.event_type.startswith(prefix) & (a.tenant_id == tenant_id))
            .order_by(a.seq)
        )
        return [dict(r) for r in conn.execute(query).mappings()]

    return await db.read(load)


@asynccontextmanager
async def rate_limiter(kind: str) -> AsyncIterator[RateLimiter]:
    """An in-process limiter, or one on the local Redis under a prefix of its own (removed after)."""
    if kind == "memory":
        yield MemoryRateLimiter()
        return
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (redis.exceptions.ConnectionError, OSError) as exc:
        await client.aclose()
        if os.environ.get("IDP_TEST_ALLOW_NO_REDIS") == "1":
            pytest.skip(f"Redis at {REDIS_URL} unreachable: {exc}")
        pytest.fail(f"Redis at {REDIS_URL} unreachable ({exc}); set IDP_TEST_ALLOW_NO_REDIS=1 to skip")
    prefix = f"idp-test:{uuid.uuid4().hex}:rl:"
    try:
        yield RedisRateLimiter(client, prefix=prefix)
    finally:
        keys = [k async for k in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
