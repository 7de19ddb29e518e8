from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import redis.asyncio

from idp.errors import RateLimitedError
from idp.ratelimit import (
    MemoryRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    build_rate_limiter,
    subject_key,
)

REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Subject:
    limiter: RateLimiter
    clock: FakeClock


async def redis_client() -> redis.asyncio.Redis:
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (redis.exceptions.ConnectionError, OSError) as exc:
        await client.aclose()
        if os.environ.get("IDP_TEST_ALLOW_NO_REDIS") == "1":
            pytest.skip(f"Redis at {REDIS_URL} unreachable: {exc}")
        pytest.fail(f"Redis at {REDIS_URL} unreachable ({exc}); set IDP_TEST_ALLOW_NO_REDIS=1 to skip")
    return client


@pytest.fixture(params=["memory", "redis"])
async def subject(request: pytest.FixtureRequest) -> AsyncIterator[Subject]:
    clock = FakeClock()
    if request.param == "memory":
        yield Subject(MemoryRateLimiter(clock=clock), clock)
        return
    client = await redis_client()
    prefix = f"idp-test:{uuid.uuid4().hex}:rl:"
    try:
        yield Subject(RedisRateLimiter(client, prefix=prefix, clock=clock), clock)
    finally:
        keys = [k async for k in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_limit_reached_raises_with_retry_after(subject: Subject) -> None:
    limiter, clock = subject.limiter, subject.clock
    for _ in range(3):
        await limiter.hit("k", limit=3, window=60)
        clock.advance(10)
    with pytest.raises(RateLimitedError) as info:
        await limiter.hit("k", limit=3, window=60)
    assert info.value.key == "k"
    # The first hit was 30 s ago; it leaves the 60 s window in 30 s.
    assert info.value.retry_after == pytest.approx(30, abs=0.01)
    assert await limiter.count("k", window=60) == 3


async def test_window_slides_and_denied_hits_do_not_extend_it(subject: Subject) -> None:
    limiter, clock = subject.limiter, subject.clock
    await limiter.hit("k", limit=2, window=60)
    clock.advance(20)
    await limiter.hit("k", limit=2, window=60)
    for _ in range(5):  # hammering while locked out
        clock.advance(5)
        with pytest.raises(RateLimitedError):
            await limiter.hit("k", limit=2, window=60)
    clock.advance(15)  # 60 s after the first hit: one slot frees
    await limiter.hit("k", limit=2, window=60)
    with pytest.raises(RateLimitedError) as info:
        await limiter.hit("k", limit=2, window=60)
    assert info.value.retry_after == pytest.approx(20, abs=0.01)
    clock.advance(60)
    assert await limiter.count("k", window=60) == 0
    await limiter.hit("k", limit=2, window=60)


async def test_reset_forgets_hits(subject: Subject) -> None:
    limiter = subject.limiter
    await limiter.hit("k", limit=1, window=60)
    with pytest.raises(RateLimitedError):
        await limiter.hit("k", limit=1, window=60)
    await limiter.reset("k")
    assert await limiter.count("k", window=60) == 0
    await limiter.hit("k", limit=1, window=60)
    await limiter.reset("never-seen")


async def test_reset_forgets_several_keys_at_once(subject: Subject) -> None:
    limiter = subject.limiter
    for key in ("a", "b", "c"):
        await limiter.hit(key, limit=5, window=60)
    await limiter.reset("a", "b", "never-seen")
    assert await limiter.counts(("a", 60), ("b", 60), ("c", 60)) == [0, 0, 1]


async def test_counts_reads_each_key_in_its_own_window(subject: Subject) -> None:
    limiter, clock = subject.limiter, subject.clock
    await limiter.hit("old", limit=10, window=600)
    clock.advance(100)
    await limiter.hit("old", limit=10, window=600)
    await limiter.hit("new", limit=10, window=600)
    queries = [("old", 600.0), ("old", 50.0), ("new", 50.0), ("none", 600.0)]
    assert await limiter.counts(*queries) == [2, 1, 1, 0]
    assert [await limiter.count(key, window=window) for key, window in queries] == [2, 1, 1, 0]
    assert await limiter.counts() == []


async def test_keys_are_independent(subject: Subject) -> None:
    limiter = subject.limiter
    await limiter.hit("email-link:addr:a", limit=1, window=60)
    await limiter.hit("email-link:addr:b", limit=1, window=60)
    with pytest.raises(RateLimitedError):
        await limiter.hit("email-link:addr:a", limit=1, window=60)
    assert await limiter.count("email-link:addr:b", window=60) == 1
    assert await limiter.count("email-link:addr:c", window=60) == 0


async def test_count_uses_its_own_window(subject: Subject) -> None:
    limiter, clock = subject.limiter, subject.clock
    await limiter.hit("k", limit=10, window=600)
    clock.advance(100)
    await limiter.hit("k", limit=10, window=600)
    assert await limiter.count("k", window=600) == 2
    assert await limiter.count("k", window=50) == 1


async def test_concurrent_hits_admit_exactly_the_limit(subject: Subject) -> None:
    results = await asyncio.gather(
        *(subject.limiter.hit("burst", limit=10, window=60) for _ in range(50)), return_exceptions=True
    )
    assert sum(r is None for r in results) == 10
    assert all(isinstance(r, RateLimitedError) for r in results if r is not None)
    assert await subject.limiter.count("burst", window=60) == 10


@pytest.mark.parametrize(("limit", "window"), [(0, 60.0), (1, 0.0), (1, -1.0), (1, float("inf"))])
async def test_invalid_parameters(subject: Subject, limit: int, window: float) -> None:
    with pytest.raises(ValueError):
        await subject.limiter.hit("k", limit=limit, window=window)


async def test_memory_limiter_prunes_expired_keys() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock, sweep_interval=10)
    for i in range(100):
        await limiter.hit(f"k{i}", limit=5, window=30)
    assert len(limiter) == 100
    clock.advance(31)
    await limiter.hit("fresh", limit=5, window=30)
    assert len(limiter) == 1


async def test_redis_limiter_uses_server_clock_and_expiry() -> None:
    client = await redis_client()
    prefix = f"idp-test:{uuid.uuid4().hex}:rl:"
    try:
        limiter = RedisRateLimiter(client, prefix=prefix)
        await limiter.hit("k", limit=1, window=30)
        with pytest.raises(RateLimitedError) as info:
            await limiter.hit("k", limit=1, window=30)
        assert 29 < info.value.retry_after <= 30
        assert 29_000 < await client.pttl(prefix + "k") <= 30_000
        assert await limiter.count("k", window=30) == 1
        await limiter.reset("k")
        assert await client.exists(prefix + "k") == 0
    finally:
        await client.delete(prefix + "k")
        await client.aclose()


async def test_build_rate_limiter() -> None:
    assert isinstance(build_rate_limiter(None), MemoryRateLimiter)
    client = redis.asyncio.Redis.from_url(REDIS_URL)  # no connection is made until a command runs
    try:
        assert isinstance(build_rate_limiter(client), RedisRateLimiter)
    finally:
        await client.aclose()


def test_subject_key_hides_the_subject() -> None:
    key = subject_key("email-link:addr", "ana@example.si")
    assert key.startswith("email-link:addr:")
    assert "ana" not in key
    assert len(key.rsplit(":", 1)[1]) == 64
    assert key == subject_key("email-link:addr", "ana@example.si")
