"""An invitation to an address that already has an eID: enrol what the level needs on an eID that
signs in by email link alone, and send every other eID to sign in, through the served app."""

from __future__ import annotations

import re
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from idp import account, eids, lockout, proofing, sessions
from idp.storage import tables
from levels_of_assurance.authenticators import password
from otp import authenticator_app, totp
from tests.oidc.conftest import Party, PartyFactory, audit_events, redirect_query
from tests.oidc.test_advanced_login import ADVANCED, PHONE, enrol, sms_code, sms_count
from tests.oidc.test_onboarding import PASSWORD, RETURN_URL, _invitation_row, action_of, invite, post, step
from tests.support.flows import form_value

EMAIL = "new.signer@example.com"  # the address test_onboarding.invite invites
OLD_PHONE = "+38641000111"


def email_only_party(party: PartyFactory) -> Party:
    """A person whose eID has a name, an email and an unverified old number, and no way to sign in
    but the emailed link."""
    p = party(
        email=EMAIL, attributes={"given_name": "Ana", "family_name": "Horvat", "phone_number": OLD_PHONE}
    )
    assert p.eid is not None
    return p


def open_invitation(p: Party, **kwargs: object) -> httpx.Response:
    link = urllib.parse.urlsplit(invite(p, **kwargs))  # type: ignore[arg-type]
    return p.rp.browser.get(f"{link.path}?{link.query}")


def start(p: Party, page: httpx.Response) -> httpx.Response:
    return step(p, post(p, page, "/invite", token=form_value(page.text, "token")))


def confirm_phone(p: Party, phone_page: httpx.Response) -> httpx.Response:
    before = sms_count(p.served)
    entry = step(p, post(p, phone_page, action_of(phone_page, "/phone/send")))
    code = sms_code(p.served, PHONE, after=before)
    return step(
        p,
        post(
            p,
            entry,
            action_of(entry, "/phone"),
            challenge_id=form_value(entry.text, "challenge_id"),
            code=code,
        ),
    )


def to_finish(p: Party, password_page: httpx.Response) -> httpx.Response:
    """From the password step through the recovery codes (ten shown) to the finish page."""
    recovery = step(
        p,
        post(
            p,
            password_page,
            action_of(password_page, "/password"),
            password=PASSWORD,
            password_repeat=PASSWORD,
        ),
    )
    shown = post(p, recovery, action_of(recovery, "/recovery"))
    assert len(re.findall(r"<code>([A-Z0-9]{5}-[A-Z0-9]{5})</code>", shown.text)) == 10
    return step(
        p,
        post(
            p, shown, action_of(shown, "/recovery/saved"), recovery_set=form_value(shown.text, "recovery_set")
        ),
    )


def finish_and_ask_for_advanced(p: Party, finish_page: httpx.Response) -> dict[str, object]:
    """Finish the steps (back at the relying app), then the app asks for the advanced level without
    a prompt: the ID token's claims, from the session the steps began."""
    done = post(p, finish_page, action_of(finish_page, "/finish"))
    assert done.status_code == 303 and done.headers["location"] == RETURN_URL
    params, verifier = p.rp.authorize_params(acr_values=ADVANCED, prompt="none")
    tokens = p.rp.exchange(redirect_query(p.rp.start(params), p.rp.redirect_uri)["code"], verifier).json()
    claims: dict[str, object] = p.rp.verify_id_token(tokens["id_token"], nonce=params["nonce"])
    return claims


def reload(p: Party) -> eids.EID:
    assert p.eid is not None
    eid_id = p.eid.id
    return p.served.run(p.served.state.db.read(lambda conn: eids.get(conn, eid_id)))


