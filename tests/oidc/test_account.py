"""The account page through the served app: signing in to it, the fresh advanced login its changes
need (with step-up), and each change: password, mobile number, authenticator app, recovery codes,
passkeys, and blocking the eID."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from idp import audit, eids, sessions
from idp.storage import tables
from idp.storage.database import Database
from idp.web.browser import csrf_token
from levels_of_assurance.authenticators import recovery_codes
from otp import totp
from otp.phone import display_phone
from otp.sms import Checked, PhoneVerifier
from tests.oidc.conftest import (
    Party,
    PartyFactory,
    audit_events,
    link_in,
    outbox_names,
    redirect_query,
    wait_for_mail,
)
from tests.oidc.test_advanced_login import (
    ADVANCED,
    PHONE,
    SECRET,
    advanced_party,
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
from tests.support.soft_authenticator import SoftPasskey

NEW_SECRET = "purple elephant dancing quietly"


def signed_in_advanced(party: PartyFactory) -> tuple[Party, str]:
    """A person with password, phone and app, signed in at the advanced level just now."""
    p, secret = advanced_party(party)
    assert secret is not None
    page, params, verifier = start(p, acr_values=ADVANCED)
    code_page = password_step(p, page)
    code = totp.code_at(secret=secret, for_time=time.time())
    finish(p, post_form(p, code_page, "/login/code", method="totp", code=code), params, verifier)
    return p, secret


def csrf(page: httpx.Response) -> str:
    return form_value(page.text, "csrf_token")


def post(p: Party, page: httpx.Response, path: str, **fields: str) -> httpx.Response:
    return p.rp.browser.post(path, data={"csrf_token": csrf(page), **fields})


def events_of(p: Party, prefix: str) -> list[dict[str, Any]]:
    assert p.eid is not None
    return [
        e for e in audit_events(p.served) if e["eid_id"] == p.eid.id and e["event_type"].startswith(prefix)
    ]


def age_session(p: Party, seconds: float) -> None:
    """Make every factor of the person's sessions ``seconds`` older (instead of waiting)."""
    assert p.eid is not None
    eid_id = p.eid.id

    def unit(tx: Any) -> None:
        s = tables.sso_sessions.c
        for row in tx.conn.execute(select(s.sid, s.factors).where(s.eid_id == eid_id)).all():
            factors = [{**f, "at": f["at"] - seconds} for f in row.factors or []]
            tx.conn.execute(update(tables.sso_sessions).where(s.sid == row.sid).values(factors=factors))

    p.served.write(unit)


def new_number() -> str:
    return f"+38641{secrets.randbelow(10**6):06d}"


# -- the page and signing in to it ---------------------------------------------------------------


def test_without_a_session_the_page_says_where_to_sign_in(party: PartyFactory) -> None:
    p = party()
    page = p.rp.browser.get("/account")
    assert page.status_code == 200 and "open the account page from the link" in page.text
    for ref in ("no-such-tenant", "%00", "x" * 300, "%3Cscript%3E"):
        unknown = p.rp.browser.get(f"/account?tenant={ref}")
        assert unknown.status_code == 404 and "not valid" in unknown.text
    assert p.rp.browser.get("/login?request_id=%00").status_code == 400


def test_signing_in_to_the_account_names_no_internal_client(party: PartyFactory) -> None:
    # the account's sign-in serves no app: its internal client's stored name ("eID account", in
    # English) read "Prijava na uslugu eID account" on a Serbian page and in the mail's subject
    p = party()
    p.rp.browser.headers["Accept-Language"] = "sr-Latn-RS"
    to_login = p.rp.browser.get(f"/account?tenant={p.tenant.slug}")
    page = p.rp.browser.get(to_login.headers["location"])
    assert page.status_code == 200
    assert re.search(r"<h1>\s*Prijava\s*</h1>", page.text), page.text
    assert "eID account" not in page.text
    seen = outbox_names(p.served)
    sent = post(p, page, "/login/email", request_id=form_value(page.text, "request_id"), email=p.email)
    assert sent.status_code == 303, sent.text
    mail = wait_for_mail(p.served, p.email, seen=seen)
    assert mail["Subject"] == "Vaš link za prijavu"
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "neko je sa ovom adresom e-pošte zatražio link za prijavu." in text
    assert "eID account" not in mail.as_string()
    confirm = p.rp.browser.get(link_in(mail))
    assert confirm.status_code == 200 and "eID account" not in confirm.text
    assert "Prijavljujete se na uslugu" not in confirm.text


def test_signing_in_to_the_account_by_email_link_comes_back_to_the_page(party: PartyFactory) -> None:
    p = party(attributes={"given_name": "Ana"})
    to_login = p.rp.browser.get(f"/account?tenant={p.tenant.slug}")
    assert to_login.status_code == 303 and to_login.headers["location"].startswith("/login?request_id=")
    back = p.sign_in(to_login)
    assert back.status_code == 303 and back.headers["location"] == "/account"
    page = p.rp.browser.get("/account")
    assert page.status_code == 200
    assert "Your eID account" in page.text and "Ana" in page.text and p.email in page.text
    assert "Recent security events" in page.text and 'data-event="session.authenticated"' in page.text
    # the internal client that anchors the account login cannot be used by an app
    refused = p.rp.browser.get(
        "/authorize",
        params={"client_id": f"idp-account-{p.tenant.id}", "response_type": "code", "scope": "openid"},
    )
    assert refused.status_code == 400


def test_the_page_shows_the_methods_and_how_each_detail_was_confirmed(party: PartyFactory) -> None:
    p, _ = signed_in_advanced(party)
    page = p.rp.browser.get("/account")
    assert page.status_code == 200
    # the person's own details show their number as people write it; the methods, masked
    assert ">+386 40 123 456 " in page.text and "+38640123456" not in page.text
    assert "+386 •• ••• 456" in page.text
    assert "confirmed by an SMS code" in page.text


