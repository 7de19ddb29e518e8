"""Growing delays and the lock threshold, on the in-process limiter and on Redis."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from idp import lockout
from idp.errors import RateLimitedError
from idp.lockout import Policy, Throttle
from idp.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter

REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
async def limited(request: pytest.FixtureRequest) -> AsyncIterator[tuple[RateLimiter, Clock]]:
    clock = Clock()
    if request.param == "memory":
        yield MemoryRateLimiter(clock=clock), clock
        return
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except redis.ConnectionError:
        if os.environ.get("IDP_TEST_ALLOW_NO_REDIS"):
            pytest.skip("Redis is not reachable")
        raise
    yield RedisRateLimiter(client, prefix=f"test:{uuid.uuid4().hex}:", clock=clock), clock
    await client.aclose()


def test_delays_grow_and_are_capped() -> None:
    p = Policy(free_per_account=3, base_delay=1.0, max_delay=60.0)
    assert [p.delay(n, free=3) for n in range(1, 11)] == [0, 0, 0, 1, 2, 4, 8, 16, 32, 60]


async def test_free_failures_then_a_delay_that_passes(limited: tuple[RateLimiter, Clock]) -> None:
    limiter, clock = limited
    throttle = Throttle(limiter, Policy(free_per_account=2, free_per_ip=100, base_delay=2.0))
    for _ in range(2):
        await throttle.check("password", account="a", ip="198.51.100.7")
        await throttle.failed("password", account="a", ip="198.51.100.7")
    await throttle.check("password", account="a", ip="198.51.100.7")  # two failures are free
    assert await throttle.failed("password", account="a", ip="198.51.100.7") == 3
    with pytest.raises(RateLimitedError) as raised:
        await throttle.check("password", account="a", ip="198.51.100.7")
    assert raised.value.retry_after == 2.0
    await throttle.check("password", account="b", ip="203.0.113.9")  # others are not slowed
    clock.now += 2.5
    await throttle.check("password", account="a", ip="198.51.100.7")
    assert await throttle.failed("password", account="a", ip="198.51.100.7") == 4
    clock.now += 2.5
    with pytest.raises(RateLimitedError):  # the fourth failure doubled the delay
        await throttle.check("password", account="a", ip="198.51.100.7")


async def test_success_clears_the_account_not_the_ip(limited: tuple[RateLimiter, Clock]) -> None:
    limiter, _ = limited
    throttle = Throttle(limiter, Policy(free_per_account=1, free_per_ip=1))
    for account in ("a", "b"):
        await throttle.failed("password", account=account, ip="198.51.100.7")
    await throttle.failed("password", account="a", ip="198.51.100.7")
    await throttle.succeeded("password", account="a")
    with pytest.raises(RateLimitedError):  # the IP guessed at two accounts: still slowed
        await throttle.check("password", account="a", ip="198.51.100.7")
    await throttle.check("password", account="a", ip=None)


async def test_lock_threshold(limited: tuple[RateLimiter, Clock]) -> None:
    limiter, clock = limited
    throttle = Throttle(limiter, Policy(free_per_account=100, free_per_ip=100, lock_after=3))
    counts = []
    for _ in range(3):
        counts.append(await throttle.failed("code", account="a", ip=None))
        clock.now += 1
    assert counts == [1, 2, 3]
    assert [throttle.should_lock(n) for n in counts] == [False, False, True]


# -- turns: the attempts at one account, one after the other -----------------------------------


@contextlib.asynccontextmanager
async def _two_instances(kind: str) -> AsyncIterator[tuple[Throttle, Throttle]]:
    """Two throttles as two instances have them: their own process-local turns, and (``redis``)
    one Redis under a prefix of its own."""
    if kind == "memory":
        yield Throttle(MemoryRateLimiter()), Throttle(MemoryRateLimiter())
        return
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    prefix = f"test:{uuid.uuid4().hex}:"
    try:
        limiter = RedisRateLimiter(client, prefix=prefix)
        yield (
            Throttle(limiter, redis=client, redis_prefix=prefix),
            Throttle(limiter, redis=client, redis_prefix=prefix),
        )
    finally:
        await client.aclose()


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_attempts_at_one_account_take_turns(kind: str) -> None:
    inside: list[str] = []
    overlaps: list[int] = []

    async def attempt(throttle: Throttle, account: str, name: str) -> None:
        async with throttle.turn("password", account):
            inside.append(name)
            overlaps.append(sum(1 for n in inside if n.startswith(account)))
            await asyncio.sleep(0.02)
            inside.remove(name)

    async with _two_instances(kind) as (a, b):
        # one instance: always one at a time for an account; other accounts go on meanwhile
        others = attempt(a, "acct-2", "acct-2/0")
        await asyncio.gather(*(attempt(a, "acct-1", f"acct-1/{n}") for n in range(5)), others)
        assert max(overlaps) == 1
        assert a._turns == {}  # nothing kept once nobody waits
        if kind == "redis":  # across instances too, through Redis
            overlaps.clear()
            await asyncio.gather(*(attempt(t, "acct-3", f"acct-3/{n}") for n, t in enumerate([a, b, a, b])))
            assert max(overlaps) == 1


async def test_a_turn_held_too_long_is_a_clear_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lockout, "TURN_WAIT", 0.05)
    throttle = Throttle(MemoryRateLimiter())
    async with throttle.turn("code", "acct"):
        with pytest.raises(RateLimitedError):
            async with throttle.turn("code", "acct"):
                pass
    async with throttle.turn("code", "acct"):  # free again once the first is done
        pass
    assert throttle._turns == {}