def test_an_eid_that_signs_in_by_email_link_gets_what_the_invitation_needs(party: PartyFactory) -> None:
    p = email_only_party(party)
    page = open_invitation(p)
    assert page.status_code == 200 and "Make your eID ready for a stronger sign-in" in page.text
    assert (
        "So far you sign in with it by a link" in page.text and "Your details stay as they are" in page.text
    )

    phone_page = start(p, page)
    assert "Confirm your mobile number" in phone_page.text and "Step 1 of 4" in phone_page.text
    # the link opened again in the middle of the steps still makes the same offer, and continues
    again = p.rp.browser.get(str(page.url))
    assert "Make your eID ready for a stronger sign-in" in again.text and "create your eID" not in again.text
    assert "Step 1 of 4" in start(p, again).text
    factor = confirm_phone(p, phone_page)  # no details step: the eID's own stay
    assert "How do you want to receive sign-in codes?" in factor.text and "Step 2 of 4" in factor.text
    password_page = step(p, post(p, factor, action_of(factor, "/factor"), factor="sms"))
    assert "Choose a password" in password_page.text and "Step 3 of 4" in password_page.text
    finish_page = to_finish(p, password_page)
    assert "sign in with your eID." in finish_page.text and "new eID" not in finish_page.text
    claims = finish_and_ask_for_advanced(p, finish_page)
    assert claims["acr"] == ADVANCED and claims["amr"] == ["pwd", "sms", "mfa"]

    person = reload(p)
    assert p.eid is not None and person.id == p.eid.id and person.status == eids.EIDStatus.ACTIVE
    # the eID's details are its own, not the sender's prefill; the number is the one confirmed now
    assert (
        person.attributes["given_name"].value == "Ana" and person.attributes["family_name"].value == "Horvat"
    )
    assert person.attributes["phone_number"].value == PHONE
    assert person.attributes["phone_number"].verified_method == "sms"
    has = p.served.run(p.served.state.db.read(lambda conn: account.enrolled(conn, person)))
    assert has.password and has.phone == PHONE and has.recovery_codes_left == 10 and has.can_reach_advanced
    found = p.served.run(
        p.served.state.db.read(lambda conn: eids.find_by_email(conn, tenant_id=p.tenant.id, email=EMAIL))
    )
    assert found is not None and found.id == person.id  # no second eID for the address

    # the person's own account page tells what the invitation did to their eID
    account_page = p.rp.browser.get("/account")
    assert account_page.status_code == 200 and "Sign-in set up from an invitation" in account_page.text
    assert "eID set-up finished" not in account_page.text

    events = [e for e in audit_events(p.served) if e["tenant_id"] == p.tenant.id]
    kinds = [e["event_type"] for e in events]
    assert kinds.count("eid.created") == 1  # the eID the party made, none by the invitation
    assert "eid.status_changed" not in kinds
    existing = [e for e in events if e["event_type"] == "invitation.existing_eid"]
    assert len(existing) == 1 and existing[0]["eid_id"] == person.id
    for expected in (
        "password.set",
        "recovery_codes.issued",
        "eid.attributes_verified",
        "invitation.completed",
    ):
        assert expected in kinds, expected


def _with_password(p: Party) -> None:
    assert p.eid is not None
    p.served.set_password(p.eid, "an older password of hers")


def _with_app_and_password(p: Party) -> None:
    assert p.eid is not None
    enrol(p.served, p.eid)


def _with_password_and_its_own_phone(p: Party) -> None:
    """A password and SMS codes to a verified number that is not the one the sender gave."""
    assert p.eid is not None
    enrol(p.served, p.eid, app=False)


def _with_an_app(p: Party) -> None:
    assert p.eid is not None
    eid_id, key = p.eid.id, p.served.settings.secret_key

    def unit(tx: Any) -> None:
        started = authenticator_app.begin_enrolment(
            tx, eid_id=eid_id, account_name=EMAIL, issuer_name="Test", sealing_key=key, now=time.time()
        )
        code = totp.code_at(secret=started.secret, for_time=time.time() - 30)
        authenticator_app.confirm_enrolment(
            tx, eid_id=eid_id, enrolment_id=started.enrolment_id, code=code, sealing_key=key, now=time.time()
        )

    p.served.write(unit)


def _app_row(p: Party) -> str | None:
    assert p.eid is not None
    eid_id = p.eid.id
    t = tables.totp_credentials.c
    return p.served.run(
        p.served.state.db.read(
            lambda conn: conn.execute(
                select(t.id).where((t.eid_id == eid_id) & t.confirmed_at.is_not(None))
            ).scalar()
        )
    )


def _proofed(p: Party) -> None:
    assert p.eid is not None
    eid_id = p.eid.id
    p.served.write(
        lambda tx: proofing.record(tx, eid_id=eid_id, method="video", level="qualified", evidence_id="e-1")
    )


