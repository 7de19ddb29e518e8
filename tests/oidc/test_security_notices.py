"""Security notices through the served app: a mail to the eID's address after each change of what
guards it, and when wrong guesses lock it; once per change, in the right language, audited, and
never in the way of the change itself."""

from __future__ import annotations

import dataclasses
import re
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, update

from idp import invitations
from idp.delivery.sms import OutboxSMS, read_outbox
from idp.errors import DeliveryError
from idp.storage import tables
from idp.web.i18n import SMS_PHONE_CHANGED
from idp.web.security_notice import SUBJECTS, Notice, one_line, send_sms
from levels_of_assurance.authenticators import recovery_codes
from otp import totp
from otp.phone import display_phone, mask_phone
from tests.oidc.conftest import Party, PartyFactory, audit_events, new_mails, outbox_names, wait_for_mail
from tests.oidc.test_account import NEW_SECRET, new_number, post, signed_in_advanced
from tests.oidc.test_advanced_login import (
    ADVANCED,
    PHONE,
    SECRET,
    advanced_party,
    enrol,
    finish,
    password_step,
    post_form,
    sms_code,
    sms_count,
    start,
)
from tests.support.flows import form_value
from tests.support.server import ServedApp
from tests.support.soft_authenticator import SoftPasskey


def body(mail: EmailMessage) -> str:
    part = mail.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def notices(p: Party) -> list[dict[str, Any]]:
    assert p.eid is not None
    return [
        e["details"]
        for e in audit_events(p.served)
        if e["eid_id"] == p.eid.id and e["event_type"].startswith("security_notice.")
    ]


def wait_for_notices(p: Party, count: int) -> list[dict[str, Any]]:
    """The audited outcomes of the notices, once ``count`` were handed over (they go in the background)."""
    deadline = time.monotonic() + 5
    while len(found := notices(p)) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return found


def test_a_changed_password_is_told_at_the_eid_s_address_in_the_page_s_language(party: PartyFactory) -> None:
    p, _ = signed_in_advanced(party)
    form = p.rp.browser.get("/account/password")
    seen = outbox_names(p.served)
    p.rp.browser.cookies.set("idp_lang", "sl", domain=p.rp.browser.base_url.host)
    done = post(p, form, "/account/password", password=NEW_SECRET, password_repeat=NEW_SECRET)
    assert done.status_code == 303
    mail = wait_for_mail(p.served, p.email, seen=seen)
    assert mail["Subject"] == "Geslo vašega eID je bilo spremenjeno"
    assert mail["Auto-Submitted"] == "auto-generated"
    text = body(mail)
    assert "Na vseh drugih napravah" in text and "127.0.0.1" in text
    assert f"{p.served.issuer}/account?tenant={p.tenant.slug}" in text
    assert f"organizacije {p.tenant.name}" in text  # who to tell if it was not them
    html = mail.get_body(("html",))
    assert html is not None and 'lang="sl"' in html.get_content()
    assert wait_for_notices(p, 1) == [{"notice": "password_changed"}]


def test_each_change_on_the_account_page_is_told_once(party: PartyFactory) -> None:
    p, _ = signed_in_advanced(party)
    assert p.eid is not None
    eid_id = p.eid.id
    seen = outbox_names(p.served)

    # recovery codes: told when the new set is put in use, not again for the form sent twice
    p.served.write(lambda tx: recovery_codes.issue(tx, eid_id=eid_id, now=time.time()))
    shown = post(p, p.rp.browser.get("/account/recovery"), "/account/recovery")
    saved_set = form_value(shown.text, "recovery_set")
    for _ in range(2):
        assert post(p, shown, "/account/recovery/saved", recovery_set=saved_set).status_code == 303
    # a passkey added, then removed
    page = p.rp.browser.get("/account/passkeys")
    options = page.text.split('id="passkey-options">')[1].split("</script>")[0]
    credential = SoftPasskey().register(options, p.served.issuer)
    challenge = form_value(page.text, "challenge_id")
    assert (
        post(p, page, "/account/passkeys", challenge_id=challenge, credential=credential).status_code == 303
    )
    listed = p.rp.browser.get("/account/passkeys")
    credential_id = form_value(listed.text, "credential_id")
    assert post(p, listed, "/account/passkeys/remove", credential_id=credential_id).status_code == 303
    # refusals change nothing and tell nothing
    assert post(p, listed, "/account/passkeys/remove", credential_id=credential_id).status_code == 404
    form = p.rp.browser.get("/account/password")
    assert (
        post(p, form, "/account/password", password="password1", password_repeat="password1").status_code
        == 400
    )

    told = wait_for_notices(p, 3)
    assert [n["notice"] for n in told] == ["recovery_codes", "passkey_added", "passkey_removed"]
    time.sleep(0.2)  # nothing more arrives
    mails = [m for m in new_mails(p.served, seen=seen) if m["To"] == p.email]
    assert [m["Subject"] for m in mails] == [
        SUBJECTS[Notice.RECOVERY_CODES],
        SUBJECTS[Notice.PASSKEY_ADDED],
        SUBJECTS[Notice.PASSKEY_REMOVED],
    ]
    assert "The old ones no longer work." in body(mails[0])
    assert "If it wasn't you, someone else may be using your eID" in body(mails[1])


