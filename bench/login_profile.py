"""Where a password + TOTP login spends its CPU: per request, in process, without HTTP serving.

    python bench/login_profile.py [--logins 300] [--postgresql [ADMIN_URL]] [--statements] [--cprofile FILE]

Runs the app in this process (httpx's ASGITransport, the app's own lifespan) and drives the
same flow as ``login_factors.py``, one login at a time. Around every request it reads the event
loop thread's CPU time (``time.thread_time``) and counts the SQL statements the database ran (on
SQLite every statement of the driver, BEGIN and COMMIT included). argon2 runs on the app's CPU
pool, another thread, so it is not in these figures; nor is HTTP parsing (uvicorn), which
``login_factors.py`` includes. Prints per request the median and the 10th percentile, and their
sums per login. SQLite by default (a fresh file); ``--postgresql`` makes a fresh database on a
PostgreSQL server instead (the local one by default) and drops it afterwards.

The CPU times move with whatever else shares the core; for a count that does not, run it under
callgrind with ``--callgrind``, which switches instrumentation on for the measured logins only
(the client's work included, about half of it):

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/dev/null \\
        .venv/bin/python bench/login_profile.py --callgrind --logins 100

and divide callgrind's "Collected" instructions by the logins. That figure holds every thread:
argon2 on the CPU pool too (about 190M instructions a login). To count the app's work on the
event loop thread alone, add ``--server-only`` here and ``--collect-atstart=no`` to valgrind: the
loop thread then collects only while the app handles a request (the client's work left out);
with ``--cprofile``, ``--server-only`` likewise profiles only the app's handling of requests.
Under valgrind a minute passes every few dozen logins, and the signing keys' reload each minute
(an RSA key check: some 380M instructions, once a minute when served) would land in the count as
login work, as often as the machine is slow; ``--callgrind`` leaves that timer out, and does not
count statements (SQLite's trace callback, which counts them, formats each with its values).
It also collects the garbage before the measured logins and freezes what is left (``gc.freeze``),
so that whether a full collection over the start-up's objects falls among them is not chance.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import ctypes
import gc
import mmap
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))

import httpx  # noqa: E402
from login_factors import PG_ADMIN_URL, fresh_postgresql, one_login, prepare  # noqa: E402
from sqlalchemy import event  # noqa: E402

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


# valgrind.h's client request on amd64: the preamble valgrind recognises, then xchg rbx,rbx with
# the request block's address in rax; the answer comes back in rdx (the default outside valgrind)
_CLIENT_REQUEST = bytes.fromhex(
    "4889f8"  # mov rax, rdi: the request block
    "4889f2"  # mov rdx, rsi: the default answer
    "48c1c70348c1c70d48c1c73d48c1c733"  # rol rdi, 3; rol rdi, 13; rol rdi, 61; rol rdi, 51
    "4887db"  # xchg rbx, rbx
    "4889d0"  # mov rax, rdx
    "c3"  # ret
)
_TOGGLE_COLLECT = (ord("C") << 24 | ord("T") << 16) + 2  # callgrind.h's VG_USERREQ__TOGGLE_COLLECT


def collect_toggle() -> Callable[[], None]:
    """CALLGRIND_TOGGLE_COLLECT for the calling thread, without a compiler: the client request's
    machine code in an executable page."""
    if platform.machine() != "x86_64" or sys.platform != "linux":
        raise SystemExit("--server-only needs Linux on x86-64")
    page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(_CLIENT_REQUEST)
    address = ctypes.addressof(ctypes.c_char.from_buffer(page))
    request = ctypes.CFUNCTYPE(ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong)(address)
    block = (ctypes.c_ulong * 6)(_TOGGLE_COLLECT)

    def toggle() -> None:
        request(ctypes.addressof(block), 0)

    toggle.page = page  # type: ignore[attr-defined]  # keep the code alive
    return toggle


class Meter:
    """ASGI wrapper: CPU time of the loop thread and statements per request, in order."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.enter: list[Callable[[], None]] = []
        self.leave: list[Callable[[], None]] = []
        self.statements = 0
        self.show = False
        self.samples: list[tuple[str, float, int]] = []

    def count(self, statement: str) -> None:
        self.statements += 1
        if self.show:
            print("    " + " ".join(statement.split())[:160])

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.show:
            print(f"  {scope['method']} {scope['path']}")
        cpu, statements = time.thread_time(), self.statements
        for enter in self.enter:
            enter()
        await self.app(scope, receive, send)
        for leave in self.leave:
            leave()
        label = f"{scope['method']} {scope['path']}"
        self.samples.append((label, time.thread_time() - cpu, self.statements - statements))


def keep_keys() -> None:
    """Measurement only: no periodic reload of the signing keys (see the module docstring)."""
    from idp.web.state import AppState

    async def never(self: AppState, every: float = 60.0) -> None:
        await asyncio.Event().wait()

    AppState._refresh_periodically = never  # type: ignore[method-assign]


def callgrind(on: bool) -> None:
    argv = ["callgrind_control", "-i", "on" if on else "off", str(os.getpid())]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)


def _counting(execute: Callable[..., Any], meter: Meter) -> Callable[..., Any]:
    def counted(self: Any, operation: str, *args: Any, **kwargs: Any) -> Any:
        meter.count(operation)
        return execute(self, operation, *args, **kwargs)

    return counted


