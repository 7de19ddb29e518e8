"""Password reset through the served app: the mailed link, a one-time code, a new password; the
old sessions and tokens gone; no account enumeration; no reset without a second factor."""

from __future__ import annotations

import html
import re
import time
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
import sqlalchemy
from sqlalchemy import false

from idp import account, lockout
from idp.web import account_login
from levels_of_assurance.authenticators import password, recovery_codes
from otp import totp
from tests.oidc.conftest import Party, PartyFactory, audit_events, outbox_names, wait_for_mail
from tests.oidc.test_advanced_login import (
    ADVANCED,
    PHONE,
    SECRET,
    advanced_party,
    enrol,
    finish,
    follow,
    password_step,
    post_form,
    sms_code,
    sms_count,
    start,
)
from tests.support.flows import form_value
from tests.support.pages import as_read

NEW_SECRET = "velvet harbour lantern seven"


def reset_link(mail: EmailMessage) -> str:
    body = mail.get_body(("plain",))
    assert body is not None
    found = re.search(r"https://\S+/reset/verify\?token=\S+", body.get_content())
    assert found, body.get_content()
    return found.group(0)


def ask_for_link(p: Party, email: str | None = None) -> tuple[httpx.Response, set[str]]:
    """From the sign-in page's "Forgot your password?" to the "check your email" page."""
    page, _, _ = start(p, acr_values=ADVANCED, prompt="login")
    assert "Forgot your password?" in page.text
    form = p.rp.browser.get(f"/reset?request_id={form_value(page.text, 'request_id')}")
    assert form.status_code == 200
    seen = outbox_names(p.served)
    sent = post_form(p, form, "/reset", email=email or p.email)
    assert sent.status_code == 303, sent.text
    return p.rp.browser.get(sent.headers["location"]), seen


def events_of(p: Party, prefix: str) -> list[dict[str, Any]]:
    return [
        e
        for e in audit_events(p.served)
        if e["tenant_id"] == p.tenant.id and e["event_type"].startswith(prefix)
    ]


def test_reset_with_the_authenticator_app_ends_the_old_sessions(party: PartyFactory) -> None:
    p, secret = advanced_party(party)
    assert secret is not None
    page, params, verifier = start(p, acr_values=ADVANCED)
    code_page = password_step(p, page)
    code = totp.code_at(secret=secret, for_time=time.time())
    claims = finish(p, post_form(p, code_page, "/login/code", method="totp", code=code), params, verifier)
    old_tokens = p.tokens()  # a second login of the same session: tokens to see revoked
    assert claims["acr"] == ADVANCED

    sent, seen = ask_for_link(p)
    assert "Check your email" in sent.text and "Check your spam folder" in sent.text
    # a way back to try another address, while the sign-in lasts
    back = re.search(r'href="(/reset\?request_id=[^"]+)"', sent.text)
    assert back is not None and p.rp.browser.get(back.group(1)).status_code == 200
    link = reset_link(wait_for_mail(p.served, p.email, seen=seen))
    entry = p.rp.browser.get(link)
    assert entry.status_code == 200 and "authenticator app" in entry.text
    wrong = post_form_token(p, entry, "/reset/code", method="totp", code="000000")
    assert wrong.status_code == 401 and "not correct" in wrong.text
    good = post_form_token(
        p, entry, "/reset/code", method="totp", code=totp.code_at(secret=secret, for_time=time.time() + 30)
    )
    assert good.status_code == 303 and good.headers["location"].startswith("/reset/password?request_id=")
    # the link is used up
    assert p.rp.browser.get(link).status_code == 400
    form = p.rp.browser.get(good.headers["location"])
    weak = post_form(p, form, "/reset/password", password="12345678", password_repeat="12345678")
    assert weak.status_code == 400 and "repeated or sequential" in weak.text
    done = post_form(p, form, "/reset/password", password=NEW_SECRET, password_repeat=NEW_SECRET)
    assert done.status_code == 200 and "Your password was changed" in done.text
    again = post_form(p, form, "/reset/password", password=NEW_SECRET, password_repeat=NEW_SECRET)
    assert again.status_code == 400  # single use
    # sessions and tokens of the eID are gone; the old password is dead, the new one works
    assert p.introspect(old_tokens["access_token"]).json() == {"active": False}
    page, _, _ = start(p, acr_values=ADVANCED)
    assert 'name="email"' in page.text  # no session: nobody is known
    assert post_form(p, page, "/login/password", email=p.email, password=SECRET).status_code == 401
    page, _, _ = start(p, acr_values=ADVANCED)
    assert (
        "one-time code"
        in follow(p, post_form(p, page, "/login/password", email=p.email, password=NEW_SECRET)).text
    )
    assert [e["event_type"] for e in events_of(p, "password.")] == ["password.set", "password.reset"]
    assert events_of(p, "eid.signed_out_everywhere")[0]["details"]["sessions"] == 1


