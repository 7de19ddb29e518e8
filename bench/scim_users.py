"""SCIM on PostgreSQL with 100,000 users in one tenant: filter and list latency, creations per second.

Creates a throwaway database on the local PostgreSQL server (``IDP_BENCH_PG_ADMIN``, default
``postgresql://postgres@127.0.0.1:5432/postgres``), loads the users with COPY in the shape the
SCIM layer writes, serves the app with ``idp serve`` (uvicorn, one process), then measures:

* ``GET /Users?filter=userName eq "…"`` for random existing users (sequential, one connection);
* ``GET /Users?startIndex=…&count=100`` pages (sequential);
* ``POST /Users`` with 8 requests in flight: users created per second.

Prints the figures and drops the database. Usage: ``.venv/bin/python bench/scim_users.py [--users N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness.processes import clean_env, free_port, http_ok, running, wait_until  # noqa: E402
from idp.scim import document  # noqa: E402
from idp.scim.schema import USER_ATTRIBUTES  # noqa: E402

ADMIN = os.environ.get("IDP_BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


async def load_users(dsn: str, tenant_id: str, count: int) -> list[str]:
    """COPY ``count`` users into the tenant, as POST /Users would have stored them."""
    conn = await asyncpg.connect(dsn)
    names: list[str] = []
    try:
        base = time.time() - count
        for start in range(0, count, 10_000):
            eids, attrs, scim_users, values = [], [], [], []
            for i in range(start, min(start + 10_000, count)):
                eid_id = str(uuid.uuid4())
                user_name = f"user{i:06d}@example.com"
                names.append(user_name)
                created = base + i
                eids.append((eid_id, tenant_id, user_name, user_name, "active", created, created))
                given, family = f"Given{i}", f"Family{i % 997}"
                for name, value in (("email", user_name), ("given_name", given), ("family_name", family)):
                    attrs.append((eid_id, name, value, None, None, None, created))
                doc = {
                    "name": {"givenName": given, "familyName": family},
                    "emails": [{"value": user_name, "type": "work", "primary": True}],
                    "externalid": f"ext-{i}",
                }
                scim_users.append((eid_id, tenant_id, f"ext-{i}", json.dumps(doc), 1))
                for attr, item, sub, value in document.index_rows(doc, USER_ATTRIBUTES):
                    values.append((eid_id, attr, item, sub, tenant_id, value, value.lower()))
            await conn.copy_records_to_table(
                "eids",
                records=eids,
                columns=[
                    "id",
                    "tenant_id",
                    "username",
                    "email_normalized",
                    "status",
                    "created_at",
                    "updated_at",
                ],
            )
            await conn.copy_records_to_table(
                "eid_attributes",
                records=attrs,
                columns=[
                    "eid_id",
                    "name",
                    "value",
                    "verified_method",
                    "verified_at",
                    "evidence_ref",
                    "updated_at",
                ],
            )
            await conn.copy_records_to_table(
                "scim_users",
                records=scim_users,
                columns=["eid_id", "tenant_id", "external_id", "document", "version"],
            )
            await conn.copy_records_to_table(
                "scim_values",
                records=values,
                columns=["owner_id", "attr", "item", "sub", "tenant_id", "value", "value_ci"],
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return names


def timed(client: httpx.Client, requests: list[tuple[str, dict[str, object]]]) -> list[float]:
    out = []
    for path, params in requests:
        start = time.perf_counter()
        response = client.get(path, params=params)  # type: ignore[arg-type]
        elapsed = time.perf_counter() - start
        if response.status_code != 200:
            raise SystemExit(f"GET {path} {params} -> {response.status_code}: {response.text[:300]}")
        out.append(elapsed * 1000)
    return out


async def create_users(base: str, token: str, total: int, concurrency: int) -> float:
    counter = iter(range(total))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}

    async def worker(client: httpx.AsyncClient) -> None:
        for i in counter:
            body = {
                "schemas": [CORE_USER],
                "userName": f"new{i}-{uuid.uuid4().hex[:8]}@example.com",
                "name": {"givenName": "New", "familyName": f"User{i}"},
                "emails": [
                    {"value": f"new{i}-{uuid.uuid4().hex[:8]}@example.com", "type": "work", "primary": True}
                ],
                "active": True,
            }
            response = await client.post("/Users", json=body)
            if response.status_code != 201:
                raise SystemExit(f"POST /Users -> {response.status_code}: {response.text[:300]}")

    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        return total / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--creates", type=int, default=2000)
    args = parser.parse_args()

    from idp.storage import migrate

    db_name = f"idp_bench_scim_{uuid.uuid4().hex[:8]}"
    admin_dsn = ADMIN.replace("postgresql+asyncpg://", "postgresql://")
    asyncio.run(_admin(admin_dsn, f'CREATE DATABASE "{db_name}"'))
    dsn = admin_dsn.rsplit("/", 1)[0] + f"/{db_name}"
    url = dsn.replace("postgresql://", "postgresql+asyncpg://")
    work = ROOT / "var" / "bench-scim"
    work.mkdir(parents=True, exist_ok=True)
    try:
        migrate.upgrade(url)
        env = {**clean_env(), "IDP_DATABASE_URL": url, "IDP_VAR_DIR": str(work), "IDP_SECRET_KEY": "b" * 48}
        idp = str(ROOT / ".venv" / "bin" / "idp")
        import subprocess

        def cli(*argv: str) -> dict[str, object]:
            out = subprocess.run(
                [idp, *argv, "--json"], env=env, cwd=ROOT, capture_output=True, text=True, check=True
            )
            return json.loads(out.stdout)  # type: ignore[no-any-return]

        tenant = cli("tenant", "create", "--slug", "bench", "--name", "Bench")
        token = str(cli("scim-token", "create", "--tenant", "bench", "--name", "bench")["token"])
        started = time.perf_counter()
        names = asyncio.run(load_users(dsn, str(tenant["id"]), args.users))
        print(f"loaded {len(names):,} users in {time.perf_counter() - started:.1f} s")

        port = free_port()
        base = f"http://127.0.0.1:{port}/scim/v2"
        env["IDP_ISSUER"] = f"http://127.0.0.1:{port}"
        log = work / "serve.log"
        with running(
            [idp, "serve", "--port", str(port), "--log-level", "warning"], env=env, log=log, cwd=ROOT
        ) as proc:
            wait_until(
                lambda: http_ok(f"http://127.0.0.1:{port}/healthz"),
                proc,
                what="idp serve",
                log=log,
                timeout=60,
            )
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
                timed(
                    client, [("/Users", {"filter": f'userName eq "{n}"'}) for n in random.sample(names, 50)]
                )
                filt = timed(
                    client,
                    [
                        ("/Users", {"filter": f'userName eq "{n.upper()}"'})
                        for n in random.sample(names, args.queries)
                    ],
                )
                pages = timed(
                    client,
                    [
                        ("/Users", {"startIndex": random.randint(1, len(names) - 100), "count": 100})
                        for _ in range(args.pages)
                    ],
                )
            rate = asyncio.run(create_users(base, token, args.creates, 8))
        print(
            f"users in the tenant: {len(names):,} (PostgreSQL, one uvicorn process, 2 cores shared with it)"
        )
        print(
            f"GET /Users?filter=userName eq …  n={len(filt)}  p50 {statistics.median(filt):.1f} ms"
            f"  p95 {percentile(filt, 95):.1f} ms  (target p95 < 20 ms)"
        )
        print(
            f"GET /Users?count=100 page        n={len(pages)}  p50 {statistics.median(pages):.1f} ms"
            f"  p95 {percentile(pages, 95):.1f} ms"
        )
        print(f"POST /Users (8 in flight)        {args.creates} users  {rate:.0f} users/s")
    finally:
        asyncio.run(_admin(admin_dsn, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))


async def _admin(dsn: str, statement: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
