"""Recovery codes: issued once and shown once, stored as digests, each usable a single time."""

from __future__ import annotations

import asyncio
import math
import re

import pytest
from sqlalchemy import select

from idp.eids import EID
from idp.errors import LoginError, NotFoundError
from idp.storage import tables
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