def _suspended(p: Party) -> None:
    assert p.eid is not None
    eid_id = p.eid.id
    p.served.write(lambda tx: eids.suspend(tx, eid_id=eid_id, reason="admin"))


def _locked(p: Party) -> None:
    assert p.eid is not None
    eid_id, tenant_id = p.eid.id, p.tenant.id
    p.served.write(lambda tx: lockout.lock(tx, eid_id=eid_id, tenant_id=tenant_id, reason="admin"))


@pytest.mark.parametrize(
    "setup",
    [_with_app_and_password, _with_password_and_its_own_phone, _with_an_app, _proofed, _suspended, _locked],
    ids=lambda f: f.__name__.strip("_"),
)
def test_any_other_existing_eid_is_sent_to_sign_in(
    party: PartyFactory, setup: Callable[[Party], None]
) -> None:
    p = email_only_party(party)
    before = open_invitation(p)  # the page offers to set up what the level needs …
    assert "Make your eID ready for a stronger sign-in" in before.text
    setup(p)  # … and then the eID changes
    page = p.rp.browser.get(str(before.url))
    assert "You already have an eID" in page.text and 'action="/invite"' not in page.text
    # the start posted from the page opened before enrols nothing on that eID: it is the new-eID
    # path, whose details step refuses a second eID for the address
    started = start(p, before)
    assert "Step 1 of 5" in started.text
    kinds = [e["event_type"] for e in audit_events(p.served) if e["tenant_id"] == p.tenant.id]
    assert "invitation.existing_eid" not in kinds and kinds.count("eid.created") == 1


def test_an_eid_whose_verified_number_is_the_invitations_proves_its_password(party: PartyFactory) -> None:
    """A verified number is a code method the invitation must not get around, unless it is the
    invitation's own: then the SMS step proves it, with the password, before anything is added."""
    p = party(email=EMAIL, attributes={"given_name": "Ana", "family_name": "Horvat", "phone_number": PHONE})
    _with_password_and_its_own_phone(p)
    page = open_invitation(p)
    assert "Make your eID ready for a stronger sign-in" in page.text
    assert "Enter your password" in start(p, page).text


@pytest.mark.parametrize("step_name", ["phone", "factor"])
def test_what_the_eid_got_after_the_link_was_opened_is_not_replaced(
    party: PartyFactory, step_name: str
) -> None:
    """Another invitation completed (or an administrator) gave the eID an app, a password or a
    number while this one's steps ran: the next step changes nothing and sends the person to sign
    in, and the eID keeps its app."""
    p = email_only_party(party)
    phone_page = start(p, open_invitation(p))
    if step_name == "phone":
        _with_app_and_password(p)  # a password, a verified number of its own and an app
        owners_app = _app_row(p)
        before = sms_count(p.served)
        entry = step(p, post(p, phone_page, action_of(phone_page, "/phone/send")))
        code = sms_code(p.served, PHONE, after=before)
        challenge = form_value(entry.text, "challenge_id")
        refused = post(p, entry, action_of(entry, "/phone"), challenge_id=challenge, code=code)
    else:
        factor = confirm_phone(p, phone_page)
        app_page = post(p, factor, action_of(factor, "/factor"), factor="app")
        uri = form_value(app_page.text, "provisioning_uri")
        secret = urllib.parse.parse_qs(urllib.parse.urlsplit(uri).query)["secret"][0]
        _with_an_app(p)
        owners_app = _app_row(p)
        refused = post(
            p,
            app_page,
            action_of(app_page, "/app"),
            enrolment_id=form_value(app_page.text, "enrolment_id"),
            code=totp.code_at(secret=secret, for_time=time.time()),
        )
    assert refused.status_code == 409 and "You already have an eID" in refused.text
    assert owners_app is not None and _app_row(p) == owners_app
    assert reload(p).value("phone_number") == OLD_PHONE


def test_an_invitation_at_the_basic_level_sends_an_email_only_eid_to_sign_in(party: PartyFactory) -> None:
    p = email_only_party(party)
    page = open_invitation(p, level="urn:eid:loa:basic")
    assert "You already have an eID" in page.text