def test_moments_are_written_in_utc_for_a_page_without_scripts(party: PartyFactory) -> None:
    """Each moment is written in UTC and says so, and its datetime is the instant with its Z, to the
    second (HTML takes three digits of a second at most; the trail keeps six): a browser reading a
    time without an offset takes it for local time. static/local-time.js, which the page loads as a
    file of its own (the Content-Security-Policy runs no inline script), shows it on the reader's
    clock (tests/e2e/test_browser_account.py)."""
    p, _ = signed_in_advanced(party)
    person = p.eid
    assert person is not None

    def unit(tx: Any) -> None:
        tx.now = datetime(2026, 12, 7, 23, 30, 5, 250_000, tzinfo=UTC).timestamp()
        audit.record(tx, audit.AuditEvent("password.changed", tenant_id=person.tenant_id, eid_id=person.id))
        tx.now = datetime(2026, 7, 31, 22, 30, tzinfo=UTC).timestamp()
        eids.mark_verified(tx, eid_id=person.id, name="phone_number", method="sms")

    p.served.write(unit)
    page = p.rp.browser.get("/account")
    assert page.status_code == 200
    assert (
        '<li data-event="password.changed"><time class="nowrap" datetime="2026-12-07T23:30:05Z"'
        ' data-local-time="datetime">2026-12-07 23:30 UTC</time>' in page.text
    )
    # the day a detail was confirmed: in UTC without a script
    assert (
        'confirmed by an SMS code <time class="nowrap" datetime="2026-07-31T22:30:00Z"'
        ' data-local-time="date">2026-07-31</time>' in page.text
    )
    assert re.findall(r"<script\b[^>]*>", page.text) == ['<script src="/static/local-time.js">']
    assert "script-src 'self';" in page.headers["content-security-policy"]
    script = p.rp.browser.get("/static/local-time.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "Intl.DateTimeFormat" in script.text


def _record_events(p: Any, events: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """Write audit events of the signed-in person: (event type, the event's other fields)."""
    person = p.eid
    assert person is not None

    def unit(tx: Any) -> None:
        for event_type, fields in events:
            event = audit.AuditEvent(
                event_type, tenant_id=person.tenant_id, eid_id=person.id, username=person.username, **fields
            )
            audit.record(tx, event)

    p.served.write(unit)


def test_at_most_ten_events_and_only_security_events_not_every_token_of_every_app(
    party: PartyFactory,
) -> None:
    p, _ = signed_in_advanced(party)
    tokens = ("token.issued", "token.revoked", "videoid.step_passed", "invitation.opened")
    # more than ten security events, and the app's refreshes last
    _record_events(p, [(t, {}) for t in ("eid.created", *["login.failed"] * 8, "eid.proofed", *tokens * 5)])
    page = p.rp.browser.get("/account")
    assert page.status_code == 200 and page.text.count('<li data-event="') == 10
    assert not any(f'data-event="{t}"' in page.text for t in tokens)
    assert (
        "Identity verified by video identification" in page.text and 'data-event="eid.proofed"' in page.text
    )
    assert page.text.count("Failed sign-in attempt") == 8 and "Other event" not in page.text


def test_each_security_event_is_told_in_words(party: PartyFactory) -> None:
    p, _ = signed_in_advanced(party)
    shown = {
        "otp.totp.verified": "Code from the authenticator app used",
        "otp.sms.failed": "Wrong SMS code",
        "passkey.removed": "Passkey removed",
        "recovery_codes.issued": "New recovery codes made",
        "eid.blocked_by_owner": "You blocked the eID",
        "password.reset": "Password reset",
    }
    # steps that another event already tells: they would only push real ones out of the ten
    hidden = ("otp.sms.issued", "otp.totp.enrolment_started", "password.rehashed")

    _record_events(
        p, [(t, {"client_ip": "192.0.2.7", "success": t != "otp.sms.failed"}) for t in (*shown, *hidden)]
    )
    page = p.rp.browser.get("/account").text
    for event_type, words in shown.items():
        assert f'data-event="{event_type}"' in page and words in page
    assert not any(f'data-event="{t}"' in page for t in hidden)
    assert "(192.0.2.7, refused)" in page  # the wrong code, from where
    # the trail's own names are for administrators: the page shows them to no one
    text = re.sub(r"<[^>]+>", " ", page)
    assert not re.search(r"\b(otp|passkey|password|recovery_codes|eid|session|login)\.[a-z_]+", text)


def test_a_status_change_is_told_by_what_it_changed_to_and_once(party: PartyFactory) -> None:
    """The set-up from an invitation and a block by the person each write a status change next to
    their own event: the page tells each once. Other status changes say what the status became."""
    p, _ = signed_in_advanced(party)
    events = (
        ("eid.status_changed", {"status": "active", "reason": "onboarding_completed"}),
        ("invitation.completed", {"acr": "urn:eid:loa:advanced"}),
        ("eid.status_changed", {"status": "suspended", "reason": "suspended_by_admin"}),
        ("eid.status_changed", {"status": "active", "reason": "enabled_by_admin"}),
        ("eid.status_changed", {"status": "blocked", "reason": "blocked_by_owner"}),
        ("eid.blocked_by_owner", {"reason": "suspected_misuse"}),
    )
    _record_events(p, [(event_type, {"details": details}) for event_type, details in events])
    page = p.rp.browser.get("/account").text
    assert page.count('data-event="eid.status_changed"') == 2
    assert "eID set-up finished" in page and "eID suspended" in page and "eID enabled" in page
    assert page.count("You blocked the eID") == 1 and "eID blocked" not in page
    assert "Status of the eID changed" not in page and page.count("eID created") <= 1


def test_a_password_reset_is_told_as_one_not_as_a_sign_in(party: PartyFactory) -> None:
    """A reset's link was listed as "Sign-in link sent by email", and its wrong codes not at all,
    while a wrong code at sign-in shows as a failed attempt."""
    p, _ = signed_in_advanced(party)
    reset, login = {"purpose": "reset"}, {"purpose": "login"}
    _record_events(
        p,
        [
            ("email_link.sent", {"details": login}),
            ("email_link.sent", {"details": reset}),
            ("email_link.delivery_failed", {"details": reset, "success": False}),
            ("password_reset.failed", {"details": {"reason": "invalid"}, "success": False}),
        ],
    )
    page = p.rp.browser.get("/account").text
    assert page.count("Sign-in link sent by email") == 1
    assert "Password reset link sent by email" in page
    assert "Password reset link could not be delivered" in page
    assert 'data-event="password_reset.failed"' in page and "Failed password reset attempt" in page


# -- step-up -------------------------------------------------------------------------------------


def test_a_basic_session_is_stepped_up_and_comes_back_to_the_change(party: PartyFactory) -> None:
    p, secret = advanced_party(party)
    assert secret is not None
    p.tokens()  # a basic (email link) session
    to_login = p.rp.browser.get("/account/password")
    assert to_login.status_code == 303 and to_login.headers["location"].startswith("/login?request_id=")
    page = p.rp.browser.get(to_login.headers["location"])
    assert "Enter your password" in page.text and 'name="email"' not in page.text  # known person
    # the sign-in pages say why they are asked for, and lead back to the account
    why = "To make this change to your account, confirm that it is you."
    assert why in as_read(page.text) and 'href="/account"' in page.text
    code_page = follow(p, post_form(p, page, "/login/password", password=SECRET))
    assert why in as_read(code_page.text) and 'href="/account"' in code_page.text
    done = post_form(
        p, code_page, "/login/code", method="totp", code=totp.code_at(secret=secret, for_time=time.time())
    )
    assert done.status_code == 303 and done.headers["location"] == "/account/password"
    form = p.rp.browser.get("/account/password")
    assert form.status_code == 200 and 'name="password_repeat"' in form.text


def test_a_stale_advanced_login_is_asked_again_and_a_post_is_not_applied(party: PartyFactory) -> None:
    p, _ = signed_in_advanced(party)
    form = p.rp.browser.get("/account/password")
    assert form.status_code == 200
    age_session(p, 11 * 60)
    refused = post(p, form, "/account/password", password=NEW_SECRET, password_repeat=NEW_SECRET)
    assert refused.status_code == 303 and refused.headers["location"] == "/account/password"
    assert not events_of(p, "password.changed")
    step_up = p.rp.browser.get("/account/password")
    assert step_up.status_code == 303 and step_up.headers["location"].startswith("/login?")


def test_an_eid_without_second_factor_is_told_why_it_cannot_change(party: PartyFactory) -> None:
    p = party()
    p.tokens()
    page = p.rp.browser.get("/account/block")
    assert page.status_code == 403 and "does not have them yet" in page.text


# -- the changes -----------------------------------------------------------------------------------


def test_change_password(party: PartyFactory) -> None:
    p, _ = signed_in_advanced(party)
    assert p.eid is not None
    eid_id, tenant_id, username = p.eid.id, p.tenant.id, p.eid.username
    elsewhere = p.served.write(  # the same person signed in on another device
        lambda tx: sessions.authenticate(
            tx,
            previous=None,
            tenant_id=tenant_id,
            eid_id=eid_id,
            username=username,
            acr="urn:eid:loa:basic",
            amr=["email"],
            ttl=3600,
            client_ip=None,
            method="email_link",
        )
    ).cookie_value
    form = p.rp.browser.get("/account/password")
    mismatch = post(p, form, "/account/password", password=NEW_SECRET, password_repeat=NEW_SECRET + "x")
    assert mismatch.status_code == 400 and "not the same" in mismatch.text
    # the repetition is what differs: its field carries the error, not the first one
    assert 'aria-describedby="password-repeat-error"' in mismatch.text
    assert 'aria-describedby="password-error"' not in mismatch.text
    weak = post(p, form, "/account/password", password="password1", password_repeat="password1")
    assert weak.status_code == 400 and "too common" in weak.text
    hashed = p.served.state.metrics.registry.get_sample_value("password_hashes_total", {"operation": "hash"})
    done = post(p, form, "/account/password", password=NEW_SECRET, password_repeat=NEW_SECRET)
    assert done.status_code == 303 and done.headers["location"] == "/account?done=password"
    # the new hash was made on the CPU pool and counted (the refused ones above made none)
    labels = {"operation": "hash"}
    assert (
        p.served.state.metrics.registry.get_sample_value("password_hashes_total", labels) == (hashed or 0) + 1
    )
    account_page = p.rp.browser.get("/account?done=password")  # this browser is still signed in
    assert "Your password was changed, and you were signed out on every other device" in as_read(
        account_page.text
    )
    assert "Signed out on every other device" in account_page.text
    assert len(events_of(p, "password.changed")) == 1
    # whoever else was signed in (with the old password, say) is not any more
    assert (
        p.served.run(p.served.state.db.read(lambda conn: sessions.load(conn, elsewhere, now=time.time())))
        is None
    )
    [out] = events_of(p, "eid.signed_out_everywhere")
    assert out["details"] == {"reason": "password_changed", "sessions": 1, "tokens": 0, "kept_current": True}
    # the new password signs in; the old one no longer does
    page, _, _ = start(p, acr_values=ADVANCED, prompt="login")
    old = post_form(p, page, "/login/password", password=SECRET)
    assert old.status_code == 401
    page, _, _ = start(p, acr_values=ADVANCED, prompt="login")
    assert (
        "Enter your one-time code"
        in follow(p, post_form(p, page, "/login/password", password=NEW_SECRET)).text
    )


def test_change_phone_confirms_the_new_number_by_sms(party: PartyFactory) -> None:
    p, _ = signed_in_advanced(party)
    assert p.eid is not None
    number = new_number()
    form = p.rp.browser.get("/account/phone")
    before = sms_count(p.served)
    sent = post(p, form, "/account/phone/send", phone=number.replace("+386", "+386 ") + " ")
    assert sent.status_code == 303 and sent.headers["location"].startswith("/account/phone?challenge=")
    code = sms_code(p.served, number, after=before)  # sent to the NEW number
    entry = p.rp.browser.get(sent.headers["location"])
    challenge = form_value(entry.text, "challenge_id")
    wrong = post(p, entry, "/account/phone", challenge_id=challenge, code=f"{(int(code) + 1) % 10**6:06d}")
    assert wrong.status_code == 401 and "not correct" in wrong.text
    unchanged = p.served.run(p.served.state.db.read(lambda conn: eids.get(conn, p.eid.id)))  # type: ignore[union-attr]
    assert unchanged.value("phone_number") == PHONE
    done = post(p, entry, "/account/phone", challenge_id=challenge, code=code)
    assert done.status_code == 303 and done.headers["location"] == "/account?done=phone"
    person = p.served.run(p.served.state.db.read(lambda conn: eids.get(conn, p.eid.id)))  # type: ignore[union-attr]
    attr = person.attributes["phone_number"]
    assert attr.value == number and attr.verified_method == "sms" and attr.verified_at is not None
    assert len(events_of(p, "eid.phone_changed")) == 1
    replay = post(p, entry, "/account/phone", challenge_id=challenge, code=code)
    assert replay.status_code == 401 and "already used" in replay.text


def test_a_new_number_may_be_typed_as_at_home_and_is_shown_written_out(party: PartyFactory) -> None:
    """Without a country code the number is read as one of the eID's country (here that of its
    present number, +386); the code page writes the number out, so a slip shows at once, and
    offers a new code to the same number."""
    p, _ = signed_in_advanced(party)
    number = new_number()
    national = "0" + number.removeprefix("+386")
    form = p.rp.browser.get("/account/phone")
    assert 'aria-describedby="phone-hint"' in form.text
    before = sms_count(p.served)
    sent = post(p, form, "/account/phone/send", phone=f"{national[:3]} {national[3:6]} {national[6:]}")
    assert sent.status_code == 303, sent.text[:1000]
    assert sms_code(p.served, number, after=before)
    entry = p.rp.browser.get(sent.headers["location"])
    assert display_phone(number) in entry.text  # written out, not masked
    assert form_value(entry.text, "phone") == number
    challenge = form_value(entry.text, "challenge_id")
    again = post(
        p, entry, "/account/phone/send", phone=form_value(entry.text, "phone"), challenge_id=challenge
    )
    assert again.status_code == 429  # the resend cooldown, as everywhere a code is sent
    # still where the code already sent is typed
    assert 'name="code"' in again.text and form_value(again.text, "challenge_id") == challenge


@pytest.mark.parametrize("meanwhile", ["erased", "suspended"])
def test_a_phone_change_stores_nothing_when_the_eid_went_after_the_code_check(
    party: PartyFactory, monkeypatch: pytest.MonkeyPatch, meanwhile: str
) -> None:
    p, _ = signed_in_advanced(party)
    assert p.eid is not None
    eid_id = p.eid.id
    number = new_number()
    form = p.rp.browser.get("/account/phone")
    before = sms_count(p.served)
    sent = post(p, form, "/account/phone/send", phone=number)
    code = sms_code(p.served, number, after=before)
    entry = p.rp.browser.get(sent.headers["location"])
    real_check = PhoneVerifier.check

    async def check_then_eid_goes(self: PhoneVerifier, db: Database, **kwargs: object) -> Checked:
        checked = await real_check(self, db, **kwargs)  # type: ignore[arg-type]
        if meanwhile == "erased":  # e.g. a SCIM DELETE between the code check and the save
            await db.write(lambda tx: eids.erase(tx, eid_id=eid_id, reason="test", actor="test"))
        else:
            await db.write(lambda tx: eids.suspend(tx, eid_id=eid_id, reason="test", actor="test"))
        return checked

    monkeypatch.setattr(PhoneVerifier, "check", check_then_eid_goes)
    done = post(p, entry, "/account/phone", challenge_id=form_value(entry.text, "challenge_id"), code=code)
    assert done.status_code == 303, done.text[:2000]
    assert done.headers["location"] == "/account"
    assert "open the account page from the link" in p.rp.browser.get("/account").text  # signed out
    assert not events_of(p, "eid.phone_changed")
    if meanwhile == "suspended":
        person = p.served.run(p.served.state.db.read(lambda conn: eids.get(conn, eid_id)))
        assert person.value("phone_number") == PHONE


@pytest.mark.parametrize("phone", ["", "12", "not a number", "+1" + "9" * 60, "+386\x0040123456", "<script>"])
def test_change_phone_refuses_what_is_not_a_mobile_number(party: PartyFactory, phone: str) -> None:
    p, _ = signed_in_advanced(party)
    form = p.rp.browser.get("/account/phone")
    refused = post(p, form, "/account/phone/send", phone=phone)
    assert refused.status_code == 400 and "country code" in refused.text
    assert "<script>" not in refused.text


def test_a_code_sent_for_login_cannot_change_the_phone(party: PartyFactory) -> None:
    p, _ = signed_in_advanced(party)
    form = p.rp.browser.get("/account/phone")
    forged = post(p, form, "/account/phone", challenge_id="x" * 32, code="123456")
    assert forged.status_code == 401


def test_change_authenticator_app_replaces_the_old_one(party: PartyFactory) -> None:
    p, old_secret = signed_in_advanced(party)
    intro = p.rp.browser.get("/account/app")
    assert "replaces the one you have now" in intro.text
    shown = post(p, intro, "/account/app/start")
    assert shown.status_code == 200 and "otpauth://" in shown.text
    key = form_value(shown.text, "manual_key").replace(" ", "")
    fields = {
        name: form_value(shown.text, name) for name in ("enrolment_id", "provisioning_uri", "manual_key")
    }
    wrong = post(p, shown, "/account/app", code="000000", **fields)
    assert wrong.status_code == 401 and "otpauth://" in wrong.text  # the same key, shown again
    done = post(p, shown, "/account/app", code=totp.code_at(secret=key, for_time=time.time()), **fields)
    assert done.status_code == 303 and done.headers["location"] == "/account?done=app"
    assert events_of(p, "otp.totp.enrolled")[-1]["details"]["replaced"] is True
    # a login now takes codes from the new app only
    page, _, _ = start(p, acr_values=ADVANCED, prompt="login")
    code_page = follow(p, post_form(p, page, "/login/password", password=SECRET))
    stale = post_form(
        p,
        code_page,
        "/login/code",
        method="totp",
        code=totp.code_at(secret=old_secret, for_time=time.time() + 30),
    )
    assert stale.status_code == 401


def _shown_codes(page: httpx.Response) -> list[str]:
    return re.findall(r"<code>([A-Z0-9]{5}-[A-Z0-9]{5})</code>", page.text)


def _uses(p: Party, eid_id: str, code: str) -> bool:
    try:
        p.served.write(lambda tx: recovery_codes.use(tx, eid_id=eid_id, code=code, now=time.time()))
    except recovery_codes.RecoveryCodeError:
        return False
    return True


def test_new_recovery_codes_are_shown_once_and_replace_the_old_once_saved(party: PartyFactory) -> None:
    p, _ = signed_in_advanced(party)
    assert p.eid is not None
    eid_id = p.eid.id
    old = p.served.write(lambda tx: recovery_codes.issue(tx, eid_id=eid_id, now=time.time()))
    page = p.rp.browser.get("/account/recovery")
    assert "10 unused recovery codes" in as_read(page.text) and old[0] not in page.text
    shown = post(p, page, "/account/recovery")
    assert shown.status_code == 200 and shown.headers["cache-control"] == "no-store"
    codes = _shown_codes(shown)
    assert len(codes) == 10 and not set(codes) & set(old)
    again = p.rp.browser.get("/account/recovery")
    assert codes[0] not in again.text  # never shown again
    # until the person says they saved them, the old codes work and the new ones do not
    assert "10 unused recovery codes" in as_read(again.text)
    assert _uses(p, eid_id, old[0]) and not _uses(p, eid_id, codes[0])

    saved = post(p, shown, "/account/recovery/saved", recovery_set=form_value(shown.text, "recovery_set"))
    assert saved.status_code == 303 and saved.headers["location"] == "/account?done=recovery"
    assert "new recovery codes are in use" in as_read(p.rp.browser.get(saved.headers["location"]).text)
    assert not _uses(p, eid_id, old[1]) and _uses(p, eid_id, codes[1])
    left = p.served.run(p.served.state.db.read(lambda conn: recovery_codes.remaining(conn, eid_id=eid_id)))
    assert left == 9
    # the form sent twice (a double click): the same answer, nothing changed
    twice = post(p, shown, "/account/recovery/saved", recovery_set=form_value(shown.text, "recovery_set"))
    assert twice.status_code == 303 and twice.headers["location"] == "/account?done=recovery"
    assert _uses(p, eid_id, codes[2])
    kinds = [e["event_type"] for e in audit_events(p.served) if e["eid_id"] == eid_id]
    assert kinds.count("recovery_codes.shown") == 1 and kinds.count("recovery_codes.issued") == 2


def test_recovery_codes_made_again_elsewhere_leave_the_first_page_unconfirmable(party: PartyFactory) -> None:
    p, _ = signed_in_advanced(party)
    assert p.eid is not None
    eid_id = p.eid.id
    old = p.served.write(lambda tx: recovery_codes.issue(tx, eid_id=eid_id, now=time.time()))
    page = p.rp.browser.get("/account/recovery")
    first = post(p, page, "/account/recovery")
    second = post(p, page, "/account/recovery")  # another window
    stale = post(p, first, "/account/recovery/saved", recovery_set=form_value(first.text, "recovery_set"))
    assert stale.status_code == 409 and "newer ones were made" in as_read(stale.text)
    assert _uses(p, eid_id, old[0])  # still the codes in use
    assert not any(_uses(p, eid_id, c) for c in _shown_codes(first)[:2] + _shown_codes(second)[:2])
    for hostile in ("", "x" * 23, "../etc", form_value(first.text, "csrf_token")):
        refused = post(p, second, "/account/recovery/saved", recovery_set=hostile)
        assert refused.status_code == 409, hostile
    ok = post(p, second, "/account/recovery/saved", recovery_set=form_value(second.text, "recovery_set"))
    assert ok.headers["location"] == "/account?done=recovery"
    assert not _uses(p, eid_id, old[1]) and _uses(p, eid_id, _shown_codes(second)[0])


def test_block_my_eid_ends_sessions_and_tokens(party: PartyFactory) -> None:
    p, secret = advanced_party(party)
    assert secret is not None
    page, _, verifier = start(p, acr_values=ADVANCED)
    code_page = password_step(p, page)
    done = post_form(
        p, code_page, "/login/code", method="totp", code=totp.code_at(secret=secret, for_time=time.time())
    )
    code = redirect_query(done, p.rp.redirect_uri)["code"]
    tokens = p.rp.exchange(code, verifier).json()
    assert p.introspect(tokens["access_token"]).json()["active"] is True
    confirm = p.rp.browser.get("/account/block")
    assert confirm.status_code == 200 and "signs you out everywhere" in confirm.text
    unticked = post(p, confirm, "/account/block")
    assert unticked.status_code == 400 and "Tick the box" in unticked.text
    blocked = post(p, confirm, "/account/block", confirm="yes")
    assert blocked.status_code == 200 and "Your eID is blocked" in blocked.text
    assert "administrator" in blocked.text
    assert p.introspect(tokens["access_token"]).json() == {"active": False}
    assert p.refresh(tokens.get("refresh_token", "x")).status_code == 400
    assert "open the account page from the link" in p.rp.browser.get("/account").text  # signed out
    assert [e["details"]["status"] for e in events_of(p, "eid.status_changed")][-1] == "blocked"
    assert events_of(p, "eid.blocked_by_owner")
    # nobody signs in with it now
    page, _, _ = start(p, acr_values=ADVANCED)
    assert post_form(p, page, "/login/password", email=p.email, password=SECRET).status_code == 401


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/account/password", {"password": NEW_SECRET, "password_repeat": NEW_SECRET}),
        ("/account/phone/send", {"phone": "+38641000000"}),
        ("/account/app/start", {}),
        ("/account/recovery", {}),
        ("/account/block", {"confirm": "yes"}),
        ("/account/passkeys/remove", {"credential_id": "x"}),
    ],
)
def test_changes_without_the_csrf_token_are_refused(
    party: PartyFactory, path: str, fields: dict[str, str]
) -> None:
    p, _ = signed_in_advanced(party)
    refused = p.rp.browser.post(path, data={"csrf_token": "forged", **fields})
    assert refused.status_code == 403
    missing = p.rp.browser.post(path, data=fields)
    assert missing.status_code == 403
    assert not events_of(p, "password.changed") and not events_of(p, "eid.blocked_by_owner")


