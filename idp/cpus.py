"""How many CPUs this process may really use, to size the pools that do CPU work.

``os.cpu_count()`` counts the machine's CPUs. A process pinned to fewer (``taskset``, a cpuset)
or held to a CPU quota (a container's ``resources.limits.cpu``, cgroup ``cpu.max``) gets less
than that. Running more CPU-bound threads than it has CPUs only interleaves them: two argon2id
hashes (19 MiB each) sharing one core cost about 12% more CPU each than the same two one after
the other, as each evicts the other's memory from the core's cache.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import math
import os
import threading
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def usable_cpus(*, cgroup_root: Path = CGROUP_ROOT, affinity: int | None = None) -> int:
    """The CPUs this process may use: its affinity, capped by its cgroup's CPU quota; at least 1."""
    if affinity is None:
        affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = cgroup_quota(cgroup_root)
    return max(1, min(affinity, math.ceil(quota)) if quota is not None else affinity)


def cgroup_quota(root: Path = CGROUP_ROOT) -> float | None:
    """The CPU quota of this process's cgroup in CPUs (``1.5`` for 150 ms per 100 ms), or None
    when it has none or it cannot be read. cgroup v2 (``cpu.max``) and v1 (``cpu.cfs_*``)."""
    try:
        quota, _, period = (root / "cpu.max").read_text().partition(" ")
        if quota.strip() == "max":
            return None
        return _ratio(quota, period)
    except (OSError, ValueError):
        pass
    try:
        v1 = root / "cpu"
        return _ratio((v1 / "cpu.cfs_quota_us").read_text(), (v1 / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None


def _ratio(quota: str, period: str) -> float | None:
    microseconds, every = int(quota), int(period)
    if microseconds <= 0 or every <= 0:  # v1 writes -1 for "no quota"
        return None
    return microseconds / every


_PR_SET_NAME = 15
_libc: ctypes.CDLL | None = None


def name_os_thread() -> None:
    """Give the calling thread's Python name to the operating system too (Linux, first 15
    bytes), so ``top -H``, ``perf`` and ``/proc/PID/task/*/comm`` tell the pools apart.
    Python 3.11 leaves every thread named after the process. A pool's ``initializer``."""
    global _libc
    if not os.path.exists("/proc/self/task"):
        return
    with contextlib.suppress(OSError, AttributeError):
        if _libc is None:
            _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        _libc.prctl(_PR_SET_NAME, threading.current_thread().name.encode()[:15], 0, 0, 0)
