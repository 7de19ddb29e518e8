"""Mint refresh tokens for the refresh_token benchmark, straight into the IdP's database.

Each token is what a login would leave behind: its own grant, an eID of the client's tenant, the
same row the token endpoint writes. Usage (environment as for ``idp``):

    python -m bench.mint_refresh_tokens --client-id ID --count N --out FILE
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from pathlib import Path

from idp import clients, eids, secrets
from idp.settings import ensure_secret_key, load_settings
from idp.storage import tables
from idp.storage.database import Database, Tx

CHUNK = 5_000


async def mint(client_id: str, count: int, out: Path) -> None:
    settings = ensure_secret_key(load_settings())
    db = Database(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
    try:
        client = await db.read(lambda conn: clients.get(conn, client_id))
        if client is None:
            raise SystemExit(f"no client {client_id!r}")
        tenant_id = client.tenant_id
        email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
        person = await db.write(
            lambda tx: eids.create(
                tx, tenant_id=tenant_id, attributes={"email": email, "given_name": "Bench"}
            )
        )
        values: list[str] = []
        for start in range(0, count, CHUNK):
            batch = [secrets.new_token() for _ in range(min(CHUNK, count - start))]
            values.extend(batch)

            def unit(tx: Tx, batch: list[str] = batch) -> None:
                now = time.time()
                for value in batch:
                    tx.defer_insert(
                        tables.tokens,
                        {
                            "digest": secrets.token_key(value),
                            "kind": "refresh",
                            "grant_id": str(uuid.uuid4()),
                            "client_id": client_id,
                            "tenant_id": tenant_id,
                            "eid_id": person.id,
                            "sid": None,
                            "scope": "api",  # as the peer's tokens: no ID token on refresh either side
                            "auth_time": now,
                            "acr": "urn:eid:loa:basic",
                            "amr": ["email"],
                            "issued_at": now,
                            "expires_at": now + 86_400,
                            "rotated_at": None,
                            "revoked_at": None,
                        },
                    )

            await db.write(unit)
        out.write_text("\n".join(values) + "\n", encoding="utf-8")
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(mint(args.client_id, args.count, args.out))


if __name__ == "__main__":
    main()