def _html(mail: EmailMessage) -> str:
    part = mail.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def test_a_passkey_added_or_removed_is_named_in_the_notice(party: PartyFactory) -> None:
    p, _ = signed_in_advanced(party)
    seen = outbox_names(p.served)
    page = p.rp.browser.get("/account/passkeys")
    options = page.text.split('id="passkey-options">')[1].split("</script>")[0]
    credential = SoftPasskey().register(options, p.served.issuer)
    challenge = form_value(page.text, "challenge_id")
    added = post(
        p, page, "/account/passkeys", challenge_id=challenge, credential=credential, name="Work laptop"
    )
    assert added.status_code == 303
    mail = wait_for_mail(p.served, p.email, seen=seen)
    assert mail["Subject"] == SUBJECTS[Notice.PASSKEY_ADDED]
    named = "The passkey “Work laptop” was added to your eID. It can now sign you in."
    assert named in body(mail) and named in " ".join(_html(mail).split())

    # a name that did not come through the page's form: markup, a line break, a bidi override
    credential_id = form_value(p.rp.browser.get("/account/passkeys").text, "credential_id")
    crafted = "Evil <script>alert(1)</script>\r\nBcc: x@example.com\u202e"
    c = tables.passkey_credentials.c
    p.served.write(
        lambda tx: tx.conn.execute(
            tables.passkey_credentials.update().where(c.credential_id == credential_id).values(name=crafted)
        )
    )
    confirm = p.rp.browser.get("/account/passkeys/remove", params={"credential_id": credential_id})
    assert "Evil &lt;script&gt;" in confirm.text and "<script>alert" not in confirm.text
    seen = outbox_names(p.served)
    removed = post(p, confirm, "/account/passkeys/remove", credential_id=credential_id)
    assert removed.headers["location"] == "/account?done=passkey_removed"
    mail = wait_for_mail(p.served, p.email, seen=seen)
    assert mail["Subject"] == SUBJECTS[Notice.PASSKEY_REMOVED] and mail["Bcc"] is None
    text = body(mail)
    lines = [line for line in text.splitlines() if "The passkey" in line]
    assert lines == [
        "The passkey “Evil <script>alert(1)</script> Bcc: x@example.com” was removed from your eID. "
        "It can no longer sign you in."
    ]
    assert not any(line.startswith("Bcc") for line in text.splitlines()) and "\u202e" not in text
    html = " ".join(_html(mail).split())
    assert "<script>" not in html and "\u202e" not in html
    escaped = "Evil &lt;script&gt;alert(1)&lt;/script&gt; Bcc: x@example.com"
    assert f"The passkey “{escaped}” was removed from your eID." in html
    assert [n["notice"] for n in wait_for_notices(p, 2)] == ["passkey_added", "passkey_removed"]


def test_a_name_in_a_notice_is_one_line_of_at_most_64_characters() -> None:
    assert one_line("Work\tlaptop\n\nBcc: x@example.com\x00\u2028\u202e ") == "Work laptop Bcc: x@example.com"
    long = one_line("a\nb " + "z" * 100)
    assert long == "a b " + "z" * 59 + "…" and len(long) == 64
    assert one_line("z" * 64) == "z" * 64
    assert one_line(" \r\n\u200b ") is None and one_line(None) is None


def test_a_new_mobile_number_is_told_masked_at_the_address(party: PartyFactory) -> None:
    p, _ = signed_in_advanced(party)
    number = new_number()
    before = sms_count(p.served)
    sent = post(p, p.rp.browser.get("/account/phone"), "/account/phone/send", phone=number)
    assert sent.status_code == 303, sent.text[:500]
    entry = p.rp.browser.get(sent.headers["location"])
    seen = outbox_names(p.served)
    code = sms_code(p.served, number, after=before)
    done = post(p, entry, "/account/phone", challenge_id=form_value(entry.text, "challenge_id"), code=code)
    assert done.status_code == 303 and done.headers["location"] == "/account?done=phone"
    text = body(wait_for_mail(p.served, p.email, seen=seen))
    assert "The mobile number of your eID was changed to" in text
    assert mask_phone(number) in text and number not in text