def post_form_token(p: Party, page: httpx.Response, action: str, **fields: str) -> httpx.Response:
    data = {"csrf_token": form_value(page.text, "csrf_token"), "token": form_value(page.text, "token")}
    return p.rp.browser.post(action, data={**data, **fields})


def test_reset_with_an_sms_code(party: PartyFactory) -> None:
    p, _ = advanced_party(party, app=False)
    _, seen = ask_for_link(p)
    entry = p.rp.browser.get(reset_link(wait_for_mail(p.served, p.email, seen=seen)))
    assert "We will send a six-digit code by SMS" in entry.text
    before = sms_count(p.served)
    to_code = post_form_token(p, entry, "/reset/sms")
    assert to_code.status_code == 303
    code_page = p.rp.browser.get(to_code.headers["location"])
    code = sms_code(p.served, PHONE, after=before)
    # a new code can be asked for from the code page, after the same cooldown as elsewhere
    assert 'action="/reset/sms"' in code_page.text and "Send a new code" in code_page.text
    challenge = form_value(code_page.text, "challenge_id")
    too_soon = post_form_token(p, code_page, "/reset/sms", challenge_id=challenge)
    assert too_soon.status_code == 429 and sms_count(p.served) == before + 1
    # still where the code already sent is typed
    assert 'name="code"' in too_soon.text and form_value(too_soon.text, "challenge_id") == challenge
    done = p.rp.browser.post(
        "/reset/code",
        data={
            "csrf_token": form_value(code_page.text, "csrf_token"),
            "token": form_value(code_page.text, "token"),
            "challenge_id": form_value(code_page.text, "challenge_id"),
            "method": "sms",
            "code": code,
        },
    )
    assert done.status_code == 303 and done.headers["location"].startswith("/reset/password")


def test_reset_with_a_recovery_code(party: PartyFactory) -> None:
    p = party()
    assert p.eid is not None
    eid_id = p.eid.id
    codes = p.served.write(lambda tx: recovery_codes.issue(tx, eid_id=eid_id, now=time.time()))
    _, seen = ask_for_link(p)
    link = reset_link(wait_for_mail(p.served, p.email, seen=seen))
    entry = p.rp.browser.get(link + "&method=recovery")
    done = post_form_token(p, entry, "/reset/code", method="recovery", code=codes[0])
    assert done.status_code == 303
    form = p.rp.browser.get(done.headers["location"])
    assert (
        post_form(p, form, "/reset/password", password=NEW_SECRET, password_repeat=NEW_SECRET).status_code
        == 200
    )


def test_a_mistyped_recovery_code_is_told_what_a_recovery_code_looks_like(party: PartyFactory) -> None:
    # a recovery code of the wrong length was answered "six digits for an app or SMS code", on the
    # page that asks for a recovery code (ten letters and digits)
    p = party()
    assert p.eid is not None
    eid_id = p.eid.id
    p.served.write(lambda tx: recovery_codes.issue(tx, eid_id=eid_id, now=time.time()))
    _, seen = ask_for_link(p)
    link = reset_link(wait_for_mail(p.served, p.email, seen=seen))
    p.rp.browser.headers["Accept-Language"] = "sr-Latn-RS"
    entry = p.rp.browser.get(link + "&method=recovery")
    answer = post_form_token(p, entry, "/reset/code", method="recovery", code="ABCD-1234")
    assert answer.status_code == 401, answer.text
    assert "Unesite kod za oporavak onako kako je prikazan: deset slova i cifara." in as_read(answer.text)
    assert "šest cifara" not in answer.text


