"""Pools are sized by the CPUs the process may use: its affinity and its cgroup's CPU quota."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from idp.cpus import cgroup_quota, usable_cpus


def test_without_a_cgroup_the_affinity_counts(tmp_path: Path) -> None:
    assert usable_cpus(cgroup_root=tmp_path, affinity=3) == 3
    assert cgroup_quota(tmp_path) is None


def test_the_affinity_of_this_process_is_the_default() -> None:
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity on this system")
    assert 1 <= usable_cpus() <= len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    ("cpu_max", "affinity", "expected"),
    [
        ("max 100000\n", 8, 8),  # no quota
        ("200000 100000\n", 8, 2),
        ("150000 100000\n", 8, 2),  # 1.5 CPUs: two threads can both make progress
        ("50000 100000\n", 8, 1),
        ("400000 100000\n", 2, 2),  # the quota is more than the pinned CPUs
    ],
)
def test_a_cgroup_v2_quota_caps_the_count(tmp_path: Path, cpu_max: str, affinity: int, expected: int) -> None:
    (tmp_path / "cpu.max").write_text(cpu_max)
    assert usable_cpus(cgroup_root=tmp_path, affinity=affinity) == expected


def test_a_cgroup_v1_quota_caps_the_count(tmp_path: Path) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("300000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert usable_cpus(cgroup_root=tmp_path, affinity=16) == 3
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert usable_cpus(cgroup_root=tmp_path, affinity=16) == 16


@pytest.mark.parametrize("garbage", ["", "lots 100000", "0 100000", "100000 0", "-5 100000"])
def test_an_unreadable_quota_is_no_quota(tmp_path: Path, garbage: str) -> None:
    (tmp_path / "cpu.max").write_text(garbage)
    assert cgroup_quota(tmp_path) is None
    assert usable_cpus(cgroup_root=tmp_path, affinity=4) == 4


def test_a_pool_thread_carries_its_name_to_the_operating_system() -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from idp.cpus import name_os_thread

    if not Path("/proc/self/task").exists():
        pytest.skip("no /proc on this system")

    def comm() -> str:
        return Path(f"/proc/self/task/{threading.get_native_id()}/comm").read_text().strip()

    with ThreadPoolExecutor(1, thread_name_prefix="idp-test-pool", initializer=name_os_thread) as pool:
        assert pool.submit(comm).result() == "idp-test-pool_0"