# -- told by SMS at the number it replaced ----------------------------------------------------------


def signed_in_with_number(party: PartyFactory, number: str, **kwargs: Any) -> Party:
    """:func:`signed_in_advanced` with ``number`` as the eID's verified mobile number (one no other
    test's SMS go to)."""
    p = party(attributes={"phone_number": number, "given_name": "Ana"}, **kwargs)
    assert p.eid is not None
    secret = enrol(p.served, p.eid)
    assert secret is not None
    page, params, verifier = start(p, acr_values=ADVANCED)
    code = totp.code_at(secret=secret, for_time=time.time())
    finish(p, post_form(p, password_step(p, page), "/login/code", method="totp", code=code), params, verifier)
    return p


def texts(served: ServedApp, *, after: int) -> list[OutboxSMS]:
    return read_outbox(Path(served.settings.sms_backend.removeprefix("file:")))[after:]


def change_number(p: Party, number: str) -> int:
    """Change the eID's mobile number to ``number`` on the account page; returns how many SMS the
    outbox held before its code."""
    before = sms_count(p.served)
    sent = post(p, p.rp.browser.get("/account/phone"), "/account/phone/send", phone=number)
    assert sent.status_code == 303, sent.text[:500]
    entry = p.rp.browser.get(sent.headers["location"])
    code = sms_code(p.served, number, after=before)
    done = post(p, entry, "/account/phone", challenge_id=form_value(entry.text, "challenge_id"), code=code)
    assert done.status_code == 303 and done.headers["location"] == "/account?done=phone"
    return before