@pytest.mark.parametrize("change", ["blocked", "locked"])
def test_no_new_password_for_an_eid_blocked_or_locked_after_the_code_step(
    party: PartyFactory, change: str
) -> None:
    """The owner blocks the eID (suspected misuse), or wrong codes lock it, while someone is on the
    reset's last page: the new password is not set."""
    p, secret = advanced_party(party)
    assert secret is not None and p.eid is not None
    _sent, seen = ask_for_link(p)
    entry = p.rp.browser.get(reset_link(wait_for_mail(p.served, p.email, seen=seen)))
    code = totp.code_at(secret=secret, for_time=time.time())
    good = post_form_token(p, entry, "/reset/code", method="totp", code=code)
    assert good.status_code == 303, good.text[:2000]
    form = p.rp.browser.get(good.headers["location"])
    eid_id, tenant_id = p.eid.id, p.tenant.id
    before = p.served.run(p.served.state.db.read(lambda conn: password.stored_hash(conn, eid_id=eid_id)))
    if change == "blocked":
        p.served.write(lambda tx: account.block(tx, eid_id=eid_id))
    else:
        p.served.write(
            lambda tx: lockout.lock(tx, eid_id=eid_id, tenant_id=tenant_id, reason="code_failures")
        )
    done = post_form(p, form, "/reset/password", password=NEW_SECRET, password_repeat=NEW_SECRET)
    assert done.status_code == 400 and "Password changed" not in done.text
    after = p.served.run(p.served.state.db.read(lambda conn: password.stored_hash(conn, eid_id=eid_id)))
    assert after == before
    assert not events_of(p, "password.reset")


def test_without_a_second_factor_the_reset_is_refused_clearly(party: PartyFactory) -> None:
    p = party()
    assert p.eid is not None
    p.served.set_password(p.eid, SECRET)
    _, seen = ask_for_link(p)
    entry = p.rp.browser.get(reset_link(wait_for_mail(p.served, p.email, seen=seen)))
    assert entry.status_code == 409 and "cannot be reset here" in entry.text
    assert "administrator can set a new password" in entry.text
    forced = p.rp.browser.post(
        "/reset/code",
        data={
            "csrf_token": form_value(entry.text, "csrf_token") if "csrf_token" in entry.text else "",
            "token": "x",
        },
    )
    assert forced.status_code in (400, 403)


def test_an_eid_without_a_password_is_told_an_invitation_sets_one_up(party: PartyFactory) -> None:
    """ "Forgot your password?" from an eID that signs in by email link alone: the emailed link
    proved the address, so the page may say there is no password, and what does set one up."""
    p = party()
    _, seen = ask_for_link(p)
    entry = p.rp.browser.get(reset_link(wait_for_mail(p.served, p.email, seen=seen)))
    assert entry.status_code == 409 and "Your eID has no password yet" in entry.text
    assert "for an invitation: it sets up a password and one-time codes" in entry.text
    assert "cannot be reset here" not in entry.text


def test_unknown_addresses_get_the_same_answer_and_no_mail(party: PartyFactory) -> None:
    p, _ = advanced_party(party)
    known, _ = ask_for_link(p)
    unknown, seen = ask_for_link(p, email="nobody@example.com")
    assert known.status_code == unknown.status_code == 200

    def masked(text: str) -> str:  # the masked address, and each ask's own sign-in request
        return re.sub(r"request_id=[\w-]+", "", re.sub(r"[an](\*\*\*|%2A%2A%2A)", "", text))

    assert masked(known.text) == masked(unknown.text)
    time.sleep(0.2)  # mail goes out in the background; give a wrong one the chance to appear
    assert not [n for n in outbox_names(p.served) - seen if "nobody" in (p.served.outbox / n).read_text()]
    assert events_of(p, "password_reset.refused")[-1]["details"]["reason"] == "unknown_address"


