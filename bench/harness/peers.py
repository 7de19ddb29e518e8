"""The two servers of the token benchmarks, each started fresh and stopped afterwards.

Each yields a :class:`Target` once its token endpoint answers, with a file of refresh
tokens minted before the run (one per line, each usable once).
"""

from __future__ import annotations

import base64
import contextlib
import secrets
import string
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from harness.processes import (
    BenchError,
    clean_env,
    free_port,
    http_ok,
    json_object,
    run_checked,
    running,
    wait_until,
)

BENCH_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = BENCH_DIR.parent
NODE_DIR = BENCH_DIR / "node"


@dataclass(slots=True, frozen=True)
class Target:
    """A running server: its token endpoint and the credentials of the benchmark client."""

    name: str
    pid: int  # leads the server's process group
    token_url: str
    client_id: str
    client_secret: str
    refresh_tokens: Path

    @property
    def authorization(self) -> str:
        return basic_authorization(self.client_id, self.client_secret)


def basic_authorization(client_id: str, client_secret: str) -> str:
    # RFC 6749 §2.3.1: id and secret are form-encoded before the Basic encoding.
    pair = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def say(message: str) -> None:
    print(message, flush=True)


def ensure_node_modules() -> None:
    if (NODE_DIR / "node_modules").is_dir():
        return
    say("bench/node/node_modules is missing: npm ci")
    done = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"npm ci failed:\n{done.stdout}{done.stderr}")


@contextlib.contextmanager
def node_oidc_provider(work: Path, *, refresh_tokens: int) -> Iterator[Target]:
    """node-oidc-provider from ``bench/node/server.js``: one process, in-memory, opaque tokens."""
    ensure_node_modules()
    port = free_port()
    secret = secrets.token_urlsafe(32)
    tokens, log = work / "node-refresh-tokens.txt", work / "node.log"
    env = clean_env() | {"NODE_ENV": "production", "BENCH_CLIENT_SECRET": secret}
    argv = ["node", "server.js", "--port", str(port), "--refresh-tokens", str(refresh_tokens)]
    argv += ["--token-file", str(tokens)]
    say(f"node: starting on port {port}, minting {refresh_tokens} refresh tokens")
    started = time.monotonic()
    with running(argv, env=env, log=log, cwd=NODE_DIR) as proc:

        def ready() -> bool:
            return "READY " in log.read_text(errors="replace")

        wait_until(ready, proc, what="node-oidc-provider", log=log, timeout=900)
        say(f"node: ready after {time.monotonic() - started:.1f} s")
        yield Target("node", proc.pid, f"http://127.0.0.1:{port}/token", "bench", secret, tokens)


CLIENT_ARGS = (
    "client create --tenant bench --name bench --type confidential"
    " --grant client_credentials --grant refresh_token --grant authorization_code"
    " --scope api --scope openid --redirect-uri http://127.0.0.1/cb"
    " --auth-method client_secret_basic --json"
).split()


@dataclass(slots=True, frozen=True)
class Prepared:
    """A fresh SQLite database of this IdP with the benchmark client, ready to serve."""

    env: dict[str, str]  # IDP_* settings for the server
    client_id: str
    client_secret: str
    refresh_tokens: Path


def prepare_ours(work: Path, *, bin_dir: Path, refresh_tokens: int, issuer: str) -> Prepared:
    """Migrate a new database under ``work``, create tenant and client, mint refresh tokens."""
    var_dir = work / "idp-var"
    var_dir.mkdir()
    alphabet = string.ascii_letters + string.digits
    env = clean_env() | {
        "IDP_VAR_DIR": str(var_dir),
        "IDP_DATABASE_URL": f"sqlite+aiosqlite:///{var_dir / 'idp.db'}",
        "IDP_ISSUER": issuer,
        "IDP_SECRET_KEY": "".join(secrets.choice(alphabet) for _ in range(48)),
    }
    idp = str(bin_dir / "idp")

    def setup(argv: list[str], what: str) -> str:
        return run_checked(argv, env=env, cwd=REPO_ROOT, what=what)

    say("ours: migrating, creating tenant and client")
    setup([idp, "migrate", "--json"], "idp migrate")
    tenant = setup([idp, "tenant", "create", "--slug", "bench", "--name", "Bench", "--json"], "tenant create")
    json_object(tenant, what="idp tenant create")
    client = json_object(setup([idp, *CLIENT_ARGS], "idp client create"), what="idp client create")
    try:
        client_id, client_secret = str(client["client_id"]), str(client["client_secret"])
    except KeyError as exc:
        raise BenchError(f"idp client create: no {exc} in {client}") from None

    tokens = work / "ours-refresh-tokens.txt"
    if refresh_tokens:
        say(f"ours: minting {refresh_tokens} refresh tokens")
        started = time.monotonic()
        mint = [str(bin_dir / "python"), "-m", "bench.mint_refresh_tokens", f"--client-id={client_id}"]
        setup([*mint, "--count", str(refresh_tokens), "--out", str(tokens)], "bench.mint_refresh_tokens")
        say(f"ours: minted in {time.monotonic() - started:.1f} s")
    return Prepared(env, client_id, client_secret, tokens)


@contextlib.contextmanager
def our_idp(work: Path, *, bin_dir: Path, refresh_tokens: int) -> Iterator[Target]:
    """This IdP on a fresh SQLite database, served by ``idp serve`` (one uvicorn worker)."""
    port = free_port()
    ready = prepare_ours(
        work, bin_dir=bin_dir, refresh_tokens=refresh_tokens, issuer=f"http://127.0.0.1:{port}"
    )
    log = work / "ours.log"
    argv = [
        str(bin_dir / "idp"),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    with running(argv, env=ready.env, log=log, cwd=REPO_ROOT) as proc:
        health = f"http://127.0.0.1:{port}/healthz"
        wait_until(lambda: http_ok(health), proc, what="idp serve", log=log, timeout=120)
        say(f"ours: ready on port {port}")
        url = f"http://127.0.0.1:{port}/token"
        yield Target("ours", proc.pid, url, ready.client_id, ready.client_secret, ready.refresh_tokens)