def test_changes_without_a_session_go_to_the_account_page(party: PartyFactory) -> None:
    p = party()
    p.rp.browser.get("/account")  # the browser cookie, and so a valid CSRF token
    token = csrf_token(p.served.settings.secret_key, p.rp.browser.cookies["__Host-idp_browser"])
    for path in ("/account/password", "/account/block", "/account/passkeys", "/account/passkeys/remove"):
        assert p.rp.browser.get(path).headers["location"] == "/account"
        assert p.rp.browser.post(path, data={"csrf_token": token}).headers["location"] == "/account"


# -- passkeys --------------------------------------------------------------------------------------


def test_the_account_page_signs_out(party: PartyFactory) -> None:
    p, _ = signed_in_advanced(party)
    page = p.rp.browser.get("/account")
    assert 'action="/logout"' in page.text
    out = post(p, page, "/logout", confirm="yes")
    assert out.status_code == 200 and "You are signed out" in out.text
    assert "open the account page from the link" in p.rp.browser.get("/account").text
    assert events_of(p, "session.ended")[-1]["details"]["reason"] == "logout"
    forged = p.rp.browser.post("/logout", data={"confirm": "yes", "csrf_token": "forged"})
    assert forged.status_code == 403


def test_add_and_remove_a_passkey(party: PartyFactory) -> None:
    p, _ = signed_in_advanced(party)
    page = p.rp.browser.get("/account/passkeys")
    assert page.status_code == 200 and "You have no passkey yet" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    options = page.text.split('id="passkey-options">')[1].split("</script>")[0]
    device = SoftPasskey()
    credential = device.register(options, p.served.issuer)
    challenge = form_value(page.text, "challenge_id")
    added = post(
        p, page, "/account/passkeys", challenge_id=challenge, credential=credential, name="My <phone>"
    )
    assert added.status_code == 303 and added.headers["location"] == "/account?done=passkey_added"
    listed = p.rp.browser.get("/account/passkeys")
    assert "My &lt;phone&gt;" in listed.text and "<phone>" not in listed.text
    replay = post(p, page, "/account/passkeys", challenge_id=challenge, credential=credential, name="again")
    assert replay.status_code == 400
    credential_id = form_value(listed.text, "credential_id")
    removed = post(p, listed, "/account/passkeys/remove", credential_id=credential_id)
    assert removed.status_code == 303 and removed.headers["location"] == "/account?done=passkey_removed"
    assert "You have no passkey yet" in p.rp.browser.get("/account/passkeys").text
    assert [e["event_type"] for e in events_of(p, "passkey.")] == ["passkey.registered", "passkey.removed"]
    unknown = post(p, listed, "/account/passkeys/remove", credential_id=credential_id)
    assert unknown.status_code == 404


