"""``idp … | head``: a reader that goes away ends the command quietly, as it ends ``ls``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _idp(cwd: Path, *args: str, stdout: int | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")} | {
        "IDP_VAR_DIR": str(cwd / "var")
    }
    return subprocess.run(
        [sys.executable, "-m", "idp.cli", *args],
        cwd=cwd,
        env=env,
        stdout=stdout if stdout is not None else subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=120,
        check=False,
    )


def test_output_into_a_closed_pipe_is_no_traceback(tmp_path: Path) -> None:
    assert _idp(tmp_path, "migrate").returncode == 0
    assert _idp(tmp_path, "tenant", "create", "--slug", "acme", "--name", "ACME").returncode == 0
    reader, writer = os.pipe()
    os.close(reader)  # the reader is gone before the command writes
    try:
        done = _idp(tmp_path, "tenant", "list", stdout=writer)
    finally:
        os.close(writer)
    assert done.stderr == b"", done.stderr.decode()
    assert done.returncode == 141  # as a shell reports a command that SIGPIPE ended
    # what the command reads stays as it was, and a reader that stays gets the whole answer
    listed = _idp(tmp_path, "tenant", "list")
    assert listed.returncode == 0 and b"acme" in listed.stdout
