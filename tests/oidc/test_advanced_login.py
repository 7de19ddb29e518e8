"""The advanced level through the served app: password + authenticator app, password + SMS,
a recovery code, step-up from a basic session, and codes that are wrong, replayed or guessed."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from idp import eids
from idp.delivery.sms import read_outbox
from idp.web.i18n import LANGUAGE_COOKIE
from levels_of_assurance.authenticators import recovery_codes
from otp import authenticator_app, totp
from tests.oidc.conftest import Party, PartyFactory, audit_events, redirect_query, verify_audit
from tests.support.flows import form_value
from tests.support.server import ServedApp

ADVANCED, SUBSTANTIAL = "urn:eid:loa:advanced", "http://eidas.europa.eu/LoA/substantial"
SECRET = "correct horse battery staple"
PHONE = "+38640123456"


def enrol(served: ServedApp, person: eids.EID, *, app: bool = True) -> str | None:
    """Give ``person`` a password, a verified mobile number and (optionally) an authenticator app;
    returns the app's secret."""
    served.set_password(person, SECRET)
    key = served.settings.secret_key

    def unit(tx: object) -> str | None:
        eids.mark_verified(tx, eid_id=person.id, name="phone_number", method="sms")  # type: ignore[arg-type]
        if not app:
            return None
        started = authenticator_app.begin_enrolment(
            tx,
            eid_id=person.id,
            account_name=person.username,
            issuer_name="Test",
            sealing_key=key,
            now=time.time(),  # type: ignore[arg-type]
        )
        code = totp.code_at(secret=started.secret, for_time=time.time() - 30)
        authenticator_app.confirm_enrolment(
            tx,
            eid_id=person.id,
            enrolment_id=started.enrolment_id,
            code=code,
            sealing_key=key,
            now=time.time(),  # type: ignore[arg-type]
        )
        return started.secret

    return served.write(unit)


def advanced_party(party: PartyFactory, *, app: bool = True) -> tuple[Party, str | None]:
    p = party(attributes={"phone_number": PHONE, "given_name": "Ana"})
    assert p.eid is not None
    return p, enrol(p.served, p.eid, app=app)


def start(p: Party, **extra: str) -> tuple[httpx.Response, dict[str, str], str]:
    params, verifier = p.rp.authorize_params(**extra)
    started = p.rp.start(params)
    assert started.status_code == 303, started.text
    page = p.rp.browser.get(started.headers["location"])
    assert page.status_code == 200, page.text
    return page, params, verifier


def post_form(p: Party, page: httpx.Response, action: str, **fields: str) -> httpx.Response:
    data = {
        "csrf_token": form_value(page.text, "csrf_token"),
        "request_id": form_value(page.text, "request_id"),
    }
    return p.rp.browser.post(action, data={**data, **fields})


def follow(p: Party, response: httpx.Response) -> httpx.Response:
    assert response.status_code == 303, response.text[:2000]
    return p.rp.browser.get(response.headers["location"])


def password_step(p: Party, page: httpx.Response) -> httpx.Response:
    """Email and password on the sign-in page; returns the one-time code page."""
    code_page = follow(p, post_form(p, page, "/login/password", email=p.email, password=SECRET))
    assert "Enter your one-time code" in code_page.text, code_page.text[:2000]
    return code_page


def finish(p: Party, done: httpx.Response, params: dict[str, str], verifier: str) -> dict[str, object]:
    # the post that completes the login answers with the redirect back to the client
    assert done.status_code == 303, done.text[:2000]
    code = redirect_query(done, p.rp.redirect_uri)["code"]
    tokens = p.rp.exchange(code, verifier).json()
    return p.rp.verify_id_token(tokens["id_token"], nonce=params["nonce"])


def sms_code(served: ServedApp, to: str, *, after: int) -> str:
    directory = Path(served.settings.sms_backend.removeprefix("file:"))
    messages = [m for m in read_outbox(directory)[after:] if m.to == to]
    assert messages, "no SMS sent"
    # the newest with a code: a security notice to the same number may land after it
    codes = [found.group(1) for m in messages if (found := re.search(r"\b(\d{6})\b", m.body))]
    assert codes, messages[-1].body
    return codes[-1]


