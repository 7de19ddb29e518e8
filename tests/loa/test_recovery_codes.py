"""Recovery codes: issued once and shown once, stored as digests, each usable a single time; a set the
person asks for in use only once they confirm they saved it."""

from __future__ import annotations

import asyncio
import math
import re

import pytest
from alembic import command
from sqlalchemy import select, text

from idp.eids import EID
from idp.errors import LoginError, NotFoundError
from idp.storage import migrate, tables
from idp.storage.database import Database
from levels_of_assurance.authenticators import recovery_codes as rc
from levels_of_assurance.authenticators.recovery_codes import RecoveryCodeError, RecoveryCodeProblem
from tests.support.factors import events, person

T0 = 1_800_000_000.0


@pytest.fixture
async def signer(db: Database) -> EID:
    return await person(db)


async def issue(db: Database, signer: EID, **kw: int) -> list[str]:
    return await db.write(lambda tx: rc.issue(tx, eid_id=signer.id, now=T0, **kw))


async def use(db: Database, signer: EID, code: str) -> int:
    return await db.write(lambda tx: rc.use(tx, eid_id=signer.id, code=code, now=T0 + 60))


async def refused(db: Database, signer: EID, code: str) -> RecoveryCodeProblem:
    with pytest.raises(RecoveryCodeError) as caught:
        await use(db, signer, code)
    assert isinstance(caught.value, LoginError)
    return RecoveryCodeProblem(caught.value.code)


def test_codes_carry_fifty_bits() -> None:
    assert len(set(rc.ALPHABET)) == 32 and not set("ILOU") & set(rc.ALPHABET)
    assert rc.LENGTH * math.log2(len(rc.ALPHABET)) >= 50


async def test_issue_shows_codes_once_and_stores_digests(db: Database, signer: EID) -> None:
    codes = await issue(db, signer)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}", c) for c in codes)
    r = tables.recovery_codes.c
    digests = await db.read(
        lambda conn: conn.execute(select(r.digest).where(r.eid_id == signer.id)).scalars().all()
    )
    assert len(digests) == 10 and all(len(d) == 64 for d in digests)
    assert not {c.replace("-", "") for c in codes} & set(digests)
    assert await db.read(lambda conn: rc.remaining(conn, eid_id=signer.id)) == 10
    [issued] = await events(db, "recovery_codes.issued", tenant_id=signer.tenant_id)
    assert issued["details"] == {"method": "recovery_code", "count": 10, "replaced": 0}
    assert not any(c in str(issued) for c in codes)


async def test_each_code_works_once(db: Database, signer: EID) -> None:
    codes = await issue(db, signer, count=3)
    assert await use(db, signer, codes[0]) == 2
    assert await refused(db, signer, codes[0]) == RecoveryCodeProblem.USED
    # typed loosely: lower case, spaces instead of the dash, look-alike letters
    loose = codes[1].lower().replace("-", "  ").replace("0", "o").replace("1", "l")
    assert await use(db, signer, f" {loose} ") == 1
    assert await use(db, signer, codes[2].replace("-", "")) == 0
    used = await events(db, "recovery_codes.used", tenant_id=signer.tenant_id)
    assert [e["details"]["remaining"] for e in used] == [2, 1, 0]


async def test_unknown_and_malformed(db: Database, signer: EID) -> None:
    codes = await issue(db, signer, count=2)
    other = await person(db)
    other_codes = await issue(db, other, count=1)
    assert await refused(db, signer, other_codes[0]) == RecoveryCodeProblem.UNKNOWN  # not this eID's
    assert await refused(db, signer, "ABCDE-FGHJK") == RecoveryCodeProblem.UNKNOWN
    for junk in ("", "ABCDE", "ABCDE-FGHJK-MNPQR", "ABCDU-FGHJK", "ABCDE_FGHJK", "ÄBCDE-FGHJK"):
        assert await refused(db, signer, junk) == RecoveryCodeProblem.MALFORMED
    assert await db.read(lambda conn: rc.remaining(conn, eid_id=signer.id)) == len(codes)


async def test_a_new_set_replaces_the_old(db: Database, signer: EID) -> None:
    old = await issue(db, signer)
    new = await issue(db, signer, count=5)
    assert await refused(db, signer, old[0]) == RecoveryCodeProblem.UNKNOWN
    assert await use(db, signer, new[0]) == 4
    issued = await events(db, "recovery_codes.issued", tenant_id=signer.tenant_id)
    assert [e["details"]["replaced"] for e in issued] == [0, 10]


async def test_racing_uses_of_one_code(db: Database, signer: EID) -> None:
    [code] = await issue(db, signer, count=1)
    results = await asyncio.gather(*(use(db, signer, code) for _ in range(4)), return_exceptions=True)
    assert results.count(0) == 1
    assert {r.code for r in results if isinstance(r, RecoveryCodeError)} == {RecoveryCodeProblem.USED}


async def test_count_is_checked_and_the_eid_must_exist(db: Database, signer: EID) -> None:
    with pytest.raises(ValueError, match="count"):
        await issue(db, signer, count=0)
    with pytest.raises(NotFoundError):
        await db.write(lambda tx: rc.issue(tx, eid_id="00000000-0000-0000-0000-000000000000", now=T0))


# -- a set the person asks for: proposed, shown, in use once they say they saved it --------------