def test_a_password_set_on_the_eid_during_the_steps_is_not_replaced(
    party: PartyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = email_only_party(party)
    factor = confirm_phone(p, start(p, open_invitation(p)))
    password_page = step(p, post(p, factor, action_of(factor, "/factor"), factor="sms"))
    _with_password(p)  # an administrator set one meanwhile
    assert p.eid is not None
    eid_id = p.eid.id
    kept = p.served.run(p.served.state.db.read(lambda conn: password.stored_hash(conn, eid_id=eid_id)))
    raced = post(
        p, password_page, action_of(password_page, "/password"), password=PASSWORD, password_repeat=PASSWORD
    )
    assert raced.status_code == 409 and "You already have an eID" in raced.text
    after = p.served.run(p.served.state.db.read(lambda conn: password.stored_hash(conn, eid_id=eid_id)))
    assert after == kept


def test_an_eid_suspended_during_the_steps_is_not_signed_in(party: PartyFactory) -> None:
    p = email_only_party(party)
    factor = confirm_phone(p, start(p, open_invitation(p)))
    finish_page = to_finish(p, step(p, post(p, factor, action_of(factor, "/factor"), factor="sms")))
    _suspended(p)
    refused = post(p, finish_page, action_of(finish_page, "/finish"))
    assert refused.status_code == 409 and "You already have an eID" in refused.text
    assert sessions.COOKIE_NAME not in refused.headers.get("set-cookie", "")
    invitation_id = action_of(finish_page, "/finish").split("/")[2]
    row = p.served.run(p.served.state.db.read(lambda conn: _invitation_row(conn, invitation_id)))
    assert row.completed_at is None
    assert reload(p).status == eids.EIDStatus.SUSPENDED


@pytest.mark.parametrize(
    ("language", "title"),
    [
        ("sl", "Pripravite svoj eID na močnejšo prijavo"),
        ("hr", "Pripremite svoj eID za snažniju prijavu"),
        ("sr-Latn", "Pripremite svoj eID za jaču prijavu"),
    ],
)
def test_the_offer_is_in_the_language_the_sender_chose(
    party: PartyFactory, language: str, title: str
) -> None:
    p = email_only_party(party)
    page = open_invitation(p, language=language)
    assert f'<html lang="{language}">' in page.text and title in page.text


def test_an_eid_with_a_password_proves_it_and_gets_a_code_method(party: PartyFactory) -> None:
    p = email_only_party(party)
    _with_password(p)
    assert p.eid is not None
    eid_id = p.eid.id
    kept = p.served.run(p.served.state.db.read(lambda conn: password.stored_hash(conn, eid_id=eid_id)))
    page = open_invitation(p)
    assert "Make your eID ready for a stronger sign-in" in page.text
    assert "Enter the password of your eID." in page.text and "Choose a password." not in page.text

    # the password comes first: nothing is added to the eID before it is entered
    password_page = start(p, page)
    assert "Enter your password" in password_page.text and "Step 1 of 4" in password_page.text
    again = p.rp.browser.get(str(page.url))
    assert "Enter the password of your eID." in again.text
    assert 'autocomplete="current-password"' in password_page.text
    wrong = post(p, password_page, action_of(password_page, "/password"), password="not hers at all")
    assert wrong.status_code == 401 and "The password is not correct." in wrong.text
    phone_page = step(p, post(p, wrong, action_of(wrong, "/password"), password="an older password of hers"))
    assert "Confirm your mobile number" in phone_page.text and "Step 2 of 4" in phone_page.text
    factor = confirm_phone(p, phone_page)
    assert "Step 3 of 4" in factor.text
    app_page = post(p, factor, action_of(factor, "/factor"), factor="app")
    uri = form_value(app_page.text, "provisioning_uri")
    secret = urllib.parse.parse_qs(urllib.parse.urlsplit(uri).query)["secret"][0]
    recovery = step(
        p,
        post(
            p,
            app_page,
            action_of(app_page, "/app"),
            enrolment_id=form_value(app_page.text, "enrolment_id"),
            code=totp.code_at(secret=secret, for_time=time.time()),
        ),
    )
    assert "Save your recovery codes" in recovery.text and "Step 4 of 4" in recovery.text
    shown = post(p, recovery, action_of(recovery, "/recovery"))
    finish_page = step(
        p,
        post(
            p, shown, action_of(shown, "/recovery/saved"), recovery_set=form_value(shown.text, "recovery_set")
        ),
    )
    claims = finish_and_ask_for_advanced(p, finish_page)
    assert claims["acr"] == ADVANCED and claims["amr"] == ["pwd", "otp", "mfa"]
    after = p.served.run(p.served.state.db.read(lambda conn: password.stored_hash(conn, eid_id=eid_id)))
    assert after == kept  # entered, never replaced
    events = [e for e in audit_events(p.served) if e["eid_id"] == eid_id]
    failed = [e for e in events if e["event_type"] == "login.failed"]
    assert len(failed) == 1 and failed[0]["details"]["reason"] == "wrong_password"
    assert any(e["event_type"] == "login.factor_proven" for e in events)


def test_guessing_the_password_of_an_existing_eid_is_throttled_as_at_sign_in(party: PartyFactory) -> None:
    p = email_only_party(party)
    _with_password(p)
    password_page = start(p, open_invitation(p))
    action = action_of(password_page, "/password")
    answers = [post(p, password_page, action, password=f"guess number {n}") for n in range(5)]
    assert [a.status_code for a in answers[:4]] == [401, 401, 401, 401]
    assert answers[4].status_code == 429 and "Too many failed attempts" in answers[4].text
    assert int(answers[4].headers["Retry-After"]) >= 1


@pytest.mark.parametrize("change", [_suspended, _locked], ids=["suspended", "locked"])
def test_an_eid_suspended_or_locked_during_the_steps_is_told_so_only_with_its_password(
    party: PartyFactory, change: Callable[[Party], None]
) -> None:
    """As at sign-in: a wrong password says only that it is wrong; the right one says why the eID
    cannot go on, and nothing is added to it."""
    p = email_only_party(party)
    _with_password(p)
    password_page = start(p, open_invitation(p))
    change(p)
    action = action_of(password_page, "/password")
    wrong = post(p, password_page, action, password="not hers at all")
    assert wrong.status_code == 401 and "The password is not correct." in wrong.text
    right = post(p, wrong, action, password="an older password of hers")
    said = "suspended or blocked" if change is _suspended else "locked after too many failed attempts"
    assert right.status_code == 401 and said in right.text and "Confirm your mobile number" not in right.text
    assert p.eid is not None
    eid_id = p.eid.id
    events = [e for e in audit_events(p.served) if e["eid_id"] == eid_id]
    failed = [e["details"]["reason"] for e in events if e["event_type"] == "login.failed"]
    assert failed == ["wrong_password", "eid_not_active" if change is _suspended else "locked"]
    assert not any(e["event_type"] == "login.factor_proven" for e in events)
    assert {e["process_state"] for e in events if e["event_type"] == "login.failed"} == {"onboarding"}


@pytest.mark.parametrize("entered", ["", "\x00\x00", "x" * 1500, "\u202e\ufeff", "' OR 1=1 --", "x" * 5000])
def test_hostile_passwords_at_the_existing_password_step_are_wrong_not_errors(
    party: PartyFactory, entered: str
) -> None:
    p = email_only_party(party)
    _with_password(p)
    password_page = start(p, open_invitation(p))
    answer = post(p, password_page, action_of(password_page, "/password"), password=entered)
    if len(entered) > 4096:  # beyond what a form field may carry: a bad request (a browser's is a page)
        assert answer.status_code == 400 and "maximum size" in answer.text
    else:
        assert answer.status_code == 401 and "The password is not correct." in answer.text


def test_an_eid_erased_during_the_steps_ends_them_with_a_clear_page(party: PartyFactory) -> None:
    """An administrator erases the eID (GDPR) while its invitation's steps run: the foreign key
    clears the invitation's eID, and every step says so instead of going round in circles."""
    p = email_only_party(party)
    page = open_invitation(p)
    factor = confirm_phone(p, start(p, page))
    assert p.eid is not None
    eid_id = p.eid.id
    p.served.write(lambda tx: eids.erase(tx, eid_id=eid_id, reason="gdpr", actor="admin"))
    chose = post(p, factor, action_of(factor, "/factor"), factor="sms")
    assert chose.status_code == 400 and "has been deleted. Ask the sender for a new invitation." in chose.text
    again = p.rp.browser.get(urllib.parse.urlsplit(str(factor.url)).path)
    assert again.status_code == 400 and "has been deleted" in again.text
    link = p.rp.browser.get(str(page.url))
    assert link.status_code == 400 and "has been deleted" in link.text
