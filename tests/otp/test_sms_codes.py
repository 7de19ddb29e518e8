"""SMS one-time codes: expiry, single use, attempts, resend cooldown, send limits, Twilio and Verify.

Every test runs on SQLite and PostgreSQL (the ``db`` fixture); the send limits also run on the
local Redis. Codes travel through real senders: the file outbox, or the twilio SDK against the
local fake of Twilio's API.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from idp.delivery.sms import FileSMSSender, build_sms_sender, build_verify_service, read_outbox
from idp.delivery.twilio import SMSDeliveryError
from idp.eids import EID
from idp.errors import InvalidPhoneError, RateLimitedError
from idp.ratelimit import MemoryRateLimiter, RateLimiter
from idp.settings import load_settings
from idp.storage import tables
from idp.storage.database import Database
from otp.sms import Challenge, CodePurpose, PhoneVerifier, origin_host
from otp.totp import OTPError
from tests.support.factors import events, person, rate_limiter
from tests.support.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, VERIFY_SID, FakeTwilio, fake_twilio

PHONE = "+38641234567"
KEY = "test-instance-secret-" + "k" * 20
T0 = 1_800_000_000.0


def body(code: str) -> str:
    return f"Your eID code is {code}. It is valid for 5 minutes."


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    return tmp_path / "sms"


@pytest.fixture
def verifier(outbox: Path) -> PhoneVerifier:
    return PhoneVerifier(
        sender=FileSMSSender(outbox), verify_service=None, limiter=MemoryRateLimiter(), code_key=KEY
    )


@pytest.fixture
async def signer(db: Database) -> EID:
    return await person(db, phone_number=PHONE)


def last_code(outbox: Path) -> str:
    match = re.search(r"\b(\d{6})\b", read_outbox(outbox)[-1].body)
    assert match is not None
    return match.group(1)


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


async def send(
    verifier: PhoneVerifier,
    db: Database,
    signer: EID,
    *,
    now: float = T0,
    phone: str = PHONE,
    purpose: CodePurpose = CodePurpose.LOGIN,
    client_ip: str | None = "192.0.2.1",
) -> Challenge:
    return await verifier.send(
        db,
        tenant_id=signer.tenant_id,
        eid_id=signer.id,
        phone=phone,
        purpose=purpose,
        client_ip=client_ip,
        message=body,
        now=now,
    )


async def refused(
    verifier: PhoneVerifier, db: Database, challenge: Challenge, code: str, **kw: Any
) -> OTPError:
    kw.setdefault("now", T0 + 1)
    with pytest.raises(OTPError) as caught:
        await verifier.check(db, challenge_id=challenge.challenge_id, code=code, **kw)
    return caught.value


async def test_code_sent_then_accepted_once(
    verifier: PhoneVerifier, db: Database, signer: EID, outbox: Path
) -> None:
    challenge = await send(verifier, db, signer, phone="+386 41 234 567")
    assert challenge.phone == PHONE and challenge.masked_phone == "+386 •• ••• 567"
    assert (challenge.expires_at, challenge.resend_at) == (T0 + 300, T0 + 30)
    [sms] = read_outbox(outbox)
    assert sms.to == PHONE
    code = last_code(outbox)
    assert sms.body == body(code) and len(code) == 6

    checked = await verifier.check(
        db, challenge_id=challenge.challenge_id, code=f" {code[:3]} - {code[3:]} ", now=T0 + 5
    )  # as pasted from an SMS app that groups the digits
    assert (checked.challenge_id, checked.phone, checked.eid_id, checked.purpose) == (
        challenge.challenge_id,
        PHONE,
        signer.id,
        CodePurpose.LOGIN,
    )
    error = await refused(verifier, db, challenge, code, now=T0 + 6)
    assert error.code == "replayed"

    trail = await events(db, "otp.sms.", tenant_id=signer.tenant_id)
    assert [e["event_type"] for e in trail] == [
        "otp.sms.issued",
        "otp.sms.sent",
        "otp.sms.verified",
        "otp.sms.failed",
    ]
    assert all(e["tenant_id"] == signer.tenant_id and e["eid_id"] == signer.id for e in trail)
    assert [e["success"] for e in trail] == [True, True, True, False]
    assert trail[-1]["details"]["reason"] == "replayed"
    assert trail[1]["details"]["message_id"] == sms.id
    dumped = json.dumps([e["details"] for e in trail])
    assert code not in dumped and PHONE not in dumped  # never the code; only the masked number


async def test_the_code_is_bound_to_the_idps_site(db: Database, signer: EID, outbox: Path) -> None:
    bound = PhoneVerifier(
        sender=FileSMSSender(outbox),
        verify_service=None,
        limiter=MemoryRateLimiter(),
        code_key=KEY,
        bound_to="eid.example.org",
    )
    challenge = await send(bound, db, signer)
    [sms] = read_outbox(outbox)
    text, last_line = sms.body.rsplit("\n\n", 1)
    code = last_code(outbox)
    # the origin-bound line of the SMS one-time codes format, last, after the tenant's own text
    assert text == body(code) and last_line == f"@eid.example.org #{code}"
    checked = await bound.check(db, challenge_id=challenge.challenge_id, code=code, now=T0 + 5)
    assert checked.challenge_id == challenge.challenge_id


@pytest.mark.parametrize(
    ("issuer", "host"),
    [
        ("https://eid.example.org", "eid.example.org"),
        ("https://eid.example.org:443/", "eid.example.org"),
        ("https://EID.Example.org/tenant", "eid.example.org"),
        ("http://eid.example.org", None),  # phones fill codes in on secure sites only
        ("https://eid.example.org:8443", None),  # the format names a host, no port
        ("https://192.0.2.7", None),
        ("https://[2001:db8::1]", None),
        ("http://127.0.0.1:8000", None),  # `make run`
    ],
)
def test_which_issuers_bind_their_codes(issuer: str, host: str | None) -> None:
    assert origin_host(issuer) == host


async def test_only_a_keyed_digest_is_stored(
    verifier: PhoneVerifier, db: Database, signer: EID, outbox: Path
) -> None:
    challenge = await send(verifier, db, signer)
    code = last_code(outbox)
    c = tables.otp_codes.c
    row = await db.read(
        lambda conn: (
            conn.execute(select(tables.otp_codes).where(c.id == challenge.challenge_id)).mappings().one()
        )
    )
    assert row["code_digest"] is not None and len(row["code_digest"]) == 64
    assert code not in json.dumps({k: v for k, v in row.items()}, default=str)
    # another instance secret cannot confirm the code: the digest is an HMAC under the secret
    stranger = PhoneVerifier(
        sender=FileSMSSender(outbox), verify_service=None, limiter=MemoryRateLimiter(), code_key="x" * 40
    )
    with pytest.raises(OTPError) as caught:
        await stranger.check(db, challenge_id=challenge.challenge_id, code=code, now=T0 + 1)
    assert caught.value.code == "invalid"


async def test_code_expires_after_five_minutes(
    verifier: PhoneVerifier, db: Database, signer: EID, outbox: Path
) -> None:
    late = await send(verifier, db, signer)
    error = await refused(verifier, db, late, last_code(outbox), now=T0 + 300)
    assert error.code == "expired" and "5 minutes" in str(error)
    in_time = await send(verifier, db, signer, now=T0 + 400)
    await verifier.check(db, challenge_id=in_time.challenge_id, code=last_code(outbox), now=T0 + 699)


async def test_five_wrong_attempts_kill_the_code(
    verifier: PhoneVerifier, db: Database, signer: EID, outbox: Path
) -> None:
    challenge = await send(verifier, db, signer)
    code = last_code(outbox)
    wrong = other_code(code)
    for left in (4, 3, 2, 1):
        error = await refused(verifier, db, challenge, wrong)
        assert (error.code, error.attempts_left) == ("invalid", left)
        assert f"{left} attempts left" in str(error)
    error = await refused(verifier, db, challenge, wrong)
    assert (error.code, error.attempts_left) == ("exhausted", 0)
    error = await refused(verifier, db, challenge, code)  # the right code, too late
    assert error.code == "exhausted"
    failed = await events(db, "otp.sms.failed", tenant_id=signer.tenant_id)
    assert [e["details"]["reason"] for e in failed] == ["invalid"] * 4 + ["exhausted", "exhausted"]
    assert [e["details"].get("attempts") for e in failed[:5]] == [1, 2, 3, 4, 5]


async def test_malformed_codes_do_not_use_up_attempts(
    verifier: PhoneVerifier, db: Database, signer: EID, outbox: Path
) -> None:
    challenge = await send(verifier, db, signer)
    for junk in ("", "12345", "1234567", "12a456", "١٢٣٤٥٦", "123456" * 100):
        assert (await refused(verifier, db, challenge, junk)).code == "malformed"
    await verifier.check(db, challenge_id=challenge.challenge_id, code=last_code(outbox), now=T0 + 2)


async def test_unknown_challenge_and_wrong_purpose(
    verifier: PhoneVerifier, db: Database, signer: EID, outbox: Path
) -> None:
    with pytest.raises(OTPError) as caught:
        await verifier.check(db, challenge_id="no-such-challenge", code="123456", now=T0)
    assert caught.value.code == "expired"
    challenge = await send(verifier, db, signer, purpose=CodePurpose.RESET)
    code = last_code(outbox)
    error = await refused(verifier, db, challenge, code, purpose=CodePurpose.LOGIN)
    assert error.code == "invalid" and "reset" in str(error)
    checked = await verifier.check(
        db, challenge_id=challenge.challenge_id, code=code, now=T0 + 2, purpose=CodePurpose.RESET
    )
    assert checked.purpose is CodePurpose.RESET


async def test_resend_cooldown_and_the_old_code_dies(
    verifier: PhoneVerifier, db: Database, signer: EID, outbox: Path
) -> None:
    first = await send(verifier, db, signer)
    first_code = last_code(outbox)
    with pytest.raises(RateLimitedError) as caught:
        await send(verifier, db, signer, now=T0 + 10)
    assert caught.value.retry_after == pytest.approx(20)
    assert len(read_outbox(outbox)) == 1
    # another purpose, or another person, is not a resend
    await send(verifier, db, signer, now=T0 + 10, purpose=CodePurpose.CHANGE_PHONE)
    second = await send(verifier, db, signer, now=T0 + 30)
    second_code = last_code(outbox)
    assert second.challenge_id != first.challenge_id
    error = await refused(verifier, db, first, first_code, now=T0 + 31)
    assert error.code == "expired" and "newer code" in str(error)
    await verifier.check(db, challenge_id=second.challenge_id, code=second_code, now=T0 + 32)
    refusals = await events(db, "otp.sms.refused", tenant_id=signer.tenant_id)
    assert [e["details"]["reason"] for e in refusals] == ["cooldown"]
    issued = await events(db, "otp.sms.issued", tenant_id=signer.tenant_id)
    assert [e["details"]["replaced"] for e in issued] == [0, 0, 1]


async def test_code_without_an_eid_for_invitations(
    verifier: PhoneVerifier, db: Database, signer: EID, outbox: Path
) -> None:
    challenge = await verifier.send(
        db,
        tenant_id=signer.tenant_id,
        eid_id=None,
        phone="+385 91 234 5678",
        purpose=CodePurpose.ENROL_PHONE,
        client_ip=None,
        message=body,
        now=T0,
    )
    checked = await verifier.check(
        db, challenge_id=challenge.challenge_id, code=last_code(outbox), now=T0 + 3
    )
    assert (checked.eid_id, checked.phone, checked.purpose) == (
        None,
        "+385912345678",
        CodePurpose.ENROL_PHONE,
    )


async def test_unusable_number_sends_nothing(
    verifier: PhoneVerifier, db: Database, signer: EID, outbox: Path
) -> None:
    for number in ("+386 90 123 456", "not a number", "+386 1 234 56 78"):
        with pytest.raises(InvalidPhoneError):
            await send(verifier, db, signer, phone=number)
    assert read_outbox(outbox) == []
    assert await events(db, "otp.sms.", tenant_id=signer.tenant_id) == []


async def test_racing_checks_accept_a_code_once(
    verifier: PhoneVerifier, db: Database, signer: EID, outbox: Path
) -> None:
    challenge = await send(verifier, db, signer)
    code = last_code(outbox)
    results = await asyncio.gather(
        *(verifier.check(db, challenge_id=challenge.challenge_id, code=code, now=T0 + 1) for _ in range(4)),
        return_exceptions=True,
    )
    accepted = [r for r in results if not isinstance(r, BaseException)]
    assert len(accepted) == 1
    assert {r.code for r in results if isinstance(r, OTPError)} == {"replayed"}


async def test_racing_wrong_attempts_stop_at_five(
    verifier: PhoneVerifier, db: Database, signer: EID, outbox: Path
) -> None:
    challenge = await send(verifier, db, signer)
    wrong = other_code(last_code(outbox))
    await asyncio.gather(
        *(verifier.check(db, challenge_id=challenge.challenge_id, code=wrong, now=T0 + 1) for _ in range(8)),
        return_exceptions=True,
    )
    c = tables.otp_codes.c
    row = await db.read(
        lambda conn: conn.execute(
            select(c.attempts, c.dead_reason).where(c.id == challenge.challenge_id)
        ).one()
    )
    assert (row.attempts, row.dead_reason) == (5, "exhausted")


# ---------------------------------------------------------------- send limits (SMS pumping)


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    async with rate_limiter(request.param) as made:
        yield made


def limited(outbox: Path, limiter: RateLimiter, **limits: int) -> PhoneVerifier:
    return PhoneVerifier(
        sender=FileSMSSender(outbox), verify_service=None, limiter=limiter, code_key=KEY, **limits
    )


async def test_sends_limited_per_number(
    db: Database, signer: EID, outbox: Path, limiter: RateLimiter
) -> None:
    verifier = limited(outbox, limiter, sends_per_number_hour=3)
    for i in range(3):  # resends past the cooldown, from different addresses
        await send(verifier, db, signer, now=T0 + 31 * i, client_ip=f"192.0.2.{i}")
    with pytest.raises(RateLimitedError) as caught:
        await send(verifier, db, signer, now=T0 + 100, client_ip="192.0.2.99")
    assert 0 < caught.value.retry_after <= 3600
    assert len(read_outbox(outbox)) == 3
    [refusal] = await events(db, "otp.sms.refused", tenant_id=signer.tenant_id)
    assert refusal["details"]["reason"] == "limit_per_number" and not refusal["success"]
    # another number is not affected
    await send(verifier, db, signer, now=T0 + 100, phone="+38641000111", client_ip="192.0.2.99")


async def test_sends_limited_per_ip(db: Database, signer: EID, outbox: Path, limiter: RateLimiter) -> None:
    verifier = limited(outbox, limiter, sends_per_ip_hour=2)
    await send(verifier, db, signer, phone="+38641000001")
    await send(verifier, db, signer, phone="+38641000002")
    with pytest.raises(RateLimitedError):
        await send(verifier, db, signer, phone="+38641000003")
    await send(verifier, db, signer, phone="+38641000003", client_ip="198.51.100.7")
    assert [m.to for m in read_outbox(outbox)] == ["+38641000001", "+38641000002", "+38641000003"]


async def test_sends_limited_per_tenant(
    db: Database, signer: EID, outbox: Path, limiter: RateLimiter
) -> None:
    verifier = limited(outbox, limiter, sends_per_tenant_hour=2)
    await send(verifier, db, signer, phone="+38641000001", client_ip="192.0.2.1")
    await send(verifier, db, signer, phone="+38641000002", client_ip="192.0.2.2")
    with pytest.raises(RateLimitedError):
        await send(verifier, db, signer, phone="+38641000003", client_ip="192.0.2.3")
    [refusal] = await events(db, "otp.sms.refused", tenant_id=signer.tenant_id)
    assert refusal["details"]["reason"] == "limit_per_tenant"
    other = await person(db)  # another tenant has its own budget
    await send(verifier, db, other, phone="+38641000003", client_ip="192.0.2.3")


# ---------------------------------------------------------------- through Twilio


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with fake_twilio() as server:
        yield server


def twilio_verifier(fake: FakeTwilio, *, verify: bool) -> PhoneVerifier:
    settings = load_settings(
        env={},
        sms_backend="twilio",
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_from="+38640000000",
        twilio_verify_sid=VERIFY_SID if verify else None,
    )
    return PhoneVerifier(
        sender=build_sms_sender(settings, http_client=fake.http_client()),
        verify_service=build_verify_service(settings, http_client=fake.http_client()),
        limiter=MemoryRateLimiter(),
        code_key=KEY,
    )


async def test_twilio_refusal_is_clear_and_kills_the_code(
    db: Database, signer: EID, fake: FakeTwilio
) -> None:
    verifier = twilio_verifier(fake, verify=False)
    fake.fail_next(400, 21614, "To number: +38641234567, is not a mobile number")
    with pytest.raises(SMSDeliveryError) as caught:
        await send(verifier, db, signer)
    assert caught.value.code == "sms_number_refused"
    assert str(caught.value).startswith("This number cannot receive our text messages")
    challenge_id = (await events(db, "otp.sms.issued", tenant_id=signer.tenant_id))[0]["details"][
        "challenge_id"
    ]
    c = tables.otp_codes.c
    row = await db.read(lambda conn: conn.execute(select(c.dead_reason).where(c.id == challenge_id)).one())
    assert row.dead_reason == "not_sent"
    [failed] = await events(db, "otp.sms.send_failed", tenant_id=signer.tenant_id)
    assert failed["details"]["reason"] == "sms_number_refused" and not failed["success"]
    # a resend is not held back by the cooldown of a code that never went out
    sent = await send(verifier, db, signer, now=T0 + 1)
    request = fake.requests[-1]
    assert request.form["To"] == PHONE and request.form["From"] == "+38640000000"
    code = re.search(r"\d{6}", request.form["Body"])
    assert code is not None
    await verifier.check(db, challenge_id=sent.challenge_id, code=code.group(0), now=T0 + 2)


async def test_twilio_verify_mode(db: Database, signer: EID, fake: FakeTwilio) -> None:
    verifier = twilio_verifier(fake, verify=True)
    challenge = await send(verifier, db, signer)
    assert [r.path for r in fake.requests] == [f"/v2/Services/{VERIFY_SID}/Verifications"]
    assert fake.requests[0].form == {"To": PHONE, "Channel": "sms"}
    code = fake.pending_codes[PHONE]
    c = tables.otp_codes.c
    row = await db.read(
        lambda conn: conn.execute(
            select(c.code_digest, c.provider, c.message_id).where(c.id == challenge.challenge_id)
        ).one()
    )
    assert row.code_digest is None and row.provider == "verify" and row.message_id.startswith("VE")
    error = await refused(verifier, db, challenge, other_code(code))
    assert (error.code, error.attempts_left) == ("invalid", 4)
    assert (await refused(verifier, db, challenge, "12x")).code == "malformed"  # never reaches Twilio
    checked = await verifier.check(db, challenge_id=challenge.challenge_id, code=code, now=T0 + 3)
    assert checked.phone == PHONE
    checks = [r for r in fake.requests if r.path.endswith("/VerificationCheck")]
    assert [r.form for r in checks] == [{"To": PHONE, "Code": other_code(code)}, {"To": PHONE, "Code": code}]
    assert (await refused(verifier, db, challenge, code, now=T0 + 4)).code == "replayed"
    assert len([r for r in fake.requests if r.path.endswith("/VerificationCheck")]) == 2  # refused locally


async def test_twilio_verify_expired_on_twilios_side(db: Database, signer: EID, fake: FakeTwilio) -> None:
    verifier = twilio_verifier(fake, verify=True)
    challenge = await send(verifier, db, signer)
    code = fake.pending_codes.pop(PHONE)  # Twilio's 10 minutes passed, or it was cancelled there
    assert (await refused(verifier, db, challenge, code)).code == "expired"
    assert (await refused(verifier, db, challenge, code)).code == "expired"


async def test_twilio_verify_outage_during_check(db: Database, signer: EID, fake: FakeTwilio) -> None:
    verifier = twilio_verifier(fake, verify=True)
    challenge = await send(verifier, db, signer)
    fake.fail_next(503, 20503, "Service unavailable")
    with pytest.raises(SMSDeliveryError) as caught:
        await verifier.check(
            db, challenge_id=challenge.challenge_id, code=fake.pending_codes[PHONE], now=T0 + 1
        )
    assert caught.value.code == "sms_unavailable"
    [failed] = await events(db, "otp.sms.failed", tenant_id=signer.tenant_id)
    assert failed["details"]["reason"] == "provider_error"
    # the outage used no attempt and the code still works
    await verifier.check(db, challenge_id=challenge.challenge_id, code=fake.pending_codes[PHONE], now=T0 + 2)


def test_policy_parameters_are_validated(outbox: Path) -> None:
    sender = FileSMSSender(outbox)
    with pytest.raises(ValueError, match="sender or a verify service"):
        PhoneVerifier(sender=None, verify_service=None, limiter=MemoryRateLimiter())
    with pytest.raises(ValueError, match="cooldown"):
        PhoneVerifier(sender=sender, verify_service=None, limiter=MemoryRateLimiter(), ttl=30, cooldown=30)
    with pytest.raises(ValueError, match="max_attempts"):
        PhoneVerifier(sender=sender, verify_service=None, limiter=MemoryRateLimiter(), max_attempts=0)
    with pytest.raises(ValueError, match="sends_per_ip_hour"):
        PhoneVerifier(sender=sender, verify_service=None, limiter=MemoryRateLimiter(), sends_per_ip_hour=0)


async def test_real_clock_by_default(
    verifier: PhoneVerifier, db: Database, signer: EID, outbox: Path
) -> None:
    before = time.time()
    challenge = await verifier.send(
        db,
        tenant_id=signer.tenant_id,
        eid_id=signer.id,
        phone=PHONE,
        purpose=CodePurpose.LOGIN,
        client_ip=None,
        message=body,
    )
    assert before + 300 <= challenge.expires_at <= time.time() + 300
    await verifier.check(db, challenge_id=challenge.challenge_id, code=last_code(outbox))
