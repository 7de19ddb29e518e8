"""Everything a request handler may use, built once at start-up and passed on ``app.state.idp``."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from redis.asyncio import Redis

from idp import retention
from idp.clients import ClientRegistry
from idp.cpus import name_os_thread, usable_cpus
from idp.delivery.mail import Mailer, build_mailer
from idp.delivery.sms import SMSSender, build_sms_sender, build_verify_service
from idp.lockout import Policy, Throttle
from idp.ratelimit import RateLimiter, build_rate_limiter
from idp.settings import Settings
from idp.storage.database import Database
from idp.web.i18n import Pages
from idp.web.metrics import Metrics
from levels_of_assurance.authenticators.password import PasswordHasher
from oidc import keys
from oidc.endpoints import Endpoints
from oidc.server import Provider
from otp.sms import PhoneVerifier, origin_host
from videoid.service import VideoIdService

log = logging.getLogger("idp")
T = TypeVar("T")
INVALIDATION_PREFIX = "idp:invalidate:"


def invalidation_channel(database_url: str) -> str:
    """The Redis channel of one deployment: instances on the same database, and only those."""
    return INVALIDATION_PREFIX + hashlib.sha256(database_url.encode()).hexdigest()[:16]


@dataclass(slots=True)
class AppState:
    settings: Settings
    db: Database
    clients: ClientRegistry
    provider: Provider
    endpoints: Endpoints
    pages: Pages
    mailer: Mailer
    limiter: RateLimiter
    metrics: Metrics
    hasher: PasswordHasher
    throttle: Throttle
    phones: PhoneVerifier
    # CPU-heavy work (argon2) runs here, one thread per core, never on the event loop
    cpu: ThreadPoolExecutor
    # video identification: live sessions in this process; frame analysis and OCR on its own pool
    videoid: VideoIdService
    redis: Redis | None = None
    # plain text messages (security notices); None with Twilio Verify alone, which sends codes only
    sms: SMSSender | None = None
    background: set[asyncio.Task[Any]] = field(default_factory=set)
    deliveries: set[asyncio.Task[Any]] = field(default_factory=set)

    @classmethod
    def build(cls, settings: Settings, *, sms_http_client: Any = None) -> AppState:
        db = Database(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
        clients = ClientRegistry(db, ttl=settings.client_cache_ttl)
        provider = Provider(settings, keys.KeyRing())
        redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
        limiter = build_rate_limiter(redis, prefix=settings.redis_key_prefix)
        sms = build_sms_sender(settings, base_dir=Path(), http_client=sms_http_client)
        phones = PhoneVerifier(
            sender=sms,
            verify_service=build_verify_service(settings, http_client=sms_http_client),
            limiter=limiter,
            sends_per_number_hour=settings.sms_limit_per_number,
            sends_per_ip_hour=settings.sms_limit_per_ip,
            sends_per_tenant_hour=settings.sms_limit_per_tenant,
            code_key=settings.secret_key,
            bound_to=origin_host(settings.issuer),
        )
        return cls(
            settings=settings,
            db=db,
            clients=clients,
            provider=provider,
            endpoints=Endpoints(provider=provider, db=db, clients=clients),
            pages=Pages(languages=settings.languages),
            mailer=build_mailer(settings.email_backend, base_dir=Path()),
            limiter=limiter,
            metrics=Metrics(),
            hasher=PasswordHasher(
                memory_cost=settings.password_memory_kib,
                time_cost=settings.password_time_cost,
                parallelism=settings.password_parallelism,
            ),
            throttle=Throttle(
                limiter,
                Policy(
                    free_per_account=settings.login_free_failures_per_account,
                    free_per_ip=settings.login_free_failures_per_ip,
                    lock_after=settings.login_lock_after,
                ),
                redis=redis,
                redis_prefix=settings.redis_key_prefix,
            ),
            phones=phones,
            cpu=ThreadPoolExecutor(
                max_workers=usable_cpus(), thread_name_prefix="idp-cpu", initializer=name_os_thread
            ),
            videoid=VideoIdService(
                db=db,
                secret=settings.secret_key,
                phones=phones,
                var_dir=settings.var_dir,
                ice_servers=settings.videoid_ice_servers,
                executor=ThreadPoolExecutor(
                    max_workers=usable_cpus() + 1,
                    thread_name_prefix="idp-videoid",
                    initializer=name_os_thread,
                ),
            ),
            redis=redis,
            sms=sms,
        )

    async def verify_password(self, stored: str, secret: str) -> None:
        """:meth:`PasswordHasher.verify` on the CPU pool; its CPU time goes to /metrics."""
        await self._in_pool("verify", self.hasher.verify, stored, secret)

    async def verify_dummy_password(self, secret: str) -> None:
        """:meth:`PasswordHasher.verify_dummy`: as long as a verification, for unknown accounts."""
        await self._in_pool("verify", self.hasher.verify_dummy, secret)

    async def hash_password(self, secret: str) -> str:
        return await self._in_pool("hash", self.hasher.hash, secret)

    async def _in_pool(self, operation: str, fn: Callable[..., T], *args: str) -> T:
        def timed() -> T:
            began = time.thread_time()  # the pool thread's own CPU time: what argon2 cost
            try:
                return fn(*args)
            finally:
                self.metrics.password_hashed(operation, time.thread_time() - began)

        return await asyncio.get_running_loop().run_in_executor(self.cpu, timed)

    def spawn(self, coro: Any, *, delivery: bool = False) -> None:
        """Run ``coro`` in the background, keeping a reference until it ends.

        Deliveries (mail, SMS) are awaited at shutdown; other background loops are cancelled.
        """
        tasks = self.deliveries if delivery else self.background
        task = asyncio.get_running_loop().create_task(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def reload_keys(self) -> None:
        secret, now, known = self.settings.secret_key, time.time(), self.provider.keyring.signing
        ring = await self.db.read(lambda conn: keys.load(conn, secret=secret, now=now, known=known))
        if not ring.signing:
            await self.db.write(lambda tx: keys.ensure_keys(tx, secret=secret))
            ring = await self.db.read(lambda conn: keys.load(conn, secret=secret, now=now))
        self.provider.keyring = ring

    async def announce(self, topic: str) -> None:
        """Tell every instance (through Redis) that ``topic`` changed: clients or keys."""
        if self.redis is not None:
            await self.redis.publish(invalidation_channel(self.settings.database_url), topic)

    async def _listen(self, retry_after: float = 1.0) -> None:
        """Follow the invalidation channel for as long as the app runs, subscribing again after
        Redis goes away (restart, failover, network): a lost subscription must not leave this
        instance deaf to announcements until it restarts."""
        missed = False
        while True:
            try:
                await self._follow(catch_up=missed)
            except Exception:
                log.exception("the invalidation channel failed; subscribing again")
            missed = True
            await asyncio.sleep(retry_after)

    async def _follow(self, *, catch_up: bool) -> None:
        assert self.redis is not None
        pubsub = self.redis.pubsub()
        try:
            await pubsub.subscribe(invalidation_channel(self.settings.database_url))
            if catch_up:  # announcements made while we were away are lost: reload what they cover
                self.clients.invalidate()
                await self.reload_keys()
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                topic = (
                    message["data"].decode() if isinstance(message["data"], bytes) else str(message["data"])
                )
                if topic == "keys":
                    await self.reload_keys()
                elif topic.startswith("client:"):
                    self.clients.invalidate([topic.removeprefix("client:")])
        finally:
            with contextlib.suppress(Exception):  # the connection may be gone already
                await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # typed in newer redis

    async def _refresh_periodically(self, every: float = 60.0) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self.reload_keys()
            except Exception:  # a passing database hiccup must not stop the refresher
                log.exception("reloading signing keys failed")

    async def _purge_periodically(self, every: float = 3600.0) -> None:
        while True:
            try:
                purged = await self.db.write(retention.purge_expired)
                if purged.total:
                    log.info("purged %d expired rows", purged.total)
            except Exception:  # retried at the next round
                log.exception("purging expired rows failed")
            await asyncio.sleep(every)

    async def start(self) -> None:
        await self.reload_keys()
        self.spawn(self._refresh_periodically())
        self.spawn(self._purge_periodically())
        if self.redis is not None:
            self.spawn(self._listen())

    async def stop(self) -> None:
        if self.deliveries:
            await asyncio.wait(list(self.deliveries), timeout=15)
        for task in list(self.background):
            task.cancel()
        for task in list(self.background):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.videoid.close()
        if self.redis is not None:
            await self.redis.aclose()
        self.cpu.shutdown(wait=False, cancel_futures=True)
        await self.db.close()