async def run(
    url: str,
    var: Path,
    logins: int,
    warmup: int,
    *,
    show: bool = False,
    profiler: Any = None,
    instrument: bool = False,
    server_only: bool = False,
) -> list[list[tuple[str, float, int]]]:
    from idp.settings import load_settings
    from idp.web.app import create_app

    if instrument:
        keep_keys()
    secret_key = secrets.token_urlsafe(48)
    client_id, client_secret, people = await prepare(url, secret_key, logins + warmup)
    # the served app is another process than the one that prepared the eIDs: its audit trail has
    # no eID's key at hand when that eID signs in
    from idp import audit

    audit._CIPHER_CACHE.clear()
    settings = load_settings(
        env={},
        database_url=url,
        secret_key=secret_key,
        var_dir=var / "var",
        email_backend=f"file:{var / 'mail'}",
        sms_backend=f"file:{var / 'sms'}",
        issuer="http://127.0.0.1",
        login_free_failures_per_ip=1_000_000,
    )
    app = create_app(settings)
    meter = Meter(app)
    db = app.state.idp.db
    engine = db.sync_engine if db.sync_engine is not None else db._async_engine.sync_engine
    if instrument:
        pass  # SQLite's trace callback formats every statement with its values: not the app's work
    elif db.sync_engine is not None:
        # SQLite: every statement the driver runs, also those idp.storage.prepared sends it directly
        event.listen(engine, "connect", lambda dbapi, _record: dbapi.set_trace_callback(meter.count))
    else:
        # PostgreSQL: every statement on the asyncpg dialect's DBAPI cursor, which both
        # SQLAlchemy's execution and idp.storage.prepared use (the latter past SQLAlchemy's events)
        from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_cursor as cursor

        for method in ("execute", "executemany"):  # for this process's life: it profiles, then ends
            setattr(cursor, method, _counting(getattr(cursor, method), meter))
    per_login: list[list[tuple[str, float, int]]] = []
    transport = httpx.ASGITransport(app=meter)  # type: ignore[arg-type]
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(app.router.lifespan_context(app))
        client = await stack.enter_async_context(
            httpx.AsyncClient(
                transport=transport, base_url="http://127.0.0.1", headers={"Accept-Language": "en"}
            )
        )
        for n, (email, app_secret) in enumerate(people.items()):
            if n == warmup:
                if instrument:
                    # a full collection over the start-up's objects would land in the count or not,
                    # by chance: collect them now and leave them out of later collections
                    gc.collect()
                    gc.freeze()
                    callgrind(True)
                if server_only and instrument:
                    toggle = collect_toggle()
                    meter.enter.append(toggle)
                    meter.leave.append(toggle)
                if server_only and profiler is not None:
                    meter.enter.append(profiler.enable)
                    meter.leave.append(profiler.disable)
                elif profiler is not None:
                    profiler.enable()
            meter.samples = []
            meter.show = show and n == warmup
            await one_login(
                client, client_id=client_id, client_secret=client_secret, email=email, secret=app_secret
            )
            if n >= warmup:
                per_login.append(meter.samples)
        if instrument:
            callgrind(False)
    if profiler is not None:
        profiler.disable()
    return per_login


def report(per_login: list[list[tuple[str, float, int]]], backend: str) -> None:
    """Per request: median and 10th percentile of CPU time (the low one moves least when other
    programs share the core), statements; per login: the sums, and the mean (with garbage
    collections, which fall on a few requests)."""
    print(
        f"{len(per_login)} logins on {backend}: CPU of the event loop thread per request (no argon2, no HTTP)"
    )
    print(f"{'#':>2}  {'request':<24} {'median ms':>9} {'p10 ms':>7} {'stmts':>6}")
    low = median = 0.0
    statements = 0
    for i, (label, _cpu, _n) in enumerate(per_login[0]):
        times = sorted(s[i][1] * 1000 for s in per_login)
        mid, p10 = statistics.median(times), times[len(times) // 10]
        count = int(statistics.median(s[i][2] for s in per_login))
        median, low, statements = median + mid, low + p10, statements + count
        print(f"{i + 1:>2}  {label:<24} {mid:9.2f} {p10:7.2f} {count:6d}")
    mean = statistics.fmean(sum(s[1] for s in samples) * 1000 for samples in per_login)
    print(f"    {'per login':<24} {median:9.2f} {low:7.2f} {statements:6d}   mean {mean:.2f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--logins", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument(
        "--postgresql",
        nargs="?",
        const=PG_ADMIN_URL,
        metavar="ADMIN_URL",
        help=f"a fresh database on this PostgreSQL server instead of SQLite (default {PG_ADMIN_URL})",
    )
    parser.add_argument("--statements", action="store_true", help="print the SQL of one login, per request")
    parser.add_argument("--cprofile", metavar="FILE", help="also write a cProfile of the measured logins")
    parser.add_argument("--callgrind", action="store_true", help="toggle callgrind around the logins")
    parser.add_argument(
        "--server-only", action="store_true", help="callgrind, cProfile: only the app's work on the loop"
    )
    args = parser.parse_args()
    profiler = cProfile.Profile() if args.cprofile else None
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as work, contextlib.ExitStack() as cleanup:
        var = Path(work)
        url = (
            fresh_postgresql(args.postgresql, cleanup)
            if args.postgresql
            else f"sqlite+aiosqlite:///{var / 'idp.db'}"
        )
        per_login = asyncio.run(
            run(
                url,
                var,
                args.logins,
                args.warmup,
                show=args.statements,
                profiler=profiler,
                instrument=args.callgrind,
                server_only=args.server_only,
            )
        )
    if profiler is not None:
        profiler.dump_stats(args.cprofile)
    report(per_login, url.split(":", 1)[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