def test_a_new_mobile_number_is_texted_once_to_the_old_one_in_the_mail_s_language(
    party: PartyFactory, served: ServedApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, number = new_number(), new_number()
    tenant = served.tenant(branding={"name": "Acme Sign", "sms_name": "AcmeSign"})
    p = signed_in_with_number(party, old, tenant=tenant)
    pages = p.served.state.pages
    gettext = pages.gettext
    asked: list[str] = []

    def noted(language: str, message: str, **variables: object) -> str:
        if message == SMS_PHONE_CHANGED:
            asked.append(language)
        return gettext(language, message, **variables)

    monkeypatch.setattr(pages, "gettext", noted)
    seen = outbox_names(p.served)
    p.rp.browser.cookies.set("idp_lang", "sl", domain=p.rp.browser.base_url.host)
    before = change_number(p, number)

    told = wait_for_notices(p, 2)
    assert sorted(told, key=len) == [
        {"notice": "phone_changed"},  # the mail
        {"notice": "phone_changed", "channel": "sms", "phone": mask_phone(old)},
    ]
    mail = wait_for_mail(p.served, p.email, seen=seen)
    assert mail["Subject"] == gettext("sl", SUBJECTS[Notice.PHONE_CHANGED])
    time.sleep(0.2)  # nothing more arrives
    sent = texts(p.served, after=before)
    assert len([m for m in sent if m.to == number]) == 1  # its code, and only that
    (notice,) = [m for m in sent if m.to == old]
    assert asked == ["sl"]  # the mail's language
    when = re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", notice.body)
    assert when is not None
    assert notice.body == gettext("sl", SMS_PHONE_CHANGED, name="AcmeSign", when=when.group(0))
    assert "AcmeSign" in notice.body and "@" not in notice.body  # no origin-bound code line
    for shown in (number, display_phone(number), mask_phone(number)):
        assert shown not in notice.body


@pytest.mark.parametrize("had", ["no_number", "unverified_number", "the_same_number"])
def test_no_sms_notice_without_an_old_verified_number_nor_for_the_same_number(
    party: PartyFactory, had: str
) -> None:
    old = new_number()
    p = signed_in_with_number(party, old)
    assert p.eid is not None
    eid_id = p.eid.id
    a = tables.eid_attributes.c
    mine = (a.eid_id == eid_id) & (a.name == "phone_number")
    if had == "no_number":  # a first number set on the account page
        p.served.write(lambda tx: tx.conn.execute(delete(tables.eid_attributes).where(mine)))
    elif had == "unverified_number":  # e.g. one an administrator typed in
        p.served.write(
            lambda tx: tx.conn.execute(
                update(tables.eid_attributes).where(mine).values(verified_method=None, verified_at=None)
            )
        )
    number = old if had == "the_same_number" else new_number()
    before = change_number(p, number)
    assert wait_for_notices(p, 1) == [{"notice": "phone_changed"}]  # the mail
    time.sleep(0.2)
    assert notices(p) == [{"notice": "phone_changed"}]
    assert [m.to for m in texts(p.served, after=before) if m.to in (old, number)] == [number]  # its code


def test_no_sms_notice_where_the_deployment_sends_codes_only(
    party: PartyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twilio Verify alone sends codes, not other texts: the mail goes, and no undeliverable SMS
    notice is listed on every change."""
    p, _ = advanced_party(party)
    assert p.eid is not None
    monkeypatch.setattr(p.served.state, "sms", None)
    send_sms(p.served.state, person=p.eid, notice=Notice.PHONE_CHANGED, to=PHONE, language="en")
    assert not notices(p)


def test_blocking_the_eid_is_told_without_a_link_to_the_account(party: PartyFactory) -> None:
    p, _ = signed_in_advanced(party)
    seen = outbox_names(p.served)
    confirm = p.rp.browser.get("/account/block")
    assert post(p, confirm, "/account/block", confirm="yes").status_code == 200
    mail = wait_for_mail(p.served, p.email, seen=seen)
    assert mail["Subject"] == "Your eID was blocked"
    assert "blocked at your request" in body(mail) and "/account?tenant=" not in body(mail)


def _guess_until_locked(p: Party, monkeypatch: pytest.MonkeyPatch) -> None:
    # three free failures and a lock at the third, so no delay is waited for
    policy = dataclasses.replace(p.served.state.throttle.policy, free_per_account=3, lock_after=3)
    monkeypatch.setattr(p.served.state.throttle, "policy", policy)
    for _ in range(3):
        page, _, _ = start(p, acr_values=ADVANCED, prompt="login")
        assert post_form(p, page, "/login/password", email=p.email, password="wrong guess").status_code == 401


def test_a_lock_by_wrong_guesses_is_told_once_in_the_eid_s_language(
    party: PartyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guesser's browser says English; the notice goes in the language of the eID's
    invitation, and only for the guess that locked it, not for each one after."""
    p, _ = advanced_party(party)
    assert p.eid is not None
    eid_id, tenant_id = p.eid.id, p.tenant.id

    def invited_in_croatian(tx: Any) -> None:
        invitation, _ = invitations.create(
            tx, tenant_id=tenant_id, email=p.email, acr=ADVANCED, ttl=3600, phone_number=PHONE, language="hr"
        )
        tx.conn.execute(
            tables.invitations.update().where(tables.invitations.c.id == invitation.id).values(eid_id=eid_id)
        )

    p.served.write(invited_in_croatian)
    seen = outbox_names(p.served)
    _guess_until_locked(p, monkeypatch)
    page, _, _ = start(p, acr_values=ADVANCED, prompt="login")
    refused = post_form(p, page, "/login/password", email=p.email, password=SECRET)
    assert refused.status_code == 401 and "This eID is locked" in refused.text
    mail = wait_for_mail(p.served, p.email, seen=seen)
    assert mail["Subject"] == "Vaš eID je zaključan"
    assert f"administrator organizacije {p.tenant.name} ne otključa" in body(mail)
    assert "IP adresa: 127.0.0.1" in body(mail)
    page, _, _ = start(p, acr_values=ADVANCED, prompt="login")
    post_form(p, page, "/login/password", email=p.email, password="another guess")
    time.sleep(0.2)
    assert [m["Subject"] for m in new_mails(p.served, seen=seen) if m["To"] == p.email] == [mail["Subject"]]
    assert notices(p) == [{"notice": "locked"}]


def test_a_lock_of_an_eid_never_invited_is_told_in_the_default_language(
    party: PartyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    p, _ = advanced_party(party)
    seen = outbox_names(p.served)
    _guess_until_locked(p, monkeypatch)
    mail = wait_for_mail(p.served, p.email, seen=seen)
    assert mail["Subject"] == "Vaš eID je bil zaklenjen"  # the service's first language


def test_a_notice_that_cannot_be_delivered_is_audited_and_the_change_stands(
    party: PartyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    p, _ = signed_in_advanced(party)

    async def refuse(_message: EmailMessage) -> None:
        raise DeliveryError("the mail server refused the message")

    monkeypatch.setattr(p.served.state.mailer, "send", refuse)
    form = p.rp.browser.get("/account/password")
    done = post(p, form, "/account/password", password=NEW_SECRET, password_repeat=NEW_SECRET)
    assert done.status_code == 303 and done.headers["location"] == "/account?done=password"
    assert wait_for_notices(p, 1) == [
        {"notice": "password_changed", "error": "the mail server refused the message"}
    ]
    failed = [e for e in audit_events(p.served) if e["event_type"] == "security_notice.delivery_failed"]
    assert failed and failed[-1]["success"] is False
    page = p.rp.browser.get("/account")
    assert "Security notice could not be delivered" in page.text
    # the new password is the one in use
    page, _, _ = start(p, acr_values=ADVANCED, prompt="login")
    assert post_form(p, page, "/login/password", password=NEW_SECRET).status_code == 303
