"""SMS delivery: the file outbox, and the real twilio SDK against a local fake of Twilio's API."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from idp.delivery.sms import FileSMSSender, build_sms_sender, build_verify_service, read_outbox
from idp.delivery.twilio import SMSDeliveryError, TwilioSMSSender, TwilioVerify, twilio_client
from idp.errors import DeliveryError, SettingsError
from idp.settings import Settings, load_settings
from tests.support.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, VERIFY_SID, FakeTwilio, fake_twilio

TO = "+38641234567"
FROM = "+38640000000"


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with fake_twilio() as server:
        yield server


def twilio_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "sms_backend": "twilio",
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": AUTH_TOKEN,
        "twilio_from": FROM,
    }
    values.update(overrides)
    return load_settings(env={}, **values)


def sender_for(fake: FakeTwilio, *, timeout: float = 5.0, **overrides: object) -> TwilioSMSSender:
    sender = build_sms_sender(twilio_settings(**overrides), http_client=fake.http_client(timeout=timeout))
    assert isinstance(sender, TwilioSMSSender)
    return sender


# ---------------------------------------------------------------- file outbox


async def test_file_outbox_one_json_file_per_message(tmp_path: Path) -> None:
    sender = FileSMSSender(tmp_path / "sms")
    first = await sender.send(to=TO, body="Koda: 123456")
    second = await sender.send(to="+447911123456", body="Code: 654321 — ščž")
    files = sorted((tmp_path / "sms").iterdir())
    assert len(files) == 2 and all(f.suffix == ".json" for f in files)
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)  # codes are secrets
    outbox = read_outbox(tmp_path / "sms")
    assert [(m.id, m.to, m.body) for m in outbox] == [
        (first, TO, "Koda: 123456"),
        (second, "+447911123456", "Code: 654321 — ščž"),
    ]
    record = json.loads(files[0].read_text(encoding="utf-8"))
    assert set(record) == {"id", "to", "body", "time"} and record["time"].endswith("Z")
    assert read_outbox(tmp_path / "missing") == []


async def test_file_outbox_that_cannot_be_written_is_a_delivery_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(DeliveryError, match="cannot write to the SMS outbox"):
        await FileSMSSender(blocker / "sms").send(to=TO, body="x")


def test_build_file_sender_resolves_relative_directories(tmp_path: Path) -> None:
    sender = build_sms_sender(load_settings(env={}, sms_backend="file:out/sms"), base_dir=tmp_path)
    assert isinstance(sender, FileSMSSender) and sender.directory == tmp_path / "out" / "sms"
    default = build_sms_sender(load_settings(env={}))
    assert isinstance(default, FileSMSSender) and default.directory == Path("var/outbox/sms")
    assert build_verify_service(load_settings(env={})) is None


def test_unknown_backend_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="IDP_SMS_BACKEND"):
        build_sms_sender(Settings(sms_backend="nexmo"))


# ---------------------------------------------------------------- Twilio Messages API


async def test_twilio_sends_the_exact_request(fake: FakeTwilio) -> None:
    message_id = await sender_for(fake).send(to=TO, body="Vaša koda je 123456")
    assert message_id.startswith("SM") and len(message_id) == 34
    assert fake.original_urls == [f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"]
    [request] = fake.requests
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.form == {"To": TO, "From": FROM, "Body": "Vaša koda je 123456"}
    assert request.auth == (ACCOUNT_SID, AUTH_TOKEN)
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.headers["User-Agent"].startswith("twilio-python/")


async def test_twilio_messaging_service_sender(fake: FakeTwilio) -> None:
    service = "MG" + "1" * 32
    await sender_for(fake, twilio_from=service).send(to=TO, body="x")
    assert fake.requests[0].form == {"To": TO, "MessagingServiceSid": service, "Body": "x"}


@pytest.mark.parametrize(
    ("status", "code", "problem"),
    [
        (400, 21211, "sms_number_refused"),  # invalid 'To' phone number
        (400, 21614, "sms_number_refused"),  # not a mobile number
        (400, 21610, "sms_number_refused"),  # recipient replied STOP
        (400, 21408, "sms_number_refused"),  # region not enabled
        (429, 20429, "sms_too_many"),
        (400, 14107, "sms_too_many"),
        (500, 20500, "sms_unavailable"),
        (503, 20503, "sms_unavailable"),
        (400, 21602, "sms_unavailable"),  # our request was wrong: not the person's fault
    ],
)
async def test_twilio_errors_become_clear_messages(
    fake: FakeTwilio, status: int, code: int, problem: str
) -> None:
    fake.fail_next(status, code, f"Twilio says {code}")
    with pytest.raises(SMSDeliveryError) as caught:
        await sender_for(fake).send(to=TO, body="x")
    error = caught.value
    assert (error.code, error.provider_code, error.status) == (problem, code, status)
    assert f"HTTP {status}, error {code}:" in error.detail and f"Twilio says {code}" in error.detail
    assert "Twilio" not in str(error) and "\x1b" not in str(error)  # shown to the person as it is
    assert isinstance(error, DeliveryError)


async def test_invalid_number_answered_by_twilio_itself(fake: FakeTwilio) -> None:
    with pytest.raises(SMSDeliveryError) as caught:
        await sender_for(fake).send(to="not-a-number", body="x")
    assert caught.value.code == "sms_number_refused" and caught.value.provider_code == 21211
    assert str(caught.value).startswith("This number cannot receive our text messages.")


async def test_wrong_credentials_never_leak(fake: FakeTwilio) -> None:
    with pytest.raises(SMSDeliveryError) as caught:
        await sender_for(fake, twilio_auth_token="wrong-token-value").send(to=TO, body="x")
    error = caught.value
    assert (error.code, error.status, error.provider_code) == ("sms_unavailable", 401, 20003)
    assert fake.requests[0].auth == (ACCOUNT_SID, "wrong-token-value")
    assert "wrong-token-value" not in error.detail and "wrong-token-value" not in str(error)


async def test_timeout_is_a_clear_error(fake: FakeTwilio) -> None:
    fake.hang.set()
    with pytest.raises(SMSDeliveryError) as caught:
        await sender_for(fake, timeout=0.2).send(to=TO, body="x")
    assert caught.value.code == "sms_unavailable"
    assert "did not answer in time" in caught.value.detail


async def test_unreachable_twilio_is_a_clear_error(fake: FakeTwilio) -> None:
    port = fake.port
    with fake_twilio() as other:
        pass  # served and stopped: its port now refuses connections
    fake.port = other.port
    try:
        with pytest.raises(SMSDeliveryError) as caught:
            await sender_for(fake).send(to=TO, body="x")
    finally:
        fake.port = port
    assert caught.value.code == "sms_unavailable"
    assert "ClientConnectorError" in caught.value.detail or "Connect" in caught.value.detail


# ---------------------------------------------------------------- Twilio Verify


def verify_for(fake: FakeTwilio, **overrides: object) -> TwilioVerify:
    settings = twilio_settings(twilio_verify_sid=VERIFY_SID, **overrides)
    verify = build_verify_service(settings, http_client=fake.http_client())
    assert verify is not None
    return verify


async def test_verify_start_and_check(fake: FakeTwilio) -> None:
    verify = verify_for(fake)
    sid = await verify.start(to=TO, locale="sl")
    assert sid.startswith("VE")
    start = fake.requests[0]
    assert start.path == f"/v2/Services/{VERIFY_SID}/Verifications"
    assert start.form == {"To": TO, "Channel": "sms", "Locale": "sl"}
    assert start.auth == (ACCOUNT_SID, AUTH_TOKEN)
    assert fake.original_urls[0] == f"https://verify.twilio.com/v2/Services/{VERIFY_SID}/Verifications"
    code = fake.pending_codes[TO]
    wrong = "000000" if code != "000000" else "111111"
    assert await verify.check(to=TO, code=wrong) is False
    assert await verify.check(to=TO, code=code) is True
    check = fake.requests[-1]
    assert check.path == f"/v2/Services/{VERIFY_SID}/VerificationCheck"
    assert check.form == {"To": TO, "Code": code}
    # approved: Twilio holds no pending verification any more
    assert await verify.check(to=TO, code=code) is None


async def test_verify_errors(fake: FakeTwilio) -> None:
    verify = verify_for(fake)
    with pytest.raises(SMSDeliveryError) as caught:
        await verify.start(to="12345")
    assert (caught.value.code, caught.value.provider_code) == ("sms_number_refused", 60200)
    fake.fail_next(429, 60203, "Max send attempts reached")
    with pytest.raises(SMSDeliveryError) as caught:
        await verify.start(to=TO)
    assert caught.value.code == "sms_too_many"
    fake.fail_next(503, 20503, "Service unavailable")
    with pytest.raises(SMSDeliveryError) as caught:
        await verify.check(to=TO, code="123456")
    assert caught.value.code == "sms_unavailable"


def test_verify_only_settings_have_no_plain_sender(fake: FakeTwilio) -> None:
    settings = twilio_settings(twilio_from=None, twilio_verify_sid=VERIFY_SID)
    assert build_sms_sender(settings, http_client=fake.http_client()) is None
    assert isinstance(build_verify_service(settings, http_client=fake.http_client()), TwilioVerify)


def test_client_does_not_read_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    monkeypatch.setenv("TWILIO_REGION", "au1")
    client = twilio_client(twilio_settings())
    assert not client.edge and not client.region
    assert client.get_hostname("https://api.twilio.com/x") == "https://api.twilio.com/x"
