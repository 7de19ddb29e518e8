"""``IDP_VAR_DIR`` holds the local state: the SQLite file, the generated secret and the outboxes.

Run as a deployer runs it: the ``idp`` command in a working directory of its own, with only
``IDP_VAR_DIR`` set, so that nothing may land in ``var/`` beside it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from idp.settings import load_settings


def _idp(cwd: Path, *args: str, **env: str) -> dict[str, object]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    done = subprocess.run(
        [sys.executable, "-m", "idp.cli", *args, "--json"],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_the_database_secret_and_outboxes_live_in_the_var_dir(tmp_path: Path) -> None:
    state, cwd = tmp_path / "state", tmp_path / "cwd"
    cwd.mkdir()
    _idp(cwd, "migrate", IDP_VAR_DIR=str(state))
    _idp(cwd, "tenant", "create", "--slug", "acme", "--name", "ACME", IDP_VAR_DIR=str(state))
    invited = _idp(
        cwd,
        "user",
        "invite",
        "--tenant",
        "acme",
        "--email",
        "ana.novak@example.com",
        "--phone",
        "+38640123456",
        IDP_VAR_DIR=str(state),
    )
    assert invited["mailed"] is True
    assert (state / "idp.db").is_file()
    assert (state / "secret_key").is_file()
    assert len(list((state / "outbox" / "mail").glob("*.eml"))) == 1
    assert list(cwd.iterdir()) == []  # nothing in a var/ of the working directory


def test_a_variable_of_its_own_still_wins_over_the_var_dir(tmp_path: Path) -> None:
    s = load_settings(
        env={
            "IDP_VAR_DIR": "/srv/idp",
            "IDP_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'other.db'}",
            "IDP_EMAIL_BACKEND": "smtp://mail.example:587",
            "IDP_SMS_BACKEND": f"file:{tmp_path / 'sms'}",
        }
    )
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path / 'other.db'}"
    assert s.email_backend == "smtp://mail.example:587"
    assert s.sms_backend == f"file:{tmp_path / 'sms'}"
    derived = load_settings(env={"IDP_VAR_DIR": "/srv/idp"})
    assert derived.database_url == "sqlite+aiosqlite:////srv/idp/idp.db"
    assert derived.email_backend == "file:/srv/idp/outbox/mail"
    assert derived.sms_backend == "file:/srv/idp/outbox/sms"