def _add_passkey(p: Party, name: str) -> None:
    page = p.rp.browser.get("/account/passkeys")
    options = page.text.split('id="passkey-options">')[1].split("</script>")[0]
    credential = SoftPasskey().register(options, p.served.issuer)
    added = post(
        p,
        page,
        "/account/passkeys",
        challenge_id=form_value(page.text, "challenge_id"),
        credential=credential,
        name=name,
    )
    assert added.headers["location"] == "/account?done=passkey_added", added.text[:500]


def test_a_blank_or_too_long_passkey_name_does_not_lose_the_new_passkey(party: PartyFactory) -> None:
    """The authenticator has already made the passkey when the name is sent: it is tidied, not refused."""
    p, _ = signed_in_advanced(party)
    _add_passkey(p, "  \t ")
    _add_passkey(p, "Work   laptop " + "x" * 100)
    listed = p.rp.browser.get("/account/passkeys").text
    names = re.findall(r"<li><strong>([^<]*)</strong>", listed)
    assert sorted(names) == sorted(["Passkey", "Work laptop " + "x" * (64 - len("Work laptop "))])
    assert len(events_of(p, "passkey.registered")) == 2


def _confirmation(p: Party, credential_id: str) -> httpx.Response:
    return p.rp.browser.get("/account/passkeys/remove", params={"credential_id": credential_id})


