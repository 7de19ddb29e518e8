"""Token endpoint CPU per token inside one process: the ASGI app driven directly, no HTTP.

    .venv/bin/python bench/token_inprocess.py [--grant refresh_token] [--requests 4000] [--rounds 3]

A fresh SQLite database is prepared as for token_grants.py (same client, same minted refresh
tokens), then the app answers ``--requests`` token requests per round from ``--concurrency``
loops, so group commits form as under wrk. It prints the process's CPU time per token
(``time.process_time``: the event loop and the SQLite checkpointer thread) per round. With
other programs on the cores that figure still moves; for a count that does not, run it under
callgrind with ``--callgrind``, which switches instrumentation on for the measured rounds only:

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/dev/null \\
        .venv/bin/python bench/token_inprocess.py --callgrind --requests 800 --rounds 1

and divide callgrind's "Collected" instructions by the requests printed. ``--without PART``
prices one part of the work by leaving it out (measurement only: the tokens are still issued, but
the audit trail, say, is then not written): ``audit`` (the whole event), ``audit-chain`` (its
hash), ``audit-insert`` (its row), ``audit-seal`` (the username's encryption), ``metrics`` (the
Prometheus middleware). Run it under callgrind with and without, and subtract. Uvicorn's own work
(HTTP parsing, socket writes) is not in either figure. ``--cprofile FILE`` writes a cProfile of
the measured rounds (not the start-up) to FILE, for ``python -m pstats FILE``; the profiler
roughly doubles the CPU per token, so read its shares, not its times.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from harness.peers import basic_authorization, prepare_ours
from harness.processes import BenchError

GRANTS = ("client_credentials", "refresh_token")
ISSUER = "http://127.0.0.1:8000"  # never listened on: requests go straight to the app
WARMUP = 256


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--grant", choices=GRANTS, default="refresh_token")
    parser.add_argument("--requests", type=int, default=4000, help="per round (default 4000)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight (default 16)")
    parser.add_argument("--callgrind", action="store_true", help="toggle callgrind around the rounds")
    parser.add_argument("--cprofile", metavar="FILE", help="write a cProfile of the measured rounds to FILE")
    parser.add_argument(
        "--without", choices=sorted(WITHOUT), action="append", default=[], help="leave PART out, to price it"
    )
    return parser.parse_args()


def _without_audit() -> None:
    from idp import audit

    audit.record = lambda tx, event: ""


def _without_audit_chain() -> None:
    from idp import audit

    audit.chain_hash = lambda prev_hash, row: "0" * 64


def _without_audit_insert() -> None:
    from idp.storage import database, tables

    keep = database.Tx.defer_insert

    def defer_insert(self: database.Tx, table: object, row: dict[str, object]) -> None:
        if table is not tables.audit_events:
            keep(self, table, row)  # type: ignore[arg-type]

    database.Tx.defer_insert = defer_insert  # type: ignore[method-assign]


def _without_audit_seal() -> None:
    from idp import audit

    audit._seal_username = lambda tx, eid_id, username: username


def _without_metrics() -> None:
    from idp.web import metrics

    async def through(self: metrics.MetricsMiddleware, scope: object, receive: object, send: object) -> None:
        await self.app(scope, receive, send)  # type: ignore[arg-type]

    metrics.MetricsMiddleware.__call__ = through  # type: ignore[method-assign]


WITHOUT = {
    "audit": _without_audit,
    "audit-chain": _without_audit_chain,
    "audit-insert": _without_audit_insert,
    "audit-seal": _without_audit_seal,
    "metrics": _without_metrics,
}


def callgrind(on: bool) -> None:
    argv = ["callgrind_control", "-i", "on" if on else "off", str(os.getpid())]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)


async def drive(
    args: argparse.Namespace, prepared_env: dict[str, str], authorization: str, tokens: Iterator[str]
) -> None:
    os.environ.update(prepared_env)
    from idp.settings import ensure_secret_key, load_settings
    from idp.web.app import create_app

    app = create_app(ensure_secret_key(load_settings()))
    statuses: Counter[int] = Counter()
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"authorization", authorization.encode()),
        (b"content-type", b"application/x-www-form-urlencoded"),
    ]

    async def one() -> None:
        if args.grant == "client_credentials":
            body = b"grant_type=client_credentials&scope=api"
        else:
            body = b"grant_type=refresh_token&refresh_token=" + next(tokens).encode()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/token",
            "raw_path": b"/token",
            "query_string": b"",
            "root_path": "",
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8000),
        }
        received = False

        async def receive() -> dict[str, object]:
            nonlocal received
            if received:
                await asyncio.Event().wait()  # no disconnect while the response is written
            received = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                statuses[int(message["status"])] += 1  # type: ignore[call-overload]

        await app(scope, receive, send)  # type: ignore[arg-type]

    async def loops(total: int) -> int:
        each: int = total // args.concurrency

        async def loop() -> None:
            for _ in range(each):
                await one()

        await asyncio.gather(*(loop() for _ in range(args.concurrency)))
        return each * int(args.concurrency)

    profile = cProfile.Profile() if args.cprofile else None
    async with app.router.lifespan_context(app):
        await loops(WARMUP)
        best = None
        for number in range(1, args.rounds + 1):
            statuses.clear()
            if args.callgrind:
                callgrind(True)
            if profile is not None:
                profile.enable()
            cpu, wall = time.process_time(), time.perf_counter()
            done = await loops(args.requests)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            if profile is not None:
                profile.disable()
            if args.callgrind:
                callgrind(False)
            if set(statuses) != {200}:
                raise BenchError(f"round {number}: answers other than 200: {dict(statuses)}")
            per_token = 1e6 * cpu / done
            best = per_token if best is None else min(best, per_token)
            rate = f"{per_token:.0f} us CPU per token ({done / wall:.0f}/s wall)"
            print(f"{args.grant} round {number}: {done} tokens, {rate}")
        print(f"{args.grant}: lowest {best:.0f} us CPU per token")
    if profile is not None:
        profile.dump_stats(args.cprofile)
        print(f"profile of the measured rounds: {args.cprofile}")


def main() -> int:
    args = parse_args()
    for part in args.without:
        WITHOUT[part]()
        print(f"without {part} (measurement only)")
    work = Path(tempfile.mkdtemp(prefix="token-inprocess-"))
    try:
        minted = (WARMUP + args.requests * args.rounds) if args.grant == "refresh_token" else 0
        prepared = prepare_ours(
            work, bin_dir=Path(sys.executable).parent, refresh_tokens=minted, issuer=ISSUER
        )
        tokens = iter(prepared.refresh_tokens.read_text().split()) if minted else iter(())
        authorization = basic_authorization(prepared.client_id, prepared.client_secret)
        asyncio.run(drive(args, prepared.env, authorization, tokens))
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