def sms_count(served: ServedApp) -> int:
    return len(read_outbox(Path(served.settings.sms_backend.removeprefix("file:"))))


def test_password_and_authenticator_app_reach_advanced(party: PartyFactory) -> None:
    p, secret = advanced_party(party)
    assert secret is not None
    page, params, verifier = start(p, acr_values=ADVANCED)
    assert 'action="/login/email"' not in page.text  # an email link cannot reach this level
    code_page = password_step(p, page)
    code = totp.code_at(secret=secret, for_time=time.time())
    claims = finish(p, post_form(p, code_page, "/login/code", method="totp", code=code), params, verifier)
    assert claims["acr"] == ADVANCED
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    # the same code once more, in a new login: refused as replayed
    page, _, _ = start(p, acr_values=ADVANCED, prompt="login")
    code_page = follow(p, post_form(p, page, "/login/password", password=SECRET))
    again = post_form(p, code_page, "/login/code", method="totp", code=code)
    assert again.status_code == 401 and "already used" in again.text
    # an app code is not sent: the advice is to wait for the app's next code, not "send a new one"
    assert "Wait for the app to show the next one." in again.text and "send a new one" not in again.text


def test_the_code_step_answers_with_the_redirect_and_audits_every_step(party: PartyFactory) -> None:
    p, secret = advanced_party(party)
    assert secret is not None and p.eid is not None
    page, params, _verifier = start(p, acr_values=ADVANCED)
    code_page = password_step(p, page)
    done = post_form(
        p, code_page, "/login/code", method="totp", code=totp.code_at(secret=secret, for_time=time.time())
    )
    # straight back to the client: no /authorize/resume in between, the session cookie set on it
    back = redirect_query(done, p.rp.redirect_uri)
    assert back["state"] == params["state"] and back["iss"] == p.served.settings.issuer and back["code"]
    assert "__Host-idp_session=" in done.headers["set-cookie"]
    kinds = [e["event_type"] for e in audit_events(p.served) if e["eid_id"] == p.eid.id]
    steps = [
        "login.factor_proven",  # the password
        "otp.totp.verified",
        "login.factor_proven",  # the code
        "session.authenticated",
        "authorization.code_issued",
    ]
    found = iter(kinds)
    assert all(step in found for step in steps), kinds  # in this order
    verify_audit(p.served)  # the chain holds


def test_the_token_carries_the_eidas_spelling_when_asked_so(party: PartyFactory) -> None:
    p, secret = advanced_party(party)
    assert secret is not None
    page, params, verifier = start(p, acr_values=SUBSTANTIAL)
    code_page = password_step(p, page)
    code = totp.code_at(secret=secret, for_time=time.time())
    claims = finish(p, post_form(p, code_page, "/login/code", method="totp", code=code), params, verifier)
    assert claims["acr"] == SUBSTANTIAL


def test_password_and_sms_code_reach_advanced(party: PartyFactory) -> None:
    p, _ = advanced_party(party, app=False)
    page, params, verifier = start(p, acr_values=ADVANCED)
    code_page = password_step(p, page)
    assert "We will send a six-digit code by SMS" in code_page.text
    before = sms_count(p.served)
    entry = follow(p, post_form(p, code_page, "/login/code/sms"))
    code = sms_code(p.served, PHONE, after=before)
    challenge = form_value(entry.text, "challenge_id")
    wrong = post_form(
        p, entry, "/login/code", method="sms", code=f"{(int(code) + 1) % 10**6:06d}", challenge_id=challenge
    )
    assert (
        wrong.status_code == 401 and "That code is not correct" in wrong.text and "4 more tries" in wrong.text
    )
    done = post_form(p, entry, "/login/code", method="sms", code=code, challenge_id=challenge)
    claims = finish(p, done, params, verifier)
    assert claims["acr"] == ADVANCED
    assert claims["amr"] == ["pwd", "sms", "mfa"]
    replay = post_form(p, entry, "/login/code", method="sms", code=code, challenge_id=challenge)
    assert replay.status_code == 401 and "already used" in replay.text