REMOVE_FORM = '<form class="stack" method="post" action="/account/passkeys/remove">'


def test_removing_a_passkey_is_confirmed_on_a_page_that_names_it(party: PartyFactory) -> None:
    p, _ = signed_in_advanced(party)
    _add_passkey(p, "Laptop <b>")
    _add_passkey(p, "Phone")
    listed = p.rp.browser.get("/account/passkeys")
    laptop, phone = re.findall(r'name="credential_id" value="([^"]+)"', listed.text)
    # the list's Remove leads to the confirmation: a GET, which carries no CSRF token in its URL
    assert '<form class="inline-form" method="get" action="/account/passkeys/remove">' in listed.text
    used = datetime(2026, 1, 2, 3, 4, tzinfo=UTC).timestamp()
    c = tables.passkey_credentials.c
    p.served.write(
        lambda tx: tx.conn.execute(
            update(tables.passkey_credentials).where(c.credential_id == phone).values(last_used_at=used)
        )
    )

    confirm = _confirmation(p, laptop)
    assert confirm.status_code == 200
    text = as_read(confirm.text)
    assert re.search(r"<h1>\s*Remove this passkey\?\s*</h1>", text), text[:2000]
    assert '<strong class="nowrap-anywhere">Laptop &lt;b&gt;</strong>' in text and "Laptop <b>" not in text
    # the days are moments the page shows in the reader's time zone (UTC without scripts)
    shown = re.sub(r"<[^>]+>", "", text)
    assert f"Added on {datetime.now(UTC):%Y-%m-%d}." in shown and "Not used to sign in yet." in shown
    assert 'data-local-time="date"' in text and '<script src="/static/local-time.js"></script>' in text
    assert "this passkey can no longer be used to sign in" in text
    assert REMOVE_FORM in confirm.text and form_value(confirm.text, "credential_id") == laptop
    assert '<a class="button button-secondary" href="/account">Cancel</a>' in confirm.text
    used_shown = re.sub(r"<[^>]+>", "", as_read(_confirmation(p, phone).text))
    assert "Last used to sign in on 2026-01-02." in used_shown
    # looking, however often, removes nothing
    assert _confirmation(p, laptop).status_code == 200
    assert p.rp.browser.head("/account/passkeys/remove", params={"credential_id": laptop}).status_code == 200
    assert not events_of(p, "passkey.removed")
    # nor does a post without the page's CSRF token
    forged = p.rp.browser.post(
        "/account/passkeys/remove", data={"csrf_token": "forged", "credential_id": laptop}
    )
    assert forged.status_code == 403 and not events_of(p, "passkey.removed")
    # its Remove does, and is audited as before
    removed = post(
        p, confirm, "/account/passkeys/remove", credential_id=form_value(confirm.text, "credential_id")
    )
    assert removed.status_code == 303 and removed.headers["location"] == "/account?done=passkey_removed"
    assert [e["details"]["credential_id"] for e in events_of(p, "passkey.removed")] == [laptop[:64]]
    left = p.rp.browser.get("/account/passkeys").text
    assert re.findall(r'name="credential_id" value="([^"]+)"', left) == [phone]
    # now it is gone: its confirmation and its removal are a clear 404, and nothing else goes
    gone = _confirmation(p, laptop)
    assert gone.status_code == 404 and "There is no such passkey." in gone.text
    assert post(p, confirm, "/account/passkeys/remove", credential_id=laptop).status_code == 404
    assert len(events_of(p, "passkey.removed")) == 1