def test_a_reset_link_is_not_a_sign_in_link_nor_the_other_way_round(party: PartyFactory) -> None:
    p, _ = advanced_party(party)
    _, seen = ask_for_link(p)
    link = reset_link(wait_for_mail(p.served, p.email, seen=seen))
    token = link.split("token=")[1]
    as_login = p.rp.browser.get(f"/login/email/verify?token={token}")
    assert as_login.status_code == 400


def test_the_link_works_only_in_the_browser_that_asked(party: PartyFactory) -> None:
    p, _ = advanced_party(party)
    _, seen = ask_for_link(p)
    link = reset_link(wait_for_mail(p.served, p.email, seen=seen))
    with p.served.client() as other:
        other.headers["Accept-Language"] = "en"
        refused = other.get(link)
        assert refused.status_code == 400
        # a link that was made leads on to the sign-in of its tenant, where a new one can be asked
        way_on = re.search(r'<a class="button" href="(/account\?tenant=[^"]+)"', refused.text)
        assert way_on, refused.text
        sign_in = other.get(html.unescape(way_on.group(1)), follow_redirects=True)
        assert sign_in.status_code == 200 and "Forgot your password?" in sign_in.text
    garbled = p.rp.browser.get(link + "x")
    assert garbled.status_code == 400 and "/account?tenant=" not in garbled.text  # nothing to go on with


@pytest.mark.parametrize(
    "email", ["", "not-an-address", "a@b", "x" * 400 + "@example.com", "ana@example.com\x00"]
)
def test_hostile_addresses_are_a_clear_error(party: PartyFactory, email: str) -> None:
    p = party()
    page, _, _ = start(p, acr_values=ADVANCED)
    form = p.rp.browser.get(f"/reset?request_id={form_value(page.text, 'request_id')}")
    refused = post_form(p, form, "/reset", email=email)
    assert refused.status_code == 400 and "valid email address" in refused.text


def test_reset_forms_refuse_a_missing_csrf_token(party: PartyFactory) -> None:
    p = party()
    start(p, acr_values=ADVANCED)
    for path in ("/reset", "/reset/sms", "/reset/code", "/reset/password"):
        assert p.rp.browser.post(path, data={"csrf_token": "forged"}).status_code == 403


def test_garbage_tokens_and_requests_are_refused(party: PartyFactory) -> None:
    p = party()
    for url in (
        "/reset/verify?token=" + "x" * 500,
        "/reset/verify",
        "/reset/password?request_id=nope",
        "/reset?request_id=%00",
    ):
        response = p.rp.browser.get(url)
        assert response.status_code == 400, url


