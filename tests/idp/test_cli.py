"""The ``idp`` command, run as operators and scripts run it: a subprocess per command.

Exit codes: 0 done, 2 a wrong argument or a refused change, 3 a broken audit trail.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from idp import audit, tenants
from idp.storage.database import Database

SECRET = "cli-secret-" + "z" * 40


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        try:
            return json.loads(self.stdout)
        except json.JSONDecodeError as exc:  # pragma: no cover - the failure message is the point
            raise AssertionError(f"not JSON ({exc}): {self.stdout!r}; stderr {self.stderr!r}") from None


@dataclass
class Cli:
    directory: Path
    env: dict[str, str]

    @property
    def database(self) -> Path:
        return self.directory / "idp.db"

    def __call__(self, *args: str, code: int = 0, command: tuple[str, ...] | None = None) -> Result:
        done = subprocess.run(
            [*(command or (sys.executable, "-m", "idp.cli")), *args],
            cwd=self.directory,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        result = Result(done.returncode, done.stdout, done.stderr)
        assert result.code == code, (args, result)
        if "--json" in args:
            result.json()  # every --json output parses, errors included
        return result


def _env(directory: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update(
        IDP_DATABASE_URL=f"sqlite+aiosqlite:///{directory / 'idp.db'}",
        IDP_VAR_DIR=str(directory / "var"),
        IDP_SECRET_KEY=SECRET,
        **extra,
    )
    return env


@pytest.fixture
def bare(tmp_path: Path) -> Cli:
    """The command on a directory with nothing in it yet (no database, no var/)."""
    return Cli(tmp_path, _env(tmp_path))


@pytest.fixture
def cli(tmp_path: Path, sqlite_template: Path) -> Cli:
    """The command on a migrated, empty database."""
    shutil.copy(sqlite_template, tmp_path / "idp.db")
    return Cli(tmp_path, _env(tmp_path))


def _tenant(cli: Cli, slug: str = "acme") -> dict[str, Any]:
    created: dict[str, Any] = cli("tenant", "create", "--slug", slug, "--name", slug.title(), "--json").json()
    return created


def _seed(cli: Cli, *slugs: str) -> None:
    """Tenants made in-process (set-up for the commands under test, without a subprocess each)."""

    async def run() -> None:
        db = Database(f"sqlite+aiosqlite:///{cli.database}")
        try:
            for slug in slugs:
                await db.write(lambda tx, s=slug: tenants.create(tx, slug=s, name=s.title()))  # type: ignore[misc]
        finally:
            await db.close()

    asyncio.run(run())


def test_migrate_creates_the_schema_and_is_repeatable(bare: Cli) -> None:
    first = bare("migrate", "--json").json()
    assert first["revision"]
    assert bare.database.exists()
    assert bare("migrate", "--json").json() == first
    assert first["revision"] in bare("migrate").stdout
    assert bare("--json", "migrate").json() == first  # --json before the command works too


def test_console_script(bare: Cli) -> None:
    script = Path(sys.executable).with_name("idp")
    assert script.exists(), "the package is not installed with its console script"
    assert bare("migrate", "--json", command=(str(script),)).json()["revision"]


def test_tenant_create_and_list(cli: Cli) -> None:
    acme = _tenant(cli, "acme")
    assert acme["slug"] == "acme" and acme["name"] == "Acme" and acme["status"] == "active"
    _tenant(cli, "beta")
    listed = cli("tenant", "list", "--json").json()
    assert [t["slug"] for t in listed] == ["acme", "beta"]
    assert listed[0]["id"] == acme["id"]
    assert cli("--json", "tenant", "list").json() == listed
    human = cli("tenant", "list").stdout
    assert "acme" in human and acme["id"] in human


def test_duplicate_tenant_slug(cli: Cli) -> None:
    _tenant(cli, "acme")
    error = cli("tenant", "create", "--slug", "acme", "--name", "Again", "--json", code=2).json()
    assert error["ok"] is False and error["error"] == "conflict"
    assert "acme" in error["message"]
    human = cli("tenant", "create", "--slug", "acme", "--name", "Again", code=2)
    assert "already exists" in human.stderr and human.stdout == ""
    assert len(cli("tenant", "list", "--json").json()) == 1


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--slug", "Not A Slug", "--name", "X"), "slug"),
        (("--slug", "ok", "--name", "X", "--branding", "{not json"), ""),
        (("--slug", "ok", "--name", "X", "--branding", '{"primary_color": "red"}'), "primary_color"),
    ],
)
def test_bad_tenant_arguments(cli: Cli, args: tuple[str, ...], words: str) -> None:
    error = cli("tenant", "create", *args, "--json", code=2).json()
    assert error["error"] == "invalid_argument" and words in error["message"]
    assert cli("tenant", "list", "--json").json() == []


def test_confidential_client_gets_a_secret_once(cli: Cli) -> None:
    _tenant(cli)
    created = cli(
        "client",
        "create",
        "--tenant",
        "acme",
        "--name",
        "Signing app",
        "--redirect-uri",
        "https://rp.example/cb",
        "--json",
    ).json()
    assert created["client_type"] == "confidential"
    assert created["token_endpoint_auth_method"] == "client_secret_basic"
    assert len(created["client_secret"]) >= 32
    assert "secret_digest" not in created
    assert created["redirect_uris"] == ["https://rp.example/cb"]
    with sqlite3.connect(cli.database) as conn:
        (digest,) = conn.execute(
            "SELECT secret_digest FROM clients WHERE client_id = ?", (created["client_id"],)
        ).fetchone()
    assert digest != created["client_secret"] and created["client_secret"] not in digest


def test_public_client_without_a_secret(cli: Cli) -> None:
    _tenant(cli)
    created = cli(
        "client",
        "create",
        "--tenant",
        "acme",
        "--name",
        "SPA",
        "--type",
        "public",
        "--redirect-uri",
        "https://spa.example/cb",
        "--json",
    ).json()
    assert created["client_secret"] is None
    assert created["token_endpoint_auth_method"] == "none"


def test_public_client_with_client_credentials_is_refused(cli: Cli) -> None:
    _tenant(cli)
    error = cli(
        "client",
        "create",
        "--tenant",
        "acme",
        "--name",
        "SPA",
        "--type",
        "public",
        "--grant",
        "client_credentials",
        "--json",
        code=2,
    ).json()
    assert error == {
        "ok": False,
        "error": "invalid_argument",
        "message": "a public client cannot use client_credentials",
    }
    human = cli(
        "client",
        "create",
        "--tenant",
        "acme",
        "--name",
        "SPA",
        "--type",
        "public",
        "--grant",
        "client_credentials",
        code=2,
    )
    assert "public client cannot use client_credentials" in human.stderr


def test_client_for_an_unknown_tenant(cli: Cli) -> None:
    error = cli(
        "client",
        "create",
        "--tenant",
        "nope",
        "--name",
        "App",
        "--redirect-uri",
        "https://rp.example/cb",
        "--json",
        code=2,
    ).json()
    assert error["error"] == "not_found" and "nope" in error["message"]


def test_user_create(cli: Cli) -> None:
    acme = _tenant(cli)
    person = cli(
        "user",
        "create",
        "--tenant",
        "acme",
        "--email",
        "Ana@Example.com",
        "--given-name",
        "Ana",
        "--family-name",
        "Novak",
        "--phone",
        "+38640123456",
        "--country",
        "si",
        "--json",
    ).json()
    assert person["tenant_id"] == acme["id"]
    assert person["username"] == "ana@example.com"
    assert {k: v["value"] for k, v in person["attributes"].items()} == {
        "email": "Ana@Example.com",
        "given_name": "Ana",
        "family_name": "Novak",
        "phone_number": "+38640123456",
        "country": "SI",
    }
    again = cli("user", "create", "--tenant", "acme", "--email", "ana@example.com", "--json", code=2).json()
    assert again["error"] == "conflict"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--email", "not-an-address"), "not an email address: 'not-an-address'"),
        (("--email", "ana@example.com", "--phone", "040 123 456"), "E.164"),
        (("--email", "ana@example.com", "--country", "Slovenia"), "ISO 3166-1"),
    ],
)
def test_user_create_with_bad_attributes(cli: Cli, extra: tuple[str, ...], message: str) -> None:
    _tenant(cli)
    error = cli("user", "create", "--tenant", "acme", *extra, "--json", code=2).json()
    assert error["ok"] is False and error["error"] == "invalid_argument"
    assert message in error["message"]
    human = cli("user", "create", "--tenant", "acme", *extra, code=2)
    assert message in human.stderr


def test_keys_rotate(cli: Cli) -> None:
    first = cli("keys", "rotate", "--json").json()
    assert first["retired"] == [] and len(first["active"]) == 2
    second = cli("keys", "rotate", "--keep-for", "60", "--json").json()
    assert sorted(second["retired"]) == sorted(first["active"])
    assert set(second["active"]).isdisjoint(first["active"])
    assert second["old_keys_published_for_seconds"] == 60
    with sqlite3.connect(cli.database) as conn:
        rows = conn.execute("SELECT kid, status, not_after - retired_at FROM signing_keys").fetchall()
    assert {kid: status for kid, status, _ in rows} == {
        **{k: "retired" for k in first["active"]},
        **{k: "active" for k in second["active"]},
    }
    assert {keep for _, status, keep in rows if status == "retired"} == {60}


def test_without_a_configured_secret_one_is_made_and_kept(tmp_path: Path, sqlite_template: Path) -> None:
    shutil.copy(sqlite_template, tmp_path / "idp.db")
    env = _env(tmp_path)
    del env["IDP_SECRET_KEY"]
    cli = Cli(tmp_path, env)
    cli("keys", "rotate", "--json")
    path = tmp_path / "var" / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = path.read_text(encoding="utf-8")
    cli("keys", "rotate", "--json")  # the retired keys were sealed with the same secret
    assert path.read_text(encoding="utf-8") == key


def test_audit_verify(cli: Cli) -> None:
    _tenant(cli, "acme")
    _tenant(cli, "beta")
    report = cli("audit", "verify", "--json").json()
    assert report["ok"] is True
    assert report["events"] == report["head_seq"] == 2
    assert len(report["head_hash"]) == 64
    assert "intact" in cli("audit", "verify").stdout


@pytest.mark.parametrize(
    "tamper",
    [
        "UPDATE audit_events SET success = 1 - success WHERE seq = 2",
        'UPDATE audit_events SET details = \'{"slug": "forged"}\' WHERE seq = 2',
        "DELETE FROM audit_events WHERE seq = 2",
        "UPDATE audit_events SET occurred_at = '2001-01-01T00:00:00.000000Z' WHERE seq IN (2, 3)",
    ],
)
def test_audit_verify_finds_tampering(cli: Cli, tamper: str) -> None:
    _seed(cli, "acme", "beta", "gamma", "delta")
    with sqlite3.connect(cli.database) as conn:
        conn.execute(tamper)
    broken = cli("audit", "verify", "--json", code=3).json()
    assert broken["ok"] is False and broken["error"] == "audit_chain_broken"
    assert broken["message"].startswith("audit event #2:"), broken
    human = cli("audit", "verify", code=3)
    assert "audit event #2:" in human.stderr


def test_audit_verify_finds_a_cut_off_tail(cli: Cli) -> None:
    _seed(cli, "acme", "beta", "gamma", "delta")
    with sqlite3.connect(cli.database) as conn:
        conn.execute("DELETE FROM audit_events WHERE seq >= 3")
    assert cli("audit", "verify", "--json", code=3).json()["message"].startswith("audit event #3:")


def test_audit_export_one_transaction(cli: Cli) -> None:
    async def record() -> None:
        db = Database(f"sqlite+aiosqlite:///{cli.database}")
        try:
            for step, txn in [("created", "T1"), ("noise", "T2"), ("sent", "T1"), ("signed", "T1")]:
                await db.write(
                    lambda tx, s=step, t=txn: audit.record(  # type: ignore[misc]
                        tx, audit.AuditEvent(f"document.{s}", transaction_id=t, transaction_name="Lease")
                    )
                )
        finally:
            await db.close()

    asyncio.run(record())
    for args in (("--json",), ()):
        events = cli("audit", "export", "--transaction", "T1", *args).json()
        assert [e["event_type"] for e in events] == ["document.created", "document.sent", "document.signed"]
        assert {e["transaction_id"] for e in events} == {"T1"}
        assert {"id", "occurred_at", "success", "details", "hash", "prev_hash"} <= set(events[0])
    assert cli("audit", "export", "--transaction", "nothing", "--json").json() == []


def test_demo_is_created_once(bare: Cli) -> None:
    bare("migrate", "--json")
    first = bare("demo", "--json").json()
    assert first["tenant"] == "demo" and first["client_id"] == "demo-app"
    assert first["user"] == "signer@example.com"
    assert len(first["client_secret"]) >= 32
    secret_file = bare.directory / "var" / "demo-client-secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    events = bare("audit", "verify", "--json").json()["events"]

    second = bare("demo", "--json").json()
    assert second == first  # the same client, and its secret from the file
    assert bare("audit", "verify", "--json").json()["events"] == events  # nothing new happened
    assert [t["slug"] for t in bare("tenant", "list", "--json").json()] == ["demo"]
    with sqlite3.connect(bare.database) as conn:
        assert conn.execute("SELECT count(*) FROM clients").fetchone() == (1,)
        assert conn.execute("SELECT username FROM eids").fetchall() == [("signer@example.com",)]
    human = bare("demo").stdout
    assert "demo-app" in human and "/authorize?" in human
    assert (
        first["invitation_link"].startswith("http") and first["invitation_link"] in human
    )  # onboarding ready


def test_usage_errors(cli: Cli) -> None:
    assert "usage:" in cli(code=2).stderr
    assert "required" in cli("tenant", "create", "--slug", "x", code=2).stderr
    assert (
        "invalid choice"
        in cli("client", "create", "--tenant", "a", "--name", "b", "--type", "x", code=2).stderr
    )


def test_client_create_as_login_token_portal(cli: Cli) -> None:
    """--login-token-acr: the secret is kept sealed for HS256, and --json never prints it sealed."""
    _seed(cli, "portal")
    args = ("client", "create", "--tenant", "portal", "--name", "Portal", "--grant", "client_credentials")
    made = cli(*args, "--login-token-acr", "urn:eid:loa:basic", "--json").json()
    assert made["login_token_acr"] == "urn:eid:loa:basic"
    assert made["client_secret"] and "login_token_secret" not in made
    too_high = cli(*args, "--login-token-acr", "urn:eid:loa:qualified", code=2).stderr
    assert "at most the advanced level" in too_high
