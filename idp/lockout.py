"""Throttling of failed passwords and codes: growing delays, then a lock an administrator lifts.

Online guessing is limited as NIST SP 800-63B §5.2.2 asks, per account and per client IP:

- the first ``free`` failures cost nothing; after that each failure makes the next attempt wait
  ``base * 2**(n - free)`` seconds, capped at ``max_delay`` (so a person who mistypes a few
  times is not slowed, a guesser soon is);
- ``lock_after`` failures on one account within ``window`` lock it in the database
  (``login_locks``) until an administrator lifts the lock (``idp user unlock``); the lock holds
  across instances and restarts, the counters live in the rate limiter (Redis when configured);
- a success clears the account's counter (not the IP's: one good account must not launder an
  IP's guessing at others).

The delays are enforced by refusing attempts that come too early (``RateLimitedError`` with
``retry_after``), never by sleeping in the server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import LockError
from sqlalchemy import Connection, bindparam, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from idp import audit
from idp.errors import LoginError, RateLimitedError
from idp.ratelimit import RateLimiter, subject_key
from idp.storage import tables
from idp.storage.database import Tx
from idp.storage.prepared import Prepared

DAY = 24 * 3600.0


class AccountLockedError(LoginError):
    def __init__(self) -> None:
        super().__init__(
            "locked", "this eID is locked after too many failed attempts; an administrator can unlock it"
        )


@dataclass(slots=True, frozen=True)
class Policy:
    free_per_account: int = 3
    free_per_ip: int = 20
    base_delay: float = 1.0
    max_delay: float = 300.0
    lock_after: int = 10
    window: float = DAY

    def delay(self, failures: int, *, free: int) -> float:
        if failures <= free:
            return 0.0
        return float(min(self.base_delay * 2 ** (failures - free - 1), self.max_delay))


# how long an attempt may hold an account's turn (a verification stuck longer lets the next one
# go), and how long the next one waits for it before it is told to try again
TURN_HELD_AT_MOST = 10.0
TURN_WAIT = 5.0


class Throttle:
    """Growing delays and a lock after failed passwords and codes, per account and per IP.

    :meth:`turn` makes the attempts at one account take turns, so that each is counted before the
    next is checked: otherwise requests sent together all pass :meth:`check` before any failure is
    counted, and a burst of guesses gets past the delays and the lock (one guess per request)."""

    def __init__(
        self,
        limiter: RateLimiter,
        policy: Policy | None = None,
        *,
        redis: Redis | None = None,
        redis_prefix: str = "idp:",
    ) -> None:
        self.limiter = limiter
        self.policy = policy or Policy()
        self._redis = redis
        self._redis_prefix = redis_prefix
        self._turns: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def turn(self, kind: str, account: str) -> AsyncIterator[None]:
        """Hold ``account``'s turn for ``kind`` while one attempt is checked and counted: in this
        process (an asyncio lock), and with Redis across instances (redis-py's lock, released by
        its token). Waiting longer than :data:`TURN_WAIT` raises ``RateLimitedError``."""
        key = subject_key(f"turn:{kind}", account)
        local, waiting = self._turns.get(key, (asyncio.Lock(), 0))
        self._turns[key] = (local, waiting + 1)
        try:
            if local.locked():  # another attempt at this account is running: wait for it
                try:
                    await asyncio.wait_for(local.acquire(), TURN_WAIT)
                except TimeoutError:
                    raise RateLimitedError(key, 1.0) from None
            else:  # the usual case: taken at once, without wait_for's task on the sign-in's path
                await local.acquire()
            try:
                if self._redis is None:
                    yield
                    return
                shared = self._redis.lock(
                    f"{self._redis_prefix}turn:{key}",
                    timeout=TURN_HELD_AT_MOST,
                    sleep=0.01,
                    blocking_timeout=TURN_WAIT,
                )
                if not await shared.acquire():
                    raise RateLimitedError(key, 1.0)
                try:
                    yield
                finally:
                    with contextlib.suppress(LockError):  # held past its timeout: already free
                        await shared.release()
            finally:
                local.release()
        finally:
            lock, left = self._turns[key]
            if left <= 1:
                del self._turns[key]
            else:
                self._turns[key] = (lock, left - 1)

    @staticmethod
    def _keys(kind: str, account: str | None, ip: str | None) -> list[tuple[str, str, bool]]:
        keys = []
        if account:
            keys.append(
                (subject_key(f"fail:{kind}:acct", account), subject_key(f"wait:{kind}:acct", account), True)
            )
        if ip:
            keys.append((subject_key(f"fail:{kind}:ip", ip), subject_key(f"wait:{kind}:ip", ip), False))
        return keys

    async def check(self, kind: str, *, account: str | None, ip: str | None) -> None:
        """Raise ``RateLimitedError`` while a delay earned by earlier failures is running."""
        p = self.policy
        keys = self._keys(kind, account, ip)
        # the account's and the IP's failures in one round trip, then their running delays in one
        failures = await self.limiter.counts(*((fail_key, p.window) for fail_key, _, _ in keys))
        waits = [
            (wait_key, wait)
            for (_, wait_key, is_account), n in zip(keys, failures, strict=True)
            if (wait := p.delay(n, free=p.free_per_account if is_account else p.free_per_ip))
        ]
        running = await self.limiter.counts(*waits)
        for (wait_key, wait), hits in zip(waits, running, strict=True):
            if hits:
                raise RateLimitedError(wait_key, wait)

    async def failed(self, kind: str, *, account: str | None, ip: str | None) -> int:
        """Count a failure; returns the account's failures in the window (0 without an account)."""
        p = self.policy
        account_failures = 0
        for fail_key, wait_key, is_account in self._keys(kind, account, ip):
            await self.limiter.hit(fail_key, limit=1_000_000, window=p.window)
            failures = await self.limiter.count(fail_key, window=p.window)
            wait = p.delay(failures, free=p.free_per_account if is_account else p.free_per_ip)
            if wait:
                await self.limiter.reset(wait_key)
                # a failure counted at the same moment may have started the delay again between the
                # two calls: it runs either way
                with contextlib.suppress(RateLimitedError):
                    await self.limiter.hit(wait_key, limit=1, window=wait)
            if is_account:
                account_failures = failures
        return account_failures

    async def succeeded(self, kind: str, *, account: str) -> None:
        for fail_key, wait_key, _ in self._keys(kind, account, None):
            await self.limiter.reset(fail_key, wait_key)

    def should_lock(self, account_failures: int) -> bool:
        return account_failures >= self.policy.lock_after