def lookup_misses_the_racing_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The internal client's look-up finds nothing, as in a transaction that looked before a
    racing first use (another tab's account login or reset) committed the client."""

    def select(*columns: Any) -> Any:
        return sqlalchemy.select(*columns).where(false())

    monkeypatch.setattr(account_login, "select", select)


def internal_clients_created(p: Party) -> list[dict[str, Any]]:
    return [e for e in events_of(p, "client.created") if e["details"].get("type") == "internal_account"]


def test_the_first_reset_of_a_tenant_survives_a_racing_first_use(
    party: PartyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    p, secret = advanced_party(party)
    assert secret is not None
    _, seen = ask_for_link(p)
    entry = p.rp.browser.get(reset_link(wait_for_mail(p.served, p.email, seen=seen)))
    tenant = p.tenant
    p.served.write(lambda tx: account_login.ensure_client(tx, tenant))  # the racing first use
    lookup_misses_the_racing_commit(monkeypatch)
    code = totp.code_at(secret=secret, for_time=time.time())
    good = post_form_token(p, entry, "/reset/code", method="totp", code=code)
    assert good.status_code == 303, good.text[:2000]
    assert good.headers["location"].startswith("/reset/password?request_id=")
    form = p.rp.browser.get(good.headers["location"])
    done = post_form(p, form, "/reset/password", password=NEW_SECRET, password_repeat=NEW_SECRET)
    assert done.status_code == 200 and "Your password was changed" in done.text
    assert len(internal_clients_created(p)) == 1


def test_the_first_account_login_of_a_tenant_survives_a_racing_first_use(
    party: PartyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = party()
    tenant = p.tenant
    p.served.write(lambda tx: account_login.ensure_client(tx, tenant))
    lookup_misses_the_racing_commit(monkeypatch)
    to_login = p.rp.browser.get(f"/account?tenant={p.tenant.slug}")
    assert to_login.status_code == 303, to_login.text[:2000]
    assert to_login.headers["location"].startswith("/login?request_id=")
    assert len(internal_clients_created(p)) == 1


def _switcher_target(page: httpx.Response) -> str:
    """Where the page's language switcher comes back to (its hidden ``next``)."""
    found = re.search(r'<input type="hidden" name="next" value="([^"]*)"', page.text)
    assert found, page.text[:2000]
    return html.unescape(found.group(1))


def test_every_step_is_in_the_tenant_s_branding_and_a_language_switch_stays_on_it(
    party: PartyFactory,
) -> None:
    """After the request step the pages showed the default branding (another name than the one the
    person signed in to), and a language switch on a form's answer (a wrong code, a refused
    password, the last page) went to the home page: the reset was lost, and with it the way on."""
    tenant = party().served.tenant(branding={"name": "Acme Sign"})
    p = party(tenant=tenant, email="mia@example.com", attributes={"phone_number": PHONE})
    assert p.eid is not None
    secret = enrol(p.served, p.eid)
    assert secret is not None
    page, _, _ = start(p, acr_values=ADVANCED, prompt="login")
    form = p.rp.browser.get(f"/reset?request_id={form_value(page.text, 'request_id')}")
    bad = post_form(p, form, "/reset", email="mia@")
    assert bad.status_code == 400 and "Acme Sign" in bad.text
    assert p.rp.browser.get(_switcher_target(bad)).text.count('name="email"') == 1
    seen = outbox_names(p.served)
    assert post_form(p, form, "/reset", email=p.email).status_code == 303
    entry = p.rp.browser.get(reset_link(wait_for_mail(p.served, p.email, seen=seen)))
    assert "Acme Sign" in entry.text
    wrong = post_form_token(p, entry, "/reset/code", method="totp", code="000000")
    assert wrong.status_code == 401 and "Acme Sign" in wrong.text
    again = p.rp.browser.get(_switcher_target(wrong))
    assert again.status_code == 200 and 'action="/reset/code"' in again.text
    # an SMS code already sent stays the one to enter
    sent = follow(p, post_form_token(p, entry, "/reset/sms"))
    wrong = post_form_token(
        p,
        sent,
        "/reset/code",
        method="sms",
        code="000000",
        challenge_id=form_value(sent.text, "challenge_id"),
    )
    assert wrong.status_code == 401
    back = p.rp.browser.get(_switcher_target(wrong))
    assert form_value(back.text, "challenge_id") == form_value(sent.text, "challenge_id")
    good = post_form_token(
        p, entry, "/reset/code", method="totp", code=totp.code_at(secret=secret, for_time=time.time() + 30)
    )
    choose = p.rp.browser.get(good.headers["location"])
    assert "Acme Sign" in choose.text
    mismatch = post_form(p, choose, "/reset/password", password=NEW_SECRET, password_repeat="other")
    assert mismatch.status_code == 400 and "Acme Sign" in mismatch.text
    assert 'action="/reset/password"' in p.rp.browser.get(_switcher_target(mismatch)).text
    done = post_form(p, choose, "/reset/password", password=NEW_SECRET, password_repeat=NEW_SECRET)
    assert done.status_code == 200 and "Acme Sign" in done.text
    assert _switcher_target(done).startswith("/login?request_id=")
    signing_in = p.rp.browser.get(_switcher_target(done))
    assert signing_in.status_code == 200 and 'action="/login/password"' in signing_in.text