def test_a_stale_login_removes_nothing_and_comes_back_to_the_confirmation(party: PartyFactory) -> None:
    p, secret = signed_in_advanced(party)
    _add_passkey(p, "Laptop")
    credential_id = form_value(p.rp.browser.get("/account/passkeys").text, "credential_id")
    confirm = _confirmation(p, credential_id)
    assert confirm.status_code == 200
    age_session(p, 11 * 60)
    refused = post(p, confirm, "/account/passkeys/remove", credential_id=credential_id)
    here = f"/account/passkeys/remove?credential_id={credential_id}"
    assert refused.status_code == 303 and refused.headers["location"] == here
    assert not events_of(p, "passkey.removed")
    # the confirmation steps up, and the sign-in comes back to it
    step_up = p.rp.browser.get(here)
    assert step_up.status_code == 303 and step_up.headers["location"].startswith("/login?")
    page = p.rp.browser.get(step_up.headers["location"])
    code_page = follow(p, post_form(p, page, "/login/password", password=SECRET))
    # the sign-in just now spent this time step's code; the next step's is within the window
    code = totp.code_at(secret=secret, for_time=time.time() + 30)
    done = post_form(p, code_page, "/login/code", method="totp", code=code)
    assert done.status_code == 303 and done.headers["location"] == here, done.text[:500]
    back = p.rp.browser.get(here)
    assert back.status_code == 200 and "Laptop" in back.text and REMOVE_FORM in back.text
    removed = post(p, back, "/account/passkeys/remove", credential_id=credential_id)
    assert removed.headers["location"] == "/account?done=passkey_removed"
    assert len(events_of(p, "passkey.removed")) == 1


