"""The one-time code step with the real Twilio SDK, pointed at a local fake of Twilio's API, and the
SMS notice to a replaced mobile number when Twilio refuses it."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from idp import eids
from otp.phone import mask_phone
from tests.oidc.conftest import PartyFactory, audit_events, parties, redirect_query
from tests.oidc.test_account import new_number, post, signed_in_advanced
from tests.oidc.test_advanced_login import (
    ADVANCED,
    PHONE,
    advanced_party,
    follow,
    password_step,
    post_form,
    start,
)
from tests.support.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, fake_twilio
from tests.support.server import ServedApp, serve, settings_factory_for

FROM = "+15005550006"


@pytest.fixture(scope="module")
def twilio() -> Iterator[FakeTwilio]:
    with fake_twilio() as fake:
        yield fake


@pytest.fixture(scope="module")
def twilio_app(
    twilio: FakeTwilio,
    tmp_path_factory: pytest.TempPathFactory,
    sqlite_template: Path,
    tls: tuple[Path, Path],
) -> Iterator[ServedApp]:
    directory = tmp_path_factory.mktemp("twilio")
    shutil.copy(sqlite_template, directory / "idp.db")
    settings = settings_factory_for(f"sqlite+aiosqlite:///{directory / 'idp.db'}", directory)
    with serve(
        settings,
        tls=tls,
        outbox=directory / "mail",
        sms_http_client=twilio.http_client(),
        sms_backend="twilio",
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_from=FROM,
    ) as app:
        yield app


@pytest.fixture
def party(twilio_app: ServedApp) -> Iterator[PartyFactory]:
    with parties(twilio_app) as make:
        yield make


def test_the_code_goes_out_through_twilio_and_signs_in(party: PartyFactory, twilio: FakeTwilio) -> None:
    p, _ = advanced_party(party, app=False)
    page, _, _ = start(p, acr_values=ADVANCED)
    code_page = password_step(p, page)
    before = len(twilio.requests)
    entry = follow(p, post_form(p, code_page, "/login/code/sms"))
    sent = twilio.requests[before:]
    assert len(sent) == 1
    assert sent[0].form["To"] == PHONE and sent[0].form["From"] == FROM
    code = re.search(r"\b(\d{6})\b", sent[0].form["Body"])
    assert code is not None
    done = post_form(
        p, entry, "/login/code", method="sms", code=code.group(1), challenge_id=entry_challenge(entry.text)
    )
    assert done.status_code == 303 and "code" in redirect_query(done, p.rp.redirect_uri)


def entry_challenge(html: str) -> str:
    found = re.search(r'name="challenge_id" value="([^"]+)"', html)
    assert found
    return found.group(1)


def test_a_twilio_refusal_is_a_clear_message_not_a_500(party: PartyFactory, twilio: FakeTwilio) -> None:
    p, _ = advanced_party(party, app=False)
    page, _, _ = start(p, acr_values=ADVANCED)
    code_page = password_step(p, page)
    twilio.fail_next(400, 21211, "The 'To' number +38640123456 is not a valid phone number.")
    refused = post_form(p, code_page, "/login/code/sms")
    assert refused.status_code == 502
    assert "We could not send the SMS" in refused.text
    twilio.fail_next(503, 20500, "Internal Server Error")
    outage = post_form(p, code_page, "/login/code/sms")
    assert outage.status_code == 502 and "We could not send the SMS" in outage.text


def test_a_phone_change_stands_when_twilio_refuses_the_old_number_s_notice(
    party: PartyFactory, twilio: FakeTwilio
) -> None:
    p, _ = signed_in_advanced(party)  # its number: PHONE
    assert p.eid is not None
    eid_id, number = p.eid.id, new_number()
    before = len(twilio.requests)
    sent = post(p, p.rp.browser.get("/account/phone"), "/account/phone/send", phone=number)
    assert sent.status_code == 303, sent.text[:500]
    (code_sms,) = [r for r in twilio.requests[before:] if r.form.get("To") == number]
    code = re.search(r"\b(\d{6})\b", code_sms.form["Body"])
    assert code is not None
    entry = p.rp.browser.get(sent.headers["location"])
    twilio.fail_next(503, 20500, "Internal Server Error")  # the notice is the next request
    done = post(p, entry, "/account/phone", challenge_id=entry_challenge(entry.text), code=code.group(1))
    assert done.status_code == 303 and done.headers["location"] == "/account?done=phone"

    deadline = time.monotonic() + 5
    while len(_notices(p.served, eid_id, "security_notice.")) < 2:  # the mail's and the SMS's
        assert time.monotonic() < deadline, "the notices were not audited"
        time.sleep(0.02)
    failed = _notices(p.served, eid_id, "security_notice.delivery_failed")
    assert [e["details"] for e in failed] == [
        {
            "notice": "phone_changed",
            "channel": "sms",
            "phone": mask_phone(PHONE),
            "error": "Text messages cannot be sent right now. Please try again in a few minutes. "
            "(provider error 20500)",
        }
    ]
    assert failed[0]["success"] is False
    assert [e["details"] for e in _notices(p.served, eid_id, "security_notice.sent")] == [
        {"notice": "phone_changed"}  # the mail
    ]
    sent_to = [r.form.get("To") for r in twilio.requests[before:]]
    assert sent_to.count(PHONE) == 1 and sent_to.count(number) == 1  # one try; the new one's code only
    person = p.served.run(p.served.state.db.read(lambda conn: eids.get(conn, eid_id)))
    assert person.value("phone_number") == number


def _notices(served: ServedApp, eid_id: str, prefix: str) -> list[dict[str, Any]]:
    return [e for e in audit_events(served) if e["eid_id"] == eid_id and e["event_type"].startswith(prefix)]
