"""Expired SMS codes, passkey challenges, abandoned app enrolments and recovery codes never confirmed
are purged; live ones stay."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import select

from idp import retention
from idp.delivery.sms import FileSMSSender
from idp.ratelimit import MemoryRateLimiter
from idp.storage import tables
from idp.storage.database import Database
from levels_of_assurance.authenticators import passkey, recovery_codes
from otp import authenticator_app
from otp.sms import CodePurpose, PhoneVerifier
from tests.support.factors import person

KEY = "k" * 40


async def test_expired_factor_rows_are_purged(db: Database, tmp_path: Path) -> None:
    signer = await person(db)
    verifier = PhoneVerifier(sender=FileSMSSender(tmp_path), verify_service=None, limiter=MemoryRateLimiter())
    now = time.time()
    old, fresh = now - 2 * 3600, now
    codes = [
        await verifier.send(
            db,
            tenant_id=signer.tenant_id,
            eid_id=signer.id,
            phone=phone,
            purpose=CodePurpose.LOGIN,
            client_ip=None,
            message=str,
            now=at,
        )
        for phone, at in (("+38641000001", old), ("+38641000002", fresh))
    ]
    enrolments = [
        await db.write(
            lambda tx, at=at: authenticator_app.begin_enrolment(  # type: ignore[misc]
                tx, eid_id=signer.id, account_name="a", issuer_name="b", sealing_key=KEY, now=at
            )
        )
        for at in (old, fresh)  # the second drops the first anyway; a third eID keeps a stale one
    ]
    other = await person(db)
    stale = await db.write(
        lambda tx: authenticator_app.begin_enrolment(
            tx, eid_id=other.id, account_name="a", issuer_name="b", sealing_key=KEY, now=old
        )
    )
    await db.write(lambda tx: passkey.authentication_options(tx, rp_id="idp.test", eid_id=None, now=old))
    await db.write(lambda tx: passkey.authentication_options(tx, rp_id="idp.test", eid_id=None, now=fresh))

    purged = await db.write(retention.purge_expired)
    assert purged.sms_codes >= 1 and purged.passkey_challenges >= 1 and purged.totp_enrolments >= 1

    def left(conn: object) -> tuple[set[str], set[str], int]:
        c, t, p = tables.otp_codes.c, tables.totp_credentials.c, tables.passkey_challenges.c
        sms = set(conn.execute(select(c.id).where(c.tenant_id == signer.tenant_id)).scalars())  # type: ignore[attr-defined]
        totp = set(conn.execute(select(t.id).where(t.eid_id.in_([signer.id, other.id]))).scalars())  # type: ignore[attr-defined]
        live = conn.execute(select(p.id_digest).where(p.created_at == fresh)).all()  # type: ignore[attr-defined]
        return sms, totp, len(live)

    sms, totp, live_challenges = await db.read(left)
    assert sms == {codes[1].challenge_id}
    assert totp == {enrolments[1].enrolment_id} and stale.enrolment_id not in totp
    assert live_challenges == 1


async def test_recovery_codes_never_confirmed_are_purged_after_a_day(db: Database) -> None:
    signer, other = await person(db), await person(db)
    now = time.time()
    in_use = await db.write(
        lambda tx: recovery_codes.issue(tx, eid_id=signer.id, now=now - 30 * 86400, count=2)
    )
    await db.write(lambda tx: recovery_codes.propose(tx, eid_id=signer.id, now=now - 2 * 86400, count=3))
    fresh = await db.write(lambda tx: recovery_codes.propose(tx, eid_id=other.id, now=now - 3600, count=4))

    purged = await db.write(retention.purge_expired)
    assert purged.recovery_proposals >= 3

    def rows(conn: object, eid_id: str) -> list[bool]:
        r = tables.recovery_codes.c
        return sorted(conn.execute(select(r.pending).where(r.eid_id == eid_id)).scalars())  # type: ignore[attr-defined]

    assert await db.read(lambda conn: rows(conn, signer.id)) == [False, False]  # the set in use, however old
    assert await db.read(lambda conn: rows(conn, other.id)) == [True] * 4
    await db.write(lambda tx: recovery_codes.use(tx, eid_id=signer.id, code=in_use[0], now=now))
    assert (
        await db.write(lambda tx: recovery_codes.confirm(tx, eid_id=other.id, set_id=fresh.set_id))
    ).count == 4
