"""The token store's units of work, driven directly on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from sqlalchemy import Connection, select

from idp import audit, clients, tenants
from idp.storage import tables
from idp.storage.database import Database, Tx
from oidc import store
from oidc.store import Outcome


def _token(digest: str, kind: str, grant_id: str, client_id: str, tenant_id: str) -> dict[str, Any]:
    now = time.time()
    return {
        "digest": digest,
        "kind": kind,
        "grant_id": grant_id,
        "client_id": client_id,
        "tenant_id": tenant_id,
        "eid_id": None,
        "sid": None,
        "scope": "openid",
        "auth_time": None,
        "acr": None,
        "amr": None,
        "issued_at": now,
        "expires_at": now + 3600,
        "rotated_at": None,
        "revoked_at": None,
    }


async def test_two_refreshes_of_one_token_in_one_commit_leave_nothing_alive(db: Database) -> None:
    """Both uses of one refresh token reach the database together (on SQLite, one group
    commit): one rotates it and issues successors, the other finds it used and revokes the
    grant, the successors included."""

    def setup(tx: Tx) -> tuple[str, str]:
        tenant = tenants.create(tx, slug=f"t{uuid.uuid4().hex[:8]}", name="Store")
        client = clients.create(
            tx,
            tenant_id=tenant.id,
            name="rp",
            client_type=clients.ClientType.CONFIDENTIAL,
            redirect_uris=["https://rp.example/cb"],
            default_acr=None,
        ).client.client_id
        return tenant.id, client

    tenant_id, client_id = await db.write(setup)
    grant = str(uuid.uuid4())
    await db.write(
        lambda tx: tx.defer_insert(tables.tokens, _token("old", "refresh", grant, client_id, tenant_id))
    )

    def rotate(n: int) -> Any:
        rows = [_token(f"{kind}-{n}", kind, grant, client_id, tenant_id) for kind in ("access", "refresh")]
        event = audit.AuditEvent("token.issued", tenant_id=tenant_id, details={"client_id": client_id})
        return lambda tx: store.rotate_refresh(
            tx, old_digest="old", grant_id=grant, rows=rows, event=event, assertion=None
        )

    outcomes = await asyncio.gather(db.write(rotate(1)), db.write(rotate(2)))
    assert sorted(outcomes) == sorted([Outcome.OK, Outcome.REPLAYED])

    def read(conn: Connection) -> tuple[dict[str, float | None], list[Any]]:
        t = tables.tokens.c
        states = {
            r.digest: r.revoked_at
            for r in conn.execute(select(t.digest, t.revoked_at).where(t.grant_id == grant))
        }
        a = tables.audit_events.c
        reused = [
            r.details for r in conn.execute(select(a.details).where(a.event_type == "refresh_token.reused"))
        ]
        return states, reused

    states, reused = await db.read(read)
    winner = 1 if outcomes[0] is Outcome.OK else 2
    assert set(states) == {"old", f"access-{winner}", f"refresh-{winner}"}  # the loser issued nothing
    assert all(revoked is not None for revoked in states.values()), states
    # the database may hold other tests' events (PostgreSQL): this grant's only
    assert [d["revoked"] for d in reused if d["grant_id"] == grant] == [3]
    await db.read(audit.verify)
