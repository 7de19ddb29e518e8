"""What a reader needs to interpret the figures: CPU, cores, runtimes, tool versions."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


def first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else "unavailable"


def interpreter(python: Path) -> str:
    """``python``'s version and the interpreter its virtualenv was made from: a distribution's
    build (PGO and LTO) runs the server 10-20% faster than a version manager's default one."""
    version = first_line([str(python), "--version"])
    return f"{version} ({python.resolve()})"


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def cores() -> str:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{os.cpu_count()} cores ({usable} usable)"


def commit(repo: Path) -> str:
    git = ["git", "-C", str(repo)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    if head.returncode != 0:
        return "no commit yet"
    dirty = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True, check=False)
    return head.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else "")


def npm_package_version(node_dir: Path, name: str) -> str:
    with contextlib.suppress(OSError, ValueError, KeyError):
        package = node_dir / "node_modules" / name / "package.json"
        return str(json.loads(package.read_text())["version"])
    return "not installed"


def print_rows(rows: list[tuple[str, str]]) -> None:
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    print(flush=True)


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _cpu_times() -> tuple[int, int]:
    # user nice system idle iowait irq softirq steal; guest time is already in user and nice.
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = fields[3] + fields[4]
    return sum(fields), idle


def cpu_busy(seconds: float = 1.0) -> float | None:
    """Share of all cores busy over ``seconds`` (0-1), or None where /proc/stat is missing."""
    try:
        total0, idle0 = _cpu_times()
        time.sleep(seconds)
        total1, idle1 = _cpu_times()
    except (OSError, ValueError, IndexError):
        return None
    elapsed = total1 - total0
    return 1 - (idle1 - idle0) / elapsed if elapsed else None


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def busy_seconds() -> float:
    """CPU seconds spent by everything on the machine, all cores added up, since boot."""
    total, idle = _cpu_times()
    return (total - idle) / _TICK


def group_seconds(pgid: int) -> float:
    """CPU seconds used by the live processes of group ``pgid`` and the children they reaped."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # Fields after "comm)": state ppid pgrp ... utime(14) stime(15) cutime(16) cstime(17).
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                ticks += sum(int(x) for x in fields[11:15])
    return ticks / _TICK


@dataclass(slots=True, frozen=True)
class CpuShare:
    """Where the CPU went during a run, in percent of one core.

    ``other`` is everything but the server, wrk and the driver: other programs, kernel
    threads, and time the hypervisor gave to other guests (steal).
    """

    server: float
    other: float
    server_seconds: float  # the server's CPU time over the run

    def per_request_us(self, requests: int) -> float | None:
        """The server's CPU time per request in µs: steadier than requests per second when other
        programs share the cores."""
        return 1e6 * self.server_seconds / requests if requests else None


def own_and_children_seconds() -> float:
    mine = os.times()
    return mine.user + mine.system + mine.children_user + mine.children_system


class CpuMeter:
    """Splits the machine's CPU use over a run into the server's and everyone else's.

    wrk and this driver are counted as neither: they are children of this process.
    """

    def __init__(self, server_pgid: int) -> None:
        self._pgid = server_pgid
        self._start = (
            busy_seconds(),
            group_seconds(server_pgid),
            own_and_children_seconds(),
            time.monotonic(),
        )

    def stop(self) -> CpuShare | None:
        busy0, server0, own0, t0 = self._start
        try:
            busy, server, own = busy_seconds(), group_seconds(self._pgid), own_and_children_seconds()
        except (OSError, ValueError, IndexError):
            return None
        wall = time.monotonic() - t0
        server_s = server - server0
        other_s = max(0.0, (busy - busy0) - server_s - (own - own0))
        return CpuShare(server=100 * server_s / wall, other=100 * other_s / wall, server_seconds=server_s)
