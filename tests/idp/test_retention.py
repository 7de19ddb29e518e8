from __future__ import annotations

import time

from sqlalchemy import func, select, update

from idp import retention, tenants
from idp.storage import tables
from idp.storage.database import Database, Tx
from tests.support.server import ServedApp


def _count(served: ServedApp, table: object) -> int:
    return int(
        served.run(
            served.state.db.read(lambda c: c.execute(select(func.count()).select_from(table)).scalar())
        )
    )  # type: ignore[arg-type]


def test_expired_rows_go_live_ones_stay(served: ServedApp) -> None:
    from tests.support.flows import RelyingParty

    tenant = served.tenant()
    new = served.client_app(tenant, redirect_uris=["https://rp.example/cb"])
    served.user(tenant, "ret@example.com")
    rp = RelyingParty(served, new.client.client_id, new.client_secret, "https://rp.example/cb")
    params, verifier = rp.authorize_params(scope="openid offline_access")
    callback = rp.email_login(params, "ret@example.com")
    tokens = rp.exchange(callback["code"], verifier).json()
    assert "refresh_token" in tokens or "access_token" in tokens
    before = _count(served, tables.tokens)

    # age everything of this client: codes, links and requests expire at once, tokens after the grace
    long_ago = time.time() - retention.TOKEN_GRACE - 60

    def age(tx: Tx) -> None:
        tx.conn.execute(update(tables.authorization_codes).values(expires_at=long_ago))
        tx.conn.execute(update(tables.email_links).values(expires_at=long_ago))
        tx.conn.execute(update(tables.auth_requests).values(expires_at=long_ago))
        tx.conn.execute(
            update(tables.tokens)
            .where(tables.tokens.c.client_id == new.client.client_id)
            .values(expires_at=long_ago)
        )

    served.write(age)
    purged = served.write(retention.purge_expired)
    assert purged.codes >= 1 and purged.links >= 1 and purged.requests >= 1
    assert purged.tokens == before - _count(served, tables.tokens) >= 1
    assert served.write(retention.purge_expired).total == 0  # nothing left to purge
    # the purge itself is audited and the chain still verifies
    from idp import audit

    served.run(served.state.db.read(audit.verify))
    rp.close()


async def test_a_purge_is_audited_only_when_it_removed_something(db: Database) -> None:
    await db.write(lambda tx: tenants.create(tx, slug=f"r{time.monotonic_ns() % 10**9}", name="R"))
    head_before = await db.read(lambda c: c.execute(select(tables.audit_head.c.seq)).scalar())
    purged = await db.write(retention.purge_expired)
    head_after = await db.read(lambda c: c.execute(select(tables.audit_head.c.seq)).scalar())
    # one audit event when something went, none when nothing did
    assert head_after == head_before + (1 if purged.total else 0)