def test_removing_a_missing_or_another_person_s_passkey_is_a_404(party: PartyFactory) -> None:
    other, _ = signed_in_advanced(party)
    _add_passkey(other, "Theirs")
    theirs = form_value(other.rp.browser.get("/account/passkeys").text, "credential_id")
    p, _ = signed_in_advanced(party)
    _add_passkey(p, "Mine")
    listed = p.rp.browser.get("/account/passkeys")
    for credential_id in (theirs, "no-such-passkey", "", "not base64url!", "x" * 2000):
        page = _confirmation(p, credential_id)
        assert page.status_code == 404 and "There is no such passkey." in page.text, credential_id
        assert REMOVE_FORM not in page.text
        refused = post(p, listed, "/account/passkeys/remove", credential_id=credential_id)
        assert refused.status_code == 404 and "There is no such passkey." in refused.text, credential_id
    assert p.rp.browser.get("/account/passkeys/remove").status_code == 404  # no id at all
    assert not events_of(p, "passkey.removed") and not events_of(other, "passkey.removed")
    assert theirs in other.rp.browser.get("/account/passkeys").text


def test_the_last_way_to_the_advanced_level_is_not_removed(party: PartyFactory) -> None:
    p, _ = signed_in_advanced(party)
    assert p.eid is not None
    eid_id = p.eid.id
    _add_passkey(p, "Laptop")
    _add_passkey(p, "Phone")
    # from here on the eID signs in at the advanced level with its passkeys only
    c = tables.password_credentials.c
    p.served.write(lambda tx: tx.conn.execute(tables.password_credentials.delete().where(c.eid_id == eid_id)))
    listed = p.rp.browser.get("/account/passkeys")
    first, second = re.findall(r'name="credential_id" value="([^"]+)"', listed.text)
    assert REMOVE_FORM in _confirmation(p, first).text  # the other passkey is left
    removed = post(p, listed, "/account/passkeys/remove", credential_id=first)
    assert removed.headers["location"] == "/account?done=passkey_removed"
    # the confirmation of the last one says why it cannot go, and offers no Remove
    last = _confirmation(p, second)
    assert last.status_code == 200 and REMOVE_FORM not in last.text
    assert "your only way to a strong sign-in, so it cannot be removed" in as_read(last.text)
    assert 'href="/account/passkeys"' in last.text and 'href="/account"' in last.text
    kept = post(p, listed, "/account/passkeys/remove", credential_id=second)
    assert kept.status_code == 409
    assert "your only way to a strong sign-in" in as_read(kept.text)
    assert 'name="credential_id" value="' + second in kept.text  # still listed
    assert [e["event_type"] for e in events_of(p, "passkey.r")] == [
        "passkey.registered",
        "passkey.registered",
        "passkey.removed",
    ]
    # with a password beside the app, the passkey is no longer the only way
    new_password = "quiet amber falcon 19"
    page = p.rp.browser.get("/account/password")
    changed = post(p, page, "/account/password", password=new_password, password_repeat=new_password)
    assert changed.headers["location"] == "/account?done=password"
    assert REMOVE_FORM in _confirmation(p, second).text
    gone = post(p, kept, "/account/passkeys/remove", credential_id=second)
    assert gone.headers["location"] == "/account?done=passkey_removed"