async def propose(db: Database, signer: EID) -> rc.Proposal:
    return await db.write(lambda tx: rc.propose(tx, eid_id=signer.id, now=T0))


async def confirm(db: Database, signer: EID, set_id: str) -> rc.Confirmed:
    return await db.write(lambda tx: rc.confirm(tx, eid_id=signer.id, set_id=set_id))


async def left(db: Database, signer: EID) -> int:
    return await db.read(lambda conn: rc.remaining(conn, eid_id=signer.id))


async def test_a_proposed_set_replaces_the_one_in_use_only_when_confirmed(db: Database, signer: EID) -> None:
    old = await issue(db, signer)
    proposal = await propose(db, signer)
    assert len(proposal.codes) == 10 and len(proposal.set_id) == 22 and not set(proposal.codes) & set(old)
    # pending: the old codes still work, count and are what a code step finds; the new ones do not
    assert await left(db, signer) == 10
    assert await refused(db, signer, proposal.codes[0]) is RecoveryCodeProblem.UNKNOWN
    assert await use(db, signer, old[0]) == 9

    assert await confirm(db, signer, proposal.set_id) == rc.Confirmed(10, put_in_use=True)
    assert await left(db, signer) == 10
    assert await refused(db, signer, old[1]) is RecoveryCodeProblem.UNKNOWN
    assert await use(db, signer, proposal.codes[0]) == 9
    # the same confirmation again (a form sent twice) changes nothing
    assert await confirm(db, signer, proposal.set_id) == rc.Confirmed(10, put_in_use=False)
    assert await left(db, signer) == 9
    shown = await events(db, "recovery_codes.shown", tenant_id=signer.tenant_id)
    issued = await events(db, "recovery_codes.issued", tenant_id=signer.tenant_id)
    assert [e["details"] for e in shown] == [{"method": "recovery_code", "count": 10}]
    assert [e["details"]["replaced"] for e in issued] == [0, 10]  # the old set had ten, one used


async def test_only_the_latest_proposal_can_be_confirmed(db: Database, signer: EID) -> None:
    old = await issue(db, signer, count=3)
    first, second = await propose(db, signer), await propose(db, signer)
    for stale in (first.set_id, "", "x" * 22):
        with pytest.raises(rc.RecoveryCodeSetError) as caught:
            await confirm(db, signer, stale)
        assert caught.value.code == "stale"
    assert await use(db, signer, old[0]) == 2  # the failed confirmations kept the set in use
    r = tables.recovery_codes.c
    rows = await db.read(
        lambda conn: conn.execute(select(r.set_id, r.pending).where(r.eid_id == signer.id)).all()
    )
    assert sorted((s == second.set_id, p) for s, p in rows) == [(False, False)] * 3 + [(True, True)] * 10
    assert (await confirm(db, signer, second.set_id)).count == 10
    assert await refused(db, signer, first.codes[0]) is RecoveryCodeProblem.UNKNOWN
    assert await use(db, signer, second.codes[0]) == 9


async def test_codes_put_in_use_at_once_drop_a_pending_set(db: Database, signer: EID) -> None:
    proposal = await propose(db, signer)
    codes = await issue(db, signer, count=4)
    with pytest.raises(rc.RecoveryCodeSetError):
        await confirm(db, signer, proposal.set_id)
    assert await left(db, signer) == 4 and await use(db, signer, codes[0]) == 3


async def test_another_eids_set_cannot_be_confirmed(db: Database, signer: EID) -> None:
    other = await person(db)
    theirs = await propose(db, other)
    with pytest.raises(rc.RecoveryCodeSetError):
        await confirm(db, signer, theirs.set_id)
    assert (await confirm(db, other, theirs.set_id)).count == 10
    assert await left(db, signer) == 0


def test_codes_stored_before_pending_sets_stay_in_use(empty_database_url: str) -> None:
    url = empty_database_url
    migrate.upgrade(url, "0009_audit_keys")

    async def before() -> tuple[EID, list[str]]:
        db = Database(url)
        try:
            signer = await person(db)
            codes = ["AAAAA-BBBBB", "CCCCC-DDDDD"]
            rows = [{"e": signer.id, "d": rc._digest(signer.id, rc.normalize(c)), "t": T0} for c in codes]
            await db.write(
                lambda tx: tx.conn.execute(
                    text("INSERT INTO recovery_codes (eid_id, digest, created_at) VALUES (:e, :d, :t)"), rows
                )
            )
            return signer, codes
        finally:
            await db.close()

    signer, codes = asyncio.run(before())
    migrate.upgrade(url)

    async def after() -> str:
        db = Database(url)
        try:
            assert await left(db, signer) == 2 and await use(db, signer, codes[0]) == 1
            return (await propose(db, signer)).set_id
        finally:
            await db.close()

    asyncio.run(after())
    # back to the schema before: the pending set goes (it was never in use), the set in use stays
    command.downgrade(migrate.alembic_config(url), "0009_audit_keys")

    async def downgraded() -> list[object]:
        db = Database(url)
        try:
            return await db.read(
                lambda conn: list(
                    conn.execute(
                        text("SELECT used_at FROM recovery_codes WHERE eid_id = :e"), {"e": signer.id}
                    ).scalars()
                )
            )
        finally:
            await db.close()

    assert sorted(asyncio.run(downgraded()), key=lambda v: v is None) == [T0 + 60, None]
    migrate.upgrade(url)
