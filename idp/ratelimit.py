"""Throttling: at most ``limit`` counted hits per key in any sliding ``window`` of seconds.

Used for email-link sends, failed passwords and codes, and SMS sends (DESIGN.md, "Rules that
hold everywhere"). A key names the kind and the subject, e.g. ``email-link:addr:<digest>``;
callers pass digests (:func:`subject_key`), never raw addresses or numbers, so the limiter
(and Redis) never stores personal data.

Only admitted hits are recorded. A denied hit changes nothing, so someone who keeps trying
while locked out is let in again once the oldest admitted hit leaves the window.

:class:`MemoryRateLimiter` serves one process; :class:`RedisRateLimiter` is shared by every
instance. Both keep one timestamp per admitted hit (at most ``limit`` per key) and forget a
key once its window has passed.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

import redis.asyncio

from idp.errors import RateLimitedError

_MIN_RETRY_AFTER = 0.001


def subject_key(kind: str, subject: str) -> str:
    """``kind:<sha256 hex of subject>``; normalise ``subject`` first (e.g. lower-case an address)."""
    return f"{kind}:{hashlib.sha256(subject.encode()).hexdigest()}"


def _check(limit: int, window: float) -> None:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    if not 0 < window < math.inf:
        raise ValueError(f"window must be a positive number of seconds, got {window}")


class RateLimiter(Protocol):
    async def hit(self, key: str, *, limit: int, window: float) -> None:
        """Count one hit on ``key``; raise :class:`RateLimitedError` (not counted) past ``limit``."""
        ...

    async def count(self, key: str, *, window: float) -> int:
        """The admitted hits on ``key`` in the last ``window`` seconds (at most the hit window)."""
        ...

    async def counts(self, *queries: tuple[str, float]) -> list[int]:
        """:meth:`count` of each ``(key, window)``, in one round trip where there is one."""
        ...

    async def reset(self, key: str, *more: str) -> None:
        """Forget every hit on ``key`` and on each of ``more`` (e.g. after a successful login)."""
        ...


class MemoryRateLimiter:
    """Sliding-window log in this process; for one instance on one event loop (not thread-safe).

    ``clock`` is injectable so tests move time without sleeping. Expired keys are swept at most
    once per ``sweep_interval`` seconds of clock time, so memory stays bounded by the keys hit
    within one window.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, sweep_interval: float = 60.0) -> None:
        self._clock = clock
        self._sweep_interval = sweep_interval
        self._hits: dict[str, tuple[float, deque[float]]] = {}  # key -> (window, admitted times)
        self._next_sweep = clock() + sweep_interval

    async def hit(self, key: str, *, limit: int, window: float) -> None:
        _check(limit, window)
        now = self._clock()
        self._maybe_sweep(now)
        entry = self._hits.get(key)
        times = entry[1] if entry is not None else deque()
        while times and times[0] <= now - window:
            times.popleft()
        if len(times) >= limit:
            # The hit whose expiry brings the count below the limit (older ones go first).
            frees_a_slot = times[len(times) - limit]
            raise RateLimitedError(key, max(frees_a_slot + window - now, _MIN_RETRY_AFTER))
        times.append(now)
        self._hits[key] = (window, times)

    async def count(self, key: str, *, window: float) -> int:
        entry = self._hits.get(key)
        if entry is None:
            return 0
        since = self._clock() - window
        return sum(1 for t in entry[1] if t > since)

    async def counts(self, *queries: tuple[str, float]) -> list[int]:
        return [await self.count(key, window=window) for key, window in queries]

    async def reset(self, key: str, *more: str) -> None:
        for k in (key, *more):
            self._hits.pop(k, None)

    def __len__(self) -> int:
        """Keys held now (expired ones are dropped at the next sweep)."""
        return len(self._hits)

    def _maybe_sweep(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + self._sweep_interval
        expired = [k for k, (window, times) in self._hits.items() if not times or times[-1] <= now - window]
        for k in expired:
            del self._hits[k]


def _now_from(arg: int) -> str:
    """Lua that sets ``now``: the seconds in ``ARGV[arg]``, or the Redis server's clock when it
    is empty (the clock every instance shares)."""
    return f"""local now = tonumber(ARGV[{arg}])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
"""


# KEYS[1]: the sorted set of admitted hits (member: random id, score: time in seconds).
# ARGV: limit, window (s), member, now (s; empty means the Redis server's clock, shared by all).
# Scores are formatted with '%.6f': Lua's own number-to-string keeps only 14 digits.
# Returns 0 when admitted, else the microseconds until a slot frees (Lua numbers reply as integers).
_HIT = (
    _now_from(4)
    + """local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.6f', now - window))
local n = redis.call('ZCARD', KEYS[1])
if n >= limit then
  local frees_a_slot = redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')
  return math.ceil((tonumber(frees_a_slot[2]) + window - now) * 1000000)
end
redis.call('ZADD', KEYS[1], string.format('%.6f', now), ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000))
return 0
"""
)

# KEYS: sorted sets as for _HIT; ARGV[1]: now as for _HIT, ARGV[1 + i]: the window of KEYS[i]
_COUNTS = (
    _now_from(1)
    + """local found = {}
for i, key in ipairs(KEYS) do
  local since = string.format('%.6f', now - tonumber(ARGV[i + 1]))
  found[i] = redis.call('ZCOUNT', key, '(' .. since, '+inf')
end
return found
"""
)


class RedisRateLimiter:
    """Sliding-window log in a Redis sorted set per key, updated atomically by a Lua script.

    Time is the Redis server's, so every instance agrees; ``clock`` overrides it for tests.
    Keys expire on the Redis side one window after their last admitted hit.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        prefix: str = "idp:rl:",
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._clock = clock
        self._hit = client.register_script(_HIT)
        self._counts = client.register_script(_COUNTS)

    def _now(self) -> str:
        return "" if self._clock is None else repr(self._clock())

    async def hit(self, key: str, *, limit: int, window: float) -> None:
        _check(limit, window)
        member = secrets.token_hex(8)
        args: list[str | int] = [limit, repr(float(window)), member, self._now()]
        retry_micros = int(await self._hit(keys=[self._prefix + key], args=args))
        if retry_micros:
            raise RateLimitedError(key, max(retry_micros / 1_000_000, _MIN_RETRY_AFTER))

    async def count(self, key: str, *, window: float) -> int:
        return (await self.counts((key, window)))[0]

    async def counts(self, *queries: tuple[str, float]) -> list[int]:
        if not queries:
            return []
        keys = [self._prefix + key for key, _ in queries]
        found = await self._counts(keys=keys, args=[self._now(), *(repr(float(w)) for _, w in queries)])
        return [int(n) for n in found]

    async def reset(self, key: str, *more: str) -> None:
        await self._client.delete(*(self._prefix + k for k in (key, *more)))


def build_rate_limiter(redis_client: redis.asyncio.Redis | None, *, prefix: str = "idp:") -> RateLimiter:
    """Redis-backed when a client is configured (``IDP_REDIS_URL``), else in-process."""
    if redis_client is None:
        return MemoryRateLimiter()
    return RedisRateLimiter(redis_client, prefix=prefix + "rl:")
