from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from idp.storage import migrate


def _idp(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update(
        IDP_VAR_DIR=str(tmp_path / "var"),
        IDP_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'idp.db'}",
        IDP_SECRET_KEY="s" * 48,
    )
    return subprocess.run(
        [sys.executable, "-m", "idp.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_serve_refuses_an_unmigrated_database_with_a_clear_message(tmp_path: Path) -> None:
    result = _idp(tmp_path, "serve", "--port", "1")
    assert result.returncode == 2
    assert "run 'idp migrate'" in result.stderr
    assert "Traceback" not in result.stderr


def test_there_is_one_head_and_it_is_the_newest_migration() -> None:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    assert len(scripts.get_heads()) == 1, "migrations must form one line; re-chain down_revision"
    newest = max(scripts.walk_revisions(), key=lambda r: r.module.__file__ or "")
    assert migrate.head() == newest.revision