_LOCKED = Prepared(select(tables.login_locks.c.eid_id).where(tables.login_locks.c.eid_id == bindparam("e")))


def is_locked(conn: Connection, *, eid_id: str) -> bool:
    return _LOCKED.first(conn, {"e": eid_id}) is not None


class LockedError(LoginError):
    """The eID was locked while a right password or code was being checked."""

    def __init__(self) -> None:
        super().__init__("locked", "this eID is locked after too many failed attempts")


def refuse_if_locked(conn: Connection, *, eid_id: str) -> None:
    """In the unit that accepts a right password or code: :class:`LockedError` if the eID was
    locked since it was read. Requests sent together all pass the throttle before any of them is
    counted; the lock their failures set stops a right guess among them here."""
    if is_locked(conn, eid_id=eid_id):
        raise LockedError()


# when the eID an idp.eids.with_attributes statement reads was locked, NULL when it is not: the
# sign-in steps read it with the person
LOCKED_AT_OF_EID = (
    select(tables.login_locks.c.locked_at)
    .where(tables.login_locks.c.eid_id == tables.eids.c.id)
    .scalar_subquery()
)


def lock(tx: Tx, *, eid_id: str, tenant_id: str, reason: str, client_ip: str | None = None) -> bool:
    """Lock the eID; True when this call locked it, False when it was locked already."""
    # two failures at once may both decide to lock: the second finds the row and does nothing
    insert = pg_insert if tx.conn.dialect.name == "postgresql" else sqlite_insert
    locked = tx.conn.execute(
        insert(tables.login_locks)
        .values(eid_id=eid_id, reason=reason, locked_at=tx.now)
        .on_conflict_do_nothing(index_elements=["eid_id"])
    )
    if locked.rowcount != 1:
        return False
    audit.record(
        tx,
        audit.AuditEvent(
            "eid.locked",
            success=False,
            tenant_id=tenant_id,
            eid_id=eid_id,
            client_ip=client_ip,
            details={"reason": reason},
        ),
    )
    return True


def unlock(tx: Tx, *, eid_id: str, tenant_id: str, actor: str | None) -> bool:
    """Lift the lock; True when there was one."""
    c = tables.login_locks.c
    done = tx.conn.execute(delete(tables.login_locks).where(c.eid_id == eid_id))
    if done.rowcount:
        audit.record(
            tx,
            audit.AuditEvent("eid.unlocked", tenant_id=tenant_id, eid_id=eid_id, details={"actor": actor}),
        )
    return bool(done.rowcount)
