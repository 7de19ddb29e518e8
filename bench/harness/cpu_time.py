"""CPU time of the processes a benchmark measures, from Linux's /proc, and of the servers they use."""

from __future__ import annotations

import os
import re
from pathlib import Path


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """User + system CPU time of process ``pid`` and its threads so far, or of its thread ``tid``
    alone (Linux /proc)."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_by_thread(pid: int) -> dict[str, float]:
    """CPU seconds so far of each live thread of ``pid``, summed by thread name with its
    trailing number dropped (``idp-cpu_0`` and ``idp-cpu_1`` count as ``idp-cpu``)."""
    totals: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            used = cpu_seconds(pid, int(task.name))
        except (FileNotFoundError, ProcessLookupError):  # the thread ended meanwhile
            continue
        key = "event loop" if int(task.name) == pid else re.sub(r"[_-]?\d+$", "", name)
        totals[key] = totals.get(key, 0.0) + used
    return totals


def postgres_cpu_seconds() -> float:
    """User + system CPU time so far of every process named ``postgres`` on this machine: the
    backends that serve the IdP, and the WAL writer and checkpointer its commits keep busy."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == "postgres":
                total += cpu_seconds(int(entry.name))
        except (FileNotFoundError, ProcessLookupError, PermissionError):  # gone meanwhile, or not ours
            continue
    return total


def redis_cpu_seconds(url: str) -> float:
    """The Redis server's own CPU time so far (``INFO cpu``: its main thread and the rest)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        info = client.info("cpu")
    finally:
        client.close()
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def outside_cpu_seconds(postgresql: bool, redis_url: str | None) -> dict[str, float]:
    """CPU seconds so far of the servers the IdP uses outside its process."""
    found = {}
    if postgresql:
        found["PostgreSQL"] = postgres_cpu_seconds()
    if redis_url:
        found["Redis"] = redis_cpu_seconds(redis_url)
    return found