def _resend_form(page: httpx.Response, action: str) -> dict[str, str]:
    """The hidden fields of the page's "Send a new code" form, as a browser posts them."""
    start = page.text.index(f'<form class="inline-form" method="post" action="{action}">')
    form = page.text[start : page.text.index("</form>", start)]
    return dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', form))


def test_asking_for_a_new_sms_code_too_soon_keeps_the_code_already_sent(party: PartyFactory) -> None:
    p, _ = advanced_party(party, app=False)
    page, params, verifier = start(p, acr_values=ADVANCED)
    before = sms_count(p.served)
    entry = follow(p, post_form(p, password_step(p, page), "/login/code/sms"))
    code = sms_code(p.served, PHONE, after=before)
    challenge = form_value(entry.text, "challenge_id")
    resend = _resend_form(entry, "/login/code/sms")
    assert resend["challenge_id"] == challenge
    too_soon = p.rp.browser.post("/login/code/sms", data=resend)
    assert too_soon.status_code == 429 and "Retry-After" in too_soon.headers
    assert "You can ask for a new code in" in too_soon.text and "Too many attempts" not in too_soon.text
    # still the page to enter the code that was sent, for the same challenge, and no second SMS
    assert 'name="code"' in too_soon.text and form_value(too_soon.text, "challenge_id") == challenge
    assert sms_count(p.served) == before + 1
    done = post_form(p, too_soon, "/login/code", method="sms", code=code, challenge_id=challenge)
    assert finish(p, done, params, verifier)["acr"] == ADVANCED


def test_the_pages_and_the_sms_follow_the_relying_apps_ui_locales(party: PartyFactory) -> None:
    """OIDC Core §3.1.2.1 ``ui_locales``: a signing service knows its signer's language."""
    p, _ = advanced_party(party, app=False)  # the party's browser asks for English
    page, params, verifier = start(p, acr_values=ADVANCED, ui_locales="de hr")
    assert '<html lang="hr">' in page.text
    code_page = follow(p, post_form(p, page, "/login/password", email=p.email, password=SECRET))
    assert '<html lang="hr">' in code_page.text
    before = sms_count(p.served)
    entry = follow(p, post_form(p, code_page, "/login/code/sms"))
    assert '<html lang="hr">' in entry.text
    directory = Path(p.served.settings.sms_backend.removeprefix("file:"))
    text = read_outbox(directory)[before].body
    assert "je kod za prijavu" in text, text  # SMS_LOGIN_CODE in Croatian
    # the person's own choice of language beats the app's hint
    p.rp.browser.cookies.set(LANGUAGE_COOKIE, "sl")
    again = p.rp.browser.get("/login", params={"request_id": form_value(entry.text, "request_id")})
    assert '<html lang="sl">' in again.text
    code = sms_code(p.served, PHONE, after=before)
    challenge = form_value(entry.text, "challenge_id")
    done = post_form(p, entry, "/login/code", method="sms", code=code, challenge_id=challenge)
    assert finish(p, done, params, verifier)["acr"] == ADVANCED


def test_a_recovery_code_works_once(party: PartyFactory) -> None:
    p, _ = advanced_party(party)
    assert p.eid is not None
    eid_id = p.eid.id
    codes = p.served.write(lambda tx: recovery_codes.issue(tx, eid_id=eid_id, now=time.time()))
    page, params, verifier = start(p, acr_values=ADVANCED)
    code_page = password_step(p, page)
    recovery_page = p.rp.browser.get(
        f"/login?request_id={form_value(code_page.text, 'request_id')}&method=recovery"
    )
    assert "recovery codes you saved" in recovery_page.text
    claims = finish(
        p,
        post_form(p, recovery_page, "/login/code", method="recovery", code=codes[0].lower()),
        params,
        verifier,
    )
    assert claims["acr"] == ADVANCED
    page, _, _ = start(p, acr_values=ADVANCED, prompt="login")
    code_page = follow(p, post_form(p, page, "/login/password", password=SECRET))
    used = post_form(p, code_page, "/login/code", method="recovery", code=codes[0])
    assert used.status_code == 401 and "not valid or was already used" in used.text


