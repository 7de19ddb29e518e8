"""Start servers in their own process group, wait for them, and always stop them."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path


class BenchError(Exception):
    """A step of a benchmark failed; the message says which and why."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env() -> dict[str, str]:
    """The caller's environment less anything that would configure a server under test."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "NODE_", "DEBUG"))}


@contextlib.contextmanager
def running(
    argv: list[str], *, env: dict[str, str], log: Path, cwd: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` in a new session with output to ``log``; on exit stop its whole group."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes], *, grace: float = 15) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def tail(log: Path, lines: int = 30) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    return ""


def wait_until(
    ready: Callable[[], bool], proc: subprocess.Popen[bytes], *, what: str, log: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with status {proc.returncode} before it was ready:\n{tail(log)}")
        if ready():
            return
        time.sleep(0.1)
    raise BenchError(f"{what} was not ready after {timeout:.0f} s:\n{tail(log)}")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def run_checked(argv: list[str], *, env: dict[str, str], cwd: Path, what: str, timeout: float = 900) -> str:
    """Run a set-up command to completion and return its stdout; any failure raises."""
    try:
        done = subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise BenchError(f"{what}: {exc}") from None
    except subprocess.TimeoutExpired:
        raise BenchError(f"{what}: not finished after {timeout:.0f} s") from None
    if done.returncode != 0:
        raise BenchError(f"{what} failed with status {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout


def json_object(output: str, *, what: str) -> dict[str, object]:
    """The JSON object a ``--json`` command printed: all of stdout, or else its last line."""
    candidates = [output, *reversed(output.strip().splitlines())]
    for text in candidates:
        with contextlib.suppress(ValueError):
            value = json.loads(text)
            if isinstance(value, dict):
                return value
    raise BenchError(f"{what}: expected a JSON object on stdout, got:\n{output}")
