"""Second factors of the advanced level: how many checks per second one process does.

Runs each factor's domain code on a fresh SQLite database (group commit, as served), with many
checks in flight at once as a loaded server would have them, and prints checks per second:

* SMS codes: issue + send to the file outbox, then the check (two separate figures);
* authenticator app (TOTP): a verified code with its time step stored;
* passkeys: a verified assertion (ES256) with counter and flags stored;
* recovery codes: a code spent.

Usage: ``.venv/bin/python bench/factors.py [--n 2000] [--concurrency 32]``. Needs the ``test``
extra (soft-webauthn plays the passkey).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from idp.delivery.sms import FileSMSSender
from idp.ratelimit import MemoryRateLimiter
from idp.storage import migrate
from idp.storage.database import Database
from levels_of_assurance.authenticators import passkey, recovery_codes
from otp import authenticator_app
from otp.sms import CodePurpose, PhoneVerifier
from otp.totp import code_at
from tests.support.factors import person
from tests.support.soft_authenticator import SoftPasskey

KEY = "bench-secret-" + "b" * 40


async def timed(label: str, jobs: Sequence[Callable[[], Awaitable[object]]], concurrency: int) -> None:
    queue = list(jobs)
    queue.reverse()

    async def worker() -> None:
        while queue:
            await queue.pop()()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    print(f"{label:<44} {len(jobs) / elapsed:>9,.0f} /s   ({len(jobs)} in {elapsed:.2f} s)")


async def main(n: int, concurrency: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        await asyncio.to_thread(migrate.upgrade, url)
        db = Database(url)
        try:
            people = [await person(db) for _ in range(n)]
            verifier = PhoneVerifier(
                sender=FileSMSSender(Path(tmp) / "sms"),
                verify_service=None,
                limiter=MemoryRateLimiter(),
                code_key=KEY,
                sends_per_number_hour=10**6,
                sends_per_ip_hour=10**6,
                sends_per_tenant_hour=10**6,
            )
            codes: dict[str, str] = {}

            def remember(eid_id: str) -> Callable[[str], str]:
                def body(code: str) -> str:
                    codes[eid_id] = code
                    return f"Your code is {code}"

                return body

            challenges: dict[str, str] = {}

            async def send(i: int) -> None:
                p = people[i]
                sent = await verifier.send(
                    db,
                    tenant_id=p.tenant_id,
                    eid_id=p.id,
                    phone=f"+3864{1000000 + i:07d}",
                    purpose=CodePurpose.LOGIN,
                    client_ip=None,
                    message=remember(p.id),
                )
                challenges[p.id] = sent.challenge_id

            async def check(i: int) -> None:
                p = people[i]
                await verifier.check(db, challenge_id=challenges[p.id], code=codes[p.id])

            await timed(
                "SMS code issued and sent (file outbox)", [lambda i=i: send(i) for i in range(n)], concurrency
            )
            await timed("SMS code checked", [lambda i=i: check(i) for i in range(n)], concurrency)

            now = time.time()
            secrets_by_eid: dict[str, str] = {}
            for p in people:
                enrolment = await db.write(
                    lambda tx, p=p: authenticator_app.begin_enrolment(  # type: ignore[misc]
                        tx, eid_id=p.id, account_name="a", issuer_name="b", sealing_key=KEY, now=now - 60
                    )
                )
                code = code_at(secret=enrolment.secret, for_time=now - 60)
                await db.write(
                    lambda tx, p=p, e=enrolment, c=code: authenticator_app.confirm_enrolment(  # type: ignore[misc]
                        tx, eid_id=p.id, enrolment_id=e.enrolment_id, code=c, sealing_key=KEY, now=now - 60
                    )
                )
                secrets_by_eid[p.id] = enrolment.secret

            async def totp(i: int) -> None:
                p = people[i]
                code = code_at(secret=secrets_by_eid[p.id], for_time=now)
                await db.write(
                    lambda tx: authenticator_app.verify(tx, eid_id=p.id, code=code, sealing_key=KEY, now=now)
                )

            await timed(
                "TOTP code verified (sealed secret)", [lambda i=i: totp(i) for i in range(n)], concurrency
            )

            rp, origin = "idp.bench", "https://idp.bench"
            devices = {}
            for p in people:
                options, challenge_id = await db.write(
                    lambda tx, p=p: passkey.registration_options(
                        tx, rp_id=rp, rp_name="B", eid=p, now=time.time()
                    )
                )
                device = SoftPasskey()
                answer = device.register(options, origin)
                await db.write(
                    lambda tx, c=challenge_id, a=answer: passkey.finish_registration(  # type: ignore[misc]
                        tx,
                        challenge_id=c,
                        credential_json=a,
                        expected_origin=origin,
                        rp_id=rp,
                        name="k",
                        now=time.time(),
                    )
                )
                devices[p.id] = device
            prepared = []
            for p in people:
                options, challenge_id = await db.write(
                    lambda tx, p=p: passkey.authentication_options(tx, rp_id=rp, eid_id=p.id, now=time.time())
                )
                prepared.append((challenge_id, devices[p.id].authenticate(options, origin)))

            async def assertion(i: int) -> None:
                challenge_id, answer = prepared[i]
                await db.write(
                    lambda tx: passkey.finish_authentication(
                        tx,
                        challenge_id=challenge_id,
                        credential_json=answer,
                        expected_origin=origin,
                        rp_id=rp,
                        now=time.time(),
                    )
                )

            await timed(
                "passkey assertion verified (ES256)",
                [lambda i=i: assertion(i) for i in range(n)],
                concurrency,
            )

            sets = {}
            for p in people:
                sets[p.id] = await db.write(
                    lambda tx, p=p: recovery_codes.issue(tx, eid_id=p.id, now=time.time())  # type: ignore[misc]
                )

            async def spend(i: int) -> None:
                p = people[i]
                await db.write(
                    lambda tx: recovery_codes.use(tx, eid_id=p.id, code=sets[p.id][0], now=time.time())
                )

            await timed("recovery code spent", [lambda i=i: spend(i) for i in range(n)], concurrency)
        finally:
            await db.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="checks per factor")
    parser.add_argument("--concurrency", type=int, default=32, help="checks in flight at once")
    args = parser.parse_args()
    asyncio.run(main(args.n, args.concurrency))