def test_a_refused_registration_spends_its_challenge(party: PartyFactory) -> None:
    p, _ = signed_in_advanced(party)
    page = p.rp.browser.get("/account/passkeys")
    options = page.text.split('id="passkey-options">')[1].split("</script>")[0]
    challenge = form_value(page.text, "challenge_id")
    unverified = SoftPasskey(user_verified=False).register(options, p.served.issuer)
    refused = post(p, page, "/account/passkeys", challenge_id=challenge, credential=unverified, name="a")
    assert refused.status_code == 400 and "did not check your PIN" in refused.text
    assert form_value(refused.text, "challenge_id") != challenge  # the page offers a new one
    # WebAuthn §13.4.3: the challenge was used, even though that use failed
    valid = SoftPasskey().register(options, p.served.issuer)
    late = post(p, page, "/account/passkeys", challenge_id=challenge, credential=valid, name="b")
    assert late.status_code == 400 and "could not be added" in late.text
    assert not events_of(p, "passkey.registered")


@pytest.mark.parametrize(
    ("browser_error", "shown"),
    [
        # WebAuthn §5.1.3 step 20: the authenticator already holds one of excludeCredentials
        ("InvalidStateError", "This passkey is already registered."),
        ("NotAllowedError", "The passkey was not created. Try again, or use another device."),
    ],
)
def test_the_browser_s_refusal_is_told_as_it_was(party: PartyFactory, browser_error: str, shown: str) -> None:
    """A person adding a passkey on a device that already has one was told to 'try again, or use
    another device', as if they had cancelled, though trying again could never work there."""
    p, _ = signed_in_advanced(party)
    page = p.rp.browser.get("/account/passkeys")
    challenge = form_value(page.text, "challenge_id")
    refused = post(p, page, "/account/passkeys", challenge_id=challenge, credential="", error=browser_error)
    assert refused.status_code == 400
    assert shown in refused.text
    assert not events_of(p, "passkey.registered")
    # a language switch on the answer comes back to the passkeys, not to the account page
    assert '<input type="hidden" name="next" value="/account/passkeys">' in refused.text


@pytest.mark.parametrize("credential", ["", "{}", "not json", json.dumps({"id": "x" * 70_000}), "[1,2]"])
def test_a_bad_passkey_response_is_a_clear_error(party: PartyFactory, credential: str) -> None:
    p, _ = signed_in_advanced(party)
    page = p.rp.browser.get("/account/passkeys")
    refused = post(
        p,
        page,
        "/account/passkeys",
        challenge_id=form_value(page.text, "challenge_id"),
        credential=credential,
    )
    assert refused.status_code in (400, 413)
    assert not events_of(p, "passkey.registered")
