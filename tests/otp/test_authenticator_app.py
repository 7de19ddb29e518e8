"""Authenticator apps: enrolment by QR code, confirmation, a step used once, replacement, removal.

On SQLite and PostgreSQL. Codes are computed the way an app does, from the secret the enrolment
showed (RFC 6238), at chosen times.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import segno
from sqlalchemy import select

from idp import audit
from idp.eids import EID
from idp.errors import IdPError, NotFoundError
from idp.storage import tables
from idp.storage.database import Database, Tx
from otp import authenticator_app as app
from otp.totp import OTPError, code_at
from tests.support.factors import events, person

KEY = "test-instance-secret-" + "k" * 20
T0 = 1_800_000_000.0  # a multiple of 30: the start of a time step


@pytest.fixture
async def signer(db: Database) -> EID:
    return await person(db)


async def begin(db: Database, signer: EID, *, now: float = T0) -> app.Enrolment:
    return await db.write(
        lambda tx: app.begin_enrolment(
            tx,
            eid_id=signer.id,
            account_name=signer.username,
            issuer_name="Acme eID",
            sealing_key=KEY,
            now=now,
        )
    )


async def confirm(db: Database, signer: EID, enrolment: app.Enrolment, code: str, *, now: float) -> None:
    await db.write(
        lambda tx: app.confirm_enrolment(
            tx, eid_id=signer.id, enrolment_id=enrolment.enrolment_id, code=code, sealing_key=KEY, now=now
        )
    )


async def verify(db: Database, signer: EID, code: str, *, now: float, key: str = KEY) -> None:
    await db.write(lambda tx: app.verify(tx, eid_id=signer.id, code=code, sealing_key=key, now=now))


async def refused(coro: Any) -> OTPError:
    with pytest.raises(OTPError) as caught:
        await coro
    return caught.value


async def enrolled(db: Database, signer: EID) -> app.Enrolment:
    enrolment = await begin(db, signer)
    await confirm(db, signer, enrolment, code_at(secret=enrolment.secret, for_time=T0), now=T0 + 5)
    return enrolment


async def test_enrolment_shows_qr_code_and_manual_key(db: Database, signer: EID) -> None:
    enrolment = await begin(db, signer)
    uri = urlsplit(enrolment.provisioning_uri)
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    query = parse_qs(uri.query)
    assert query["secret"] == [enrolment.secret] and query["issuer"] == ["Acme eID"]
    assert enrolment.manual_key.replace(" ", "") == enrolment.secret and len(enrolment.secret) == 32
    assert enrolment.qr_svg.startswith("<svg") and "<title>QR code</title>" in enrolment.qr_svg
    # the QR code is the URI itself, at error correction level M
    assert enrolment.qr_svg == segno.make(enrolment.provisioning_uri, error="m").svg_inline(
        scale=4, border=4, title="QR code"
    )
    assert not await db.read(lambda conn: app.has_app(conn, signer.id))  # not until confirmed


async def test_secret_is_sealed_at_rest(db: Database, signer: EID) -> None:
    enrolment = await begin(db, signer)
    c = tables.totp_credentials.c
    sealed = await db.read(
        lambda conn: conn.execute(select(c.secret_sealed).where(c.id == enrolment.enrolment_id)).scalar_one()
    )
    assert enrolment.secret.encode() not in bytes(sealed) and bytes(sealed).startswith(b"v1")


async def test_confirm_then_verify_once_per_step(db: Database, signer: EID) -> None:
    enrolment = await enrolled(db, signer)
    assert await db.read(lambda conn: app.has_app(conn, signer.id))
    # the confirming code's step is used: the same code right after is a replay
    same = code_at(secret=enrolment.secret, for_time=T0)
    assert (await refused(verify(db, signer, same, now=T0 + 10))).code == "replayed"
    later = code_at(secret=enrolment.secret, for_time=T0 + 60)
    await verify(db, signer, later, now=T0 + 61)
    assert (await refused(verify(db, signer, later, now=T0 + 62))).code == "replayed"
    # an older step is refused too, even within the ±1 window
    previous = code_at(secret=enrolment.secret, for_time=T0 + 30)
    assert (await refused(verify(db, signer, previous, now=T0 + 61))).code == "replayed"
    assert (
        await refused(verify(db, signer, "000000" if later != "000000" else "111111", now=T0 + 90))
    ).code in (
        "invalid",
        "replayed",
    )
    assert (await refused(verify(db, signer, "12 34", now=T0 + 90))).code == "malformed"
    trail = await events(db, "otp.totp.", tenant_id=signer.tenant_id)
    assert [e["event_type"] for e in trail] == [
        "otp.totp.enrolment_started",
        "otp.totp.enrolled",
        "otp.totp.verified",
    ]
    assert trail[2]["details"] == {"method": "totp", "step": int(T0 + 60) // 30}
    # the tenant and username come with the app's row (one statement): the event names both
    shown = await db.read(lambda conn: audit.readable(conn, trail))
    assert shown[2]["username"] == signer.username
    assert all(enrolment.secret not in str(e["details"]) for e in trail)


async def test_racing_requests_use_a_code_once(db: Database, signer: EID) -> None:
    enrolment = await enrolled(db, signer)
    code = code_at(secret=enrolment.secret, for_time=T0 + 90)
    results = await asyncio.gather(
        *(verify(db, signer, code, now=T0 + 91) for _ in range(4)), return_exceptions=True
    )
    assert sum(r is None for r in results) == 1
    assert {r.code for r in results if isinstance(r, OTPError)} == {"replayed"}


async def test_wrong_and_late_confirmations(db: Database, signer: EID) -> None:
    enrolment = await begin(db, signer)
    wrong = code_at(secret=enrolment.secret, for_time=T0 + 600)  # a code of another time
    assert (await refused(confirm(db, signer, enrolment, wrong, now=T0))).code == "invalid"
    late = code_at(secret=enrolment.secret, for_time=T0 + 600)
    error = await refused(confirm(db, signer, enrolment, late, now=T0 + 600))
    assert error.code == "expired" and "10 minutes" in str(error)
    assert not await db.read(lambda conn: app.has_app(conn, signer.id))
    # another eID cannot confirm this enrolment
    other = await person(db)
    stolen = app.confirm_enrolment
    with pytest.raises(OTPError) as caught:
        await db.write(
            lambda tx: stolen(
                tx,
                eid_id=other.id,
                enrolment_id=enrolment.enrolment_id,
                code=code_at(secret=enrolment.secret, for_time=T0),
                sealing_key=KEY,
                now=T0,
            )
        )
    assert caught.value.code == "expired"


async def test_a_new_app_replaces_the_old_one(db: Database, signer: EID) -> None:
    old = await enrolled(db, signer)
    new = await begin(db, signer, now=T0 + 100)
    # until the new one is confirmed, the old app still works
    await verify(db, signer, code_at(secret=old.secret, for_time=T0 + 120), now=T0 + 121)
    await confirm(db, signer, new, code_at(secret=new.secret, for_time=T0 + 150), now=T0 + 151)
    old_code = code_at(secret=old.secret, for_time=T0 + 210)
    new_code = code_at(secret=new.secret, for_time=T0 + 210)
    if old_code != new_code:
        assert (await refused(verify(db, signer, old_code, now=T0 + 211))).code == "invalid"
    await verify(db, signer, new_code, now=T0 + 212)
    [second] = [e for e in await events(db, "otp.totp.enrolled", tenant_id=signer.tenant_id)][1:]
    assert second["details"]["replaced"] is True
    c = tables.totp_credentials.c
    rows = await db.read(lambda conn: conn.execute(select(c.id).where(c.eid_id == signer.id)).all())
    assert [r.id for r in rows] == [new.enrolment_id]


async def test_a_new_enrolment_drops_the_pending_one(db: Database, signer: EID) -> None:
    first = await begin(db, signer)
    await begin(db, signer, now=T0 + 10)
    error = await refused(confirm(db, signer, first, code_at(secret=first.secret, for_time=T0), now=T0 + 11))
    assert error.code == "expired"


async def test_remove(db: Database, signer: EID) -> None:
    enrolment = await enrolled(db, signer)
    await db.write(lambda tx: app.remove(tx, eid_id=signer.id))
    assert not await db.read(lambda conn: app.has_app(conn, signer.id))
    code = code_at(secret=enrolment.secret, for_time=T0 + 300)
    assert (await refused(verify(db, signer, code, now=T0 + 300))).code == "not_enrolled"
    await db.write(lambda tx: app.remove(tx, eid_id=signer.id))  # nothing left: not an error, no event
    trail = await events(db, "otp.totp.removed", tenant_id=signer.tenant_id)
    assert len(trail) == 1 and trail[0]["eid_id"] == signer.id


async def test_another_instance_secret_cannot_open_the_secret(db: Database, signer: EID) -> None:
    enrolment = await enrolled(db, signer)
    code = code_at(secret=enrolment.secret, for_time=T0 + 300)
    with pytest.raises(IdPError, match="IDP_SECRET_KEY"):
        await verify(db, signer, code, now=T0 + 300, key="another-secret-" + "z" * 30)


async def test_unknown_eid(db: Database) -> None:
    def unit(tx: Tx) -> app.Enrolment:
        return app.begin_enrolment(
            tx,
            eid_id="00000000-0000-0000-0000-000000000000",
            account_name="a",
            issuer_name="b",
            sealing_key=KEY,
            now=T0,
        )

    with pytest.raises(NotFoundError):
        await db.write(unit)


async def test_colons_in_names_become_spaces(db: Database, signer: EID) -> None:
    """A colon separates issuer and account in the app's label: a tenant called "Acme: eID"
    still gets an enrolment, labelled "Acme  eID"."""
    enrolment = await db.write(
        lambda tx: app.begin_enrolment(
            tx, eid_id=signer.id, account_name="ana:x", issuer_name="Acme: eID", sealing_key=KEY, now=T0
        )
    )
    uri = urllib.parse.urlsplit(enrolment.provisioning_uri)
    assert urllib.parse.unquote(uri.path) == "/Acme  eID:ana x"
    assert urllib.parse.parse_qs(uri.query)["issuer"] == ["Acme  eID"]
