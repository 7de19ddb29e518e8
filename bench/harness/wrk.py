"""Run wrk with one of the scripts in ``bench/wrk/`` and read its RESULT line."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.processes import BenchError

SCRIPTS = Path(__file__).resolve().parent.parent / "wrk"

_RESULT = re.compile(r"^RESULT (.*)$", re.MULTILINE)
_STATUSES = re.compile(r"^STATUSES (.*)$", re.MULTILINE)


@dataclass(slots=True, frozen=True)
class WrkResult:
    """One wrk run as printed by ``bench/wrk/report.lua``; latencies in milliseconds."""

    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non2xx: int
    errors: int
    requests: int
    exhausted: int = 0
    statuses: str = ""

    @property
    def problems(self) -> list[str]:
        found = []
        if self.requests == 0:
            found.append("no request completed")
        if self.non2xx:
            found.append(f"non2xx={self.non2xx} ({self.statuses})")
        if self.errors:
            found.append(f"socket errors={self.errors}")
        if self.exhausted:
            found.append("ran out of refresh tokens (raise --refresh-tokens)")
        return found

    @property
    def valid(self) -> bool:
        return not self.problems


def parse(output: str) -> WrkResult:
    match = _RESULT.search(output)
    if not match:
        raise BenchError(f"wrk printed no RESULT line:\n{output}")
    fields = dict(pair.split("=", 1) for pair in match.group(1).split())
    statuses = _STATUSES.search(output)
    try:
        return WrkResult(
            rps=float(fields["rps"]),
            p50_ms=float(fields["p50_ms"]),
            p90_ms=float(fields["p90_ms"]),
            p99_ms=float(fields["p99_ms"]),
            max_ms=float(fields["max_ms"]),
            non2xx=int(fields["non2xx"]),
            errors=int(fields["errors"]),
            requests=int(fields["requests"]),
            exhausted=int(fields.get("exhausted", "0")),
            statuses=statuses.group(1) if statuses else "",
        )
    except (KeyError, ValueError) as exc:
        raise BenchError(f"unexpected RESULT line {match.group(0)!r}: {exc}") from None


def run(
    url: str,
    script: str,
    *,
    env: dict[str, str],
    seconds: int,
    connections: int,
    threads: int = 1,
    timeout: str = "5s",
) -> tuple[WrkResult, str]:
    """Load ``url`` for ``seconds``; ``env`` carries the script's BENCH_* settings."""
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", timeout]
    argv += ["-s", str(SCRIPTS / script), url]
    done = subprocess.run(
        argv,
        env=os.environ | env | {"BENCH_WRK_THREADS": str(threads)},
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"wrk failed with status {done.returncode}:\n{done.stdout}{done.stderr}")
    return parse(done.stdout), done.stdout