def test_step_up_from_basic_asks_only_for_what_is_missing_and_keeps_the_session(party: PartyFactory) -> None:
    p, secret = advanced_party(party)
    assert secret is not None
    basic = p.tokens()  # email link
    basic_claims = p.rp.verify_id_token(basic["id_token"], nonce=basic["_nonce"])
    assert basic_claims["acr"] == "urn:eid:loa:basic"
    page, params, verifier = start(p, acr_values=ADVANCED)
    assert "Enter your password" in page.text and 'name="email"' not in page.text  # known: no address asked
    masked = re.search(r"Signing in as <strong[^>]*>([^<]+)</strong>", page.text)
    assert masked is not None and "***" in masked.group(1)
    # a wrong password first: the page still says whom the password is for
    wrong = post_form(p, page, "/login/password", password="not the password at all")
    assert wrong.status_code == 401 and 'name="email"' not in wrong.text
    assert f'Signing in as <strong class="nowrap-anywhere">{masked.group(1)}</strong>.' in wrong.text
    # only the password was asked for, so only the password can be wrong (not "email address or password")
    assert "The password is not correct." in wrong.text and "email address" not in wrong.text
    code_page = follow(p, post_form(p, wrong, "/login/password", password=SECRET))
    code = totp.code_at(secret=secret, for_time=time.time())
    claims = finish(p, post_form(p, code_page, "/login/code", method="totp", code=code), params, verifier)
    assert claims["acr"] == ADVANCED and claims["sid"] == basic_claims["sid"]
    # now the session is advanced: the next request at that level needs nobody
    query = redirect_query(p.authorize_again(acr_values=ADVANCED, prompt="none"), p.rp.redirect_uri)
    assert "code" in query


def test_max_age_forces_the_factors_again(party: PartyFactory) -> None:
    p, secret = advanced_party(party)
    assert secret is not None
    page, params, verifier = start(p, acr_values=ADVANCED)
    code_page = password_step(p, page)
    finish(
        p,
        post_form(
            p, code_page, "/login/code", method="totp", code=totp.code_at(secret=secret, for_time=time.time())
        ),
        params,
        verifier,
    )
    time.sleep(1.1)  # max_age counts whole seconds
    page, _, _ = start(p, acr_values=ADVANCED, max_age="0")
    assert "Enter your password" in page.text


def test_guessing_codes_is_slowed_then_locked(party: PartyFactory) -> None:
    p, _ = advanced_party(party)
    policy = p.served.state.throttle.policy
    page, _, _ = start(p, acr_values=ADVANCED)
    code_page = password_step(p, page)
    statuses = [
        post_form(p, code_page, "/login/code", method="totp", code="000000").status_code
        for _ in range(policy.free_per_account + 2)
    ]
    assert statuses[: policy.free_per_account + 1] == [401] * (policy.free_per_account + 1)
    assert statuses[-1] == 429
    failures = [
        e
        for e in audit_events(p.served)
        if e["tenant_id"] == p.tenant.id and e["event_type"] == "login.failed"
    ]
    assert len(failures) == policy.free_per_account + 1
    assert all("000000" not in str(e["details"]) for e in failures)  # codes never reach the trail


@pytest.mark.parametrize("code", ["", "12345", "abcdef", "1" * 60, "١٢٣٤٥٦"])
def test_malformed_codes_are_a_clear_error_not_a_crash(party: PartyFactory, code: str) -> None:
    p, _ = advanced_party(party)
    page, _, _ = start(p, acr_values=ADVANCED)
    code_page = password_step(p, page)
    refused = post_form(p, code_page, "/login/code", method="totp", code=code)
    assert refused.status_code == 401
    assert "six digits" in refused.text or "not correct" in refused.text


def test_an_eid_without_second_factor_cannot_reach_advanced(party: PartyFactory) -> None:
    p = party()
    assert p.eid is not None
    p.served.set_password(p.eid, SECRET)
    page, _, _ = start(p, acr_values=ADVANCED)
    stuck = follow(p, post_form(p, page, "/login/password", email=p.email, password=SECRET))
    assert "not set up for this sign-in" in stuck.text
