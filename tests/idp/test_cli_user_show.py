"""``idp user show``: status, lock and enrolled factors of an eID, never a secret."""

from __future__ import annotations

import asyncio
import email
import email.policy
import shutil
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from idp import eids, lockout, tenants
from idp.storage.database import Database
from levels_of_assurance.authenticators import password, recovery_codes
from tests.idp.test_cli import Cli, _env, cli

__all__ = ["cli"]


def _enrol(cli: Cli) -> None:
    async def run() -> None:
        db = Database(f"sqlite+aiosqlite:///{cli.database}")

        def unit(tx: Any) -> None:
            tenant = tenants.get(tx.conn, "acme")
            person = eids.find_by_email(tx.conn, tenant_id=tenant.id, email="ana@example.com")
            assert person is not None
            password.set_hash(
                tx, eid_id=person.id, tenant_id=tenant.id, new_hash="$argon2id$secret-hash", reason="set"
            )
            eids.mark_verified(tx, eid_id=person.id, name="phone_number", method="sms")
            recovery_codes.issue(tx, eid_id=person.id, now=time.time())
            lockout.lock(tx, eid_id=person.id, tenant_id=tenant.id, reason="password_failures")

        try:
            await db.write(unit)
        finally:
            await db.close()

    asyncio.run(run())


def _ana(cli: Cli) -> None:
    """Tenant acme with Ana, whose number nobody confirmed yet."""
    cli("tenant", "create", "--slug", "acme", "--name", "Acme", "--json")
    cli(
        "user",
        "create",
        "--tenant",
        "acme",
        "--email",
        "ana@example.com",
        "--phone",
        "+38640123456",
        "--json",
    )


def test_user_show(cli: Cli) -> None:
    _ana(cli)
    fresh = cli("user", "show", "--tenant", "acme", "--email", "Ana@example.com", "--json").json()
    assert fresh["status"] == "active" and fresh["locked"] is False
    assert fresh["factors"] == {
        "password": False,
        "authenticator_app": False,
        "sms_phone": None,  # a number nobody confirmed is not a factor
        "recovery_codes_left": 0,
        "passkeys": [],
    }
    assert fresh["can_reach_advanced"] is False
    _enrol(cli)
    shown = cli("user", "show", "--tenant", "acme", "--email", "ana@example.com", "--json")
    data = shown.json()
    assert data["locked"] is True
    assert data["factors"]["password"] is True and data["factors"]["sms_phone"] == "+38640123456"
    assert data["factors"]["recovery_codes_left"] == 10 and data["can_reach_advanced"] is True
    assert "argon2" not in shown.stdout and "secret-hash" not in shown.stdout
    cli("user", "suspend", "--tenant", "acme", "--email", "ana@example.com", "--json")
    human = cli("user", "show", "--tenant", "acme", "--email", "ana@example.com").stdout
    assert "status: suspended" in human and "LOCKED" in human and "recovery codes left: 10" in human


def test_user_show_unknown(cli: Cli) -> None:
    cli("tenant", "create", "--slug", "acme", "--name", "Acme", "--json")
    error = cli("user", "show", "--tenant", "acme", "--email", "nobody@example.com", "--json", code=2).json()
    assert error["error"] == "not_found"
    cli("user", "show", "--tenant", "acme", "--email", "not an address", "--json", code=2)


def _mails(directory: Path) -> list[EmailMessage]:
    found = []
    for path in sorted(directory.glob("*.eml")) if directory.is_dir() else []:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        found.append(message)
    return found


def test_unlock_and_enable_tell_the_person(tmp_path: Path, sqlite_template: Path) -> None:
    """What an administrator lifts is told at the eID's address, in the service's first language
    (the eID came from no invitation), once: not for an unlock of an eID that was not locked."""
    shutil.copy(sqlite_template, tmp_path / "idp.db")
    outbox = tmp_path / "mail"
    run = Cli(tmp_path, _env(tmp_path, IDP_EMAIL_BACKEND=f"file:{outbox}"))
    _ana(run)
    _enrol(run)  # locks it
    run("user", "unlock", "--tenant", "acme", "--email", "ana@example.com", "--json")
    [unlocked] = _mails(outbox)
    assert unlocked["To"] == "ana@example.com" and unlocked["Subject"] == "Vaš eID je bil odklenjen"
    run("user", "unlock", "--tenant", "acme", "--email", "ana@example.com", "--json")  # not locked now
    run("user", "suspend", "--tenant", "acme", "--email", "ana@example.com", "--json")
    assert len(_mails(outbox)) == 1  # a suspension is not told (an investigation may be under way)
    run("user", "enable", "--tenant", "acme", "--email", "ana@example.com", "--json")
    run("user", "enable", "--tenant", "acme", "--email", "ana@example.com", "--json")  # active already
    assert [m["Subject"] for m in _mails(outbox)] == [unlocked["Subject"], "Vaš eID lahko znova uporabljate"]
