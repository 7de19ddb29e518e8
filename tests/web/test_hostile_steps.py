"""One hostile field at a time, past a valid first step, in every multi-step browser flow.

The sweep (:mod:`tests.web.test_hostile_sweep`) fills every field with garbage at once, so a route
that refuses an early field never reads a later one. Here a real flow is driven to each step with
valid data, and that step's form is sent again with ONE field replaced by hostile values while
the others stay valid: NUL, invalid UTF-8 and an encoded lone surrogate in multipart, 100 kB,
empty, whitespace, confusables, digits for text and letters for digits, the field repeated or
missing, the ids of another browser or another person, the CSRF token of another session.

Each answer must be below 500 and, unless it is a redirect, an HTML page; nothing that matters
(eIDs, attributes, credentials, sessions, logins, invitations, links) may change; and afterwards
the step still works with valid input.

On both engines: text PostgreSQL cannot hold (NUL) fails only there.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.parse
from collections.abc import Sequence

import httpx
import pytest
from sqlalchemy import select

from idp.errors import LoginError
from idp.storage import tables
from levels_of_assurance.authenticators import email_link, recovery_codes
from otp import totp
from tests.oidc.conftest import Party, PartyFactory, outbox_names, wait_for_mail
from tests.oidc.test_account import new_number, signed_in_advanced
from tests.oidc.test_advanced_login import (
    ADVANCED,
    PHONE,
    SECRET,
    advanced_party,
    follow,
    password_step,
    sms_code,
    sms_count,
    start,
)
from tests.oidc.test_onboarding import PASSWORD, action_of, invite
from tests.oidc.test_passkey_login import embedded_options, register
from tests.oidc.test_password_reset import reset_link
from tests.support.flows import form_value
from tests.support.hostile import (
    TEXT_CASES,
    Form,
    app,  # noqa: F401  (the module's served app, per engine)
    cross_cases,
    csrf_of,
    other_browser,
    problems_of,
    snapshot,
    sweep,
)
from tests.support.hostile import party as party
from tests.support.soft_authenticator import SoftPasskey


def test_password_on_the_first_page(party: PartyFactory) -> None:
    p, _ = advanced_party(party)
    page, _, _ = start(p, acr_values=ADVANCED)
    fields = {
        "csrf_token": csrf_of(page),
        "request_id": form_value(page.text, "request_id"),
        "email": p.email,
        "password": SECRET,
    }
    other = other_browser(p, party)
    form = Form(p.rp.browser, "/login/password", fields, cross_cases(other, "request_id", "csrf_token"))
    sweep(p, form, list(fields))
    assert "Enter your one-time code" in follow(p, form.post(fields)).text


def test_email_link_request_and_opening(party: PartyFactory) -> None:
    p = party()
    page, _, _ = start(p)  # the basic level: the page offers a sign-in link
    fields = {
        "csrf_token": csrf_of(page),
        "request_id": form_value(page.text, "request_id"),
        "email": p.email,
    }
    other = other_browser(p, party)
    form = Form(p.rp.browser, "/login/email", fields, cross_cases(other, "request_id", "csrf_token"))
    sweep(p, form, list(fields))
    seen = outbox_names(p.served)
    sent = form.post(fields)
    assert sent.status_code == 303, sent.text[:500]
    mail_link = _login_link(p, seen)
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(mail_link).query)["token"][0]

    before = snapshot(p.served, p.tenant.id)
    found: list[str] = []
    for case, value in {**TEXT_CASES, "100kB": "x" * 8_000, "another's": secrets.token_urlsafe(32)}.items():
        opened = p.rp.browser.get("/login/email/verify", params={"token": value})
        found.extend(problems_of(f"GET token={case}", opened))
    assert not found, "\n".join(found)
    assert snapshot(p.served, p.tenant.id) == before

    confirm = p.rp.browser.get(mail_link)
    assert confirm.status_code == 200, confirm.text[:500]
    opening = Form(
        p.rp.browser,
        "/login/email/verify",
        {"csrf_token": csrf_of(confirm), "token": token},
        {"csrf_token of another browser": {"csrf_token": other["csrf_token"]}},
    )
    sweep(p, opening, ["csrf_token", "token"])
    done = opening.post(opening.fields)
    assert done.status_code == 303 and done.headers["location"].startswith("/authorize/resume"), done.text[
        :500
    ]


def _login_link(p: Party, seen: set[str]) -> str:
    body = wait_for_mail(p.served, p.email, seen=seen).get_body(("plain",))
    assert body is not None
    return next(w for w in body.get_content().split() if "/login/email/verify?token=" in w)


def test_authenticator_app_code(party: PartyFactory) -> None:
    p, secret = advanced_party(party)
    assert secret is not None
    page, _, _ = start(p, acr_values=ADVANCED)
    code_page = password_step(p, page)
    fields = {
        "csrf_token": csrf_of(code_page),
        "request_id": form_value(code_page.text, "request_id"),
        "method": "totp",
        "code": totp.code_at(secret=secret, for_time=time.time()),
    }
    other = other_browser(p, party)
    cases = cross_cases(other, "request_id", "csrf_token")
    cases["method of another kind"] = {"method": "recovery"}  # the person has no recovery codes
    form = Form(p.rp.browser, "/login/code", fields, cases)
    sweep(p, form, list(fields))
    fields["code"] = totp.code_at(secret=secret, for_time=time.time())
    done = form.post(fields)
    assert done.status_code == 303 and done.headers["location"].startswith(p.rp.redirect_uri), done.text[:500]


def _sms_page(p: Party, request_id: str) -> httpx.Response:
    return p.rp.browser.get("/login", params={"request_id": request_id, "method": "sms"})


def test_sms_code_and_its_resend(party: PartyFactory) -> None:
    p, _ = advanced_party(party, app=False)
    page, _, _ = start(p, acr_values=ADVANCED)
    code_page = password_step(p, page)
    request_id = form_value(code_page.text, "request_id")
    other = other_browser(p, party)
    send = Form(
        p.rp.browser,
        "/login/code/sms",
        {"csrf_token": csrf_of(code_page), "request_id": request_id},
        cross_cases(other, "request_id", "csrf_token"),
    )
    before_sms = sms_count(p.served)
    sweep(p, send, list(send.fields))
    assert sms_count(p.served) == before_sms, "a hostile resend sent an SMS"
    sent = send.post(send.fields)
    assert sent.status_code == 303, sent.text[:500]
    entry = p.rp.browser.get(sent.headers["location"])
    code = sms_code(p.served, PHONE, after=before_sms)
    # another person's SMS challenge, sent in their own sign-in
    q, _ = advanced_party(party, app=False)
    q_page, _, _ = start(q, acr_values=ADVANCED)
    q_code_page = password_step(q, q_page)
    q_sent = q.rp.browser.post(
        "/login/code/sms",
        data={"csrf_token": csrf_of(q_code_page), "request_id": form_value(q_code_page.text, "request_id")},
    )
    q_challenge = urllib.parse.parse_qs(urllib.parse.urlsplit(q_sent.headers["location"]).query)["challenge"][
        0
    ]
    fields = {
        "csrf_token": csrf_of(entry),
        "request_id": request_id,
        "method": "sms",
        "challenge_id": form_value(entry.text, "challenge_id"),
        "code": code,
    }
    cases = cross_cases(other, "request_id", "csrf_token")
    cases["challenge_id of another person"] = {"challenge_id": q_challenge}
    form = Form(p.rp.browser, "/login/code", fields, cases)
    sweep(p, form, list(fields))
    done = form.post(fields)
    assert done.status_code == 303 and done.headers["location"].startswith(p.rp.redirect_uri), done.text[:500]


PASSKEY_JSON_CASES = [
    "{}",
    "[]",
    "null",
    "1",
    '"x"',
    "{" * 5_000,
    json.dumps({"id": 5, "rawId": [], "response": "x", "type": 1}),
    json.dumps({"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": {}}),
]


def _wrong_types(credential: str) -> list[str]:
    """The valid credential with one member of the wrong type at a time."""
    valid = json.loads(credential)
    out = []
    for path, value in [
        (("id",), 123),
        (("rawId",), None),
        (("type",), ["public-key"]),
        (("response",), "response"),
        (("response", "clientDataJSON"), 42),
        (("response", "authenticatorData"), {"a": 1}),
        (("response", "signature"), True),
        (("response", "userHandle"), 7),
        (("response", "clientDataJSON"), "!!not base64url!!"),
    ]:
        changed = json.loads(json.dumps(valid))
        target = changed
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        out.append(json.dumps(changed))
    return out


def test_passkey_submit(party: PartyFactory) -> None:
    p = party()
    device = register(p)
    page, _, _ = start(p, acr_values=ADVANCED)
    credential = device.authenticate(embedded_options(page), p.served.issuer)
    fields = {
        "csrf_token": csrf_of(page),
        "request_id": form_value(page.text, "request_id"),
        "challenge_id": form_value(page.text, "challenge_id"),
        "credential": credential,
    }
    other = other_browser(p, party)
    cases = cross_cases(other, "request_id", "csrf_token")
    for i, garbage in enumerate([*PASSKEY_JSON_CASES, *_wrong_types(credential)]):
        cases[f"credential json {i}"] = {"credential": garbage}
    # another person's passkey, on this page's challenge
    q = party(email=f"q-{secrets.token_hex(4)}@example.com")
    cases["credential of another person"] = {
        "credential": register(q).authenticate(embedded_options(page), p.served.issuer)
    }
    form = Form(p.rp.browser, "/login/passkey", fields, cases)
    sweep(p, form, list(fields))
    page, _, _ = start(p, acr_values=ADVANCED)
    done = form.post(
        {
            "csrf_token": csrf_of(page),
            "request_id": form_value(page.text, "request_id"),
            "challenge_id": form_value(page.text, "challenge_id"),
            "credential": device.authenticate(embedded_options(page), p.served.issuer),
        }
    )
    assert done.status_code == 303 and done.headers["location"].startswith(p.rp.redirect_uri), done.text[:500]


# -- onboarding from an invitation -------------------------------------------------------------------


def _onboarding_form(p: Party, page: httpx.Response, suffix: str, **fields: str) -> Form:
    """The form of the onboarding step on ``page`` that posts to ``…suffix``."""
    return Form(p.rp.browser, action_of(page, suffix), {"csrf_token": csrf_of(page), **fields})


def _sweep_onboarding(p: Party, form: Form, names: Sequence[str], other_invitation: str) -> None:
    sweep(p, form, names)
    # the same step of an invitation opened in another browser: a clear page, nothing written
    theirs = form.action.replace(form.action.split("/")[2], other_invitation)
    before = snapshot(p.served, p.tenant.id)
    response = form.post(form.fields, action=theirs)
    assert not problems_of("another browser's invitation", response), response.text[:500]
    assert response.status_code == 400 and "in another browser" in response.text
    assert snapshot(p.served, p.tenant.id) == before


def test_onboarding_every_step(party: PartyFactory) -> None:
    p = party(email=None)
    # another browser opens another invitation of the same tenant
    q = party(email=None, tenant=p.tenant)
    q_link = urllib.parse.urlsplit(invite(q))
    q_welcome = q.rp.browser.get(f"{q_link.path}?{q_link.query}")
    q_started = q.rp.browser.post(
        "/invite", data={"csrf_token": csrf_of(q_welcome), "token": form_value(q_welcome.text, "token")}
    )
    other_invitation = q_started.headers["location"].rsplit("/", 1)[1]

    link = urllib.parse.urlsplit(invite(p))
    welcome = p.rp.browser.get(f"{link.path}?{link.query}")
    opening = Form(
        p.rp.browser, "/invite", {"csrf_token": csrf_of(welcome), "token": form_value(welcome.text, "token")}
    )
    sweep(p, opening, ["csrf_token", "token"])
    phone_page = p.rp.browser.get(opening.post(opening.fields).headers["location"])
    assert "Confirm your mobile number" in phone_page.text

    send = _onboarding_form(p, phone_page, "/phone/send")
    before = sms_count(p.served)
    _sweep_onboarding(p, send, ["csrf_token"], other_invitation)
    assert sms_count(p.served) == before
    entry = p.rp.browser.get(send.post(send.fields).headers["location"])
    code = sms_code(p.served, PHONE, after=before)
    confirm = _onboarding_form(
        p, entry, "/phone", challenge_id=form_value(entry.text, "challenge_id"), code=code
    )
    _sweep_onboarding(p, confirm, ["csrf_token", "challenge_id", "code"], other_invitation)
    details = p.rp.browser.get(confirm.post(confirm.fields).headers["location"])
    assert "Nina" in details.text

    confirm_details = _onboarding_form(p, details, "/details", confirm="yes")
    _sweep_onboarding(p, confirm_details, ["csrf_token", "confirm"], other_invitation)
    factor = p.rp.browser.get(confirm_details.post(confirm_details.fields).headers["location"])
    assert "How do you want to receive sign-in codes?" in factor.text

    choose = _onboarding_form(p, factor, "/factor", factor="app")
    _sweep_onboarding(p, choose, ["csrf_token", "factor"], other_invitation)
    app_page = choose.post(choose.fields)
    assert app_page.status_code == 200 and "<svg" in app_page.text
    uri = form_value(app_page.text, "provisioning_uri")
    secret = urllib.parse.parse_qs(urllib.parse.urlsplit(uri).query)["secret"][0]
    shown = {
        "enrolment_id": form_value(app_page.text, "enrolment_id"),
        "provisioning_uri": uri,
        "manual_key": form_value(app_page.text, "manual_key"),
    }
    enrol = _onboarding_form(p, app_page, "/app", **shown, code="000000")
    # what is shown again after a wrong code comes from the form: hostile, with a wrong code
    _sweep_onboarding(p, enrol, ["provisioning_uri", "manual_key"], other_invitation)
    enrol.fields["code"] = totp.code_at(secret=secret, for_time=time.time())
    _sweep_onboarding(p, enrol, ["csrf_token", "enrolment_id", "code"], other_invitation)
    enrol.fields["code"] = totp.code_at(secret=secret, for_time=time.time())
    password_page = p.rp.browser.get(enrol.post(enrol.fields).headers["location"])
    assert 'name="password_repeat"' in password_page.text

    set_password = _onboarding_form(
        p, password_page, "/password", password=PASSWORD, password_repeat=PASSWORD
    )
    _sweep_onboarding(p, set_password, ["csrf_token", "password", "password_repeat"], other_invitation)
    recovery = p.rp.browser.get(set_password.post(set_password.fields).headers["location"])

    show = _onboarding_form(p, recovery, "/recovery")
    _sweep_onboarding(p, show, ["csrf_token"], other_invitation)
    codes_page = show.post(show.fields)
    assert codes_page.status_code == 200
    saved = _onboarding_form(
        p, codes_page, "/recovery/saved", recovery_set=form_value(codes_page.text, "recovery_set")
    )
    _sweep_onboarding(p, saved, ["csrf_token", "recovery_set"], other_invitation)
    finish_page = p.rp.browser.get(saved.post(saved.fields).headers["location"])

    done = _onboarding_form(p, finish_page, "/finish")
    _sweep_onboarding(p, done, ["csrf_token"], other_invitation)
    finished = done.post(done.fields)
    assert finished.status_code == 303 and finished.headers["location"].startswith("https://rp.example/sign")


# -- the account pages ----------------------------------------------------------------------------


def _account_form(p: Party, page_path: str, action: str, **fields: str) -> Form:
    page = p.rp.browser.get(page_path)
    assert page.status_code == 200, page.text[:500]
    return Form(p.rp.browser, action, {"csrf_token": csrf_of(page), **fields})


def test_account_changes(party: PartyFactory) -> None:
    p, _ = signed_in_advanced(party)
    other = other_browser(p, party)
    csrf_case = {"csrf_token of another browser": {"csrf_token": other["csrf_token"]}}

    change = _account_form(p, "/account/password", "/account/password", password="quiet amber falcon 19")
    change.fields["password_repeat"] = change.fields["password"]
    change.other = csrf_case
    sweep(p, change, ["csrf_token", "password", "password_repeat"])
    assert change.post(change.fields).headers["location"] == "/account?done=password"

    send = _account_form(p, "/account/phone", "/account/phone/send", phone=new_number())
    send.other = csrf_case
    before = sms_count(p.served)
    sweep(p, send, ["csrf_token", "phone"])
    sent = send.post(send.fields)
    assert sent.status_code == 303, sent.text[:500]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(sent.headers["location"]).query)
    code = sms_code(p.served, send.fields["phone"], after=before)
    confirm = _account_form(
        p, sent.headers["location"], "/account/phone", challenge_id=query["challenge"][0], to=query["to"][0]
    )
    confirm.fields["code"] = "abc"  # malformed: shown again without spending the code's attempts
    sweep(p, confirm, ["to"])
    confirm.fields["code"] = code
    confirm.other = csrf_case
    sweep(p, confirm, ["csrf_token", "challenge_id", "code"])
    assert confirm.post(confirm.fields).headers["location"] == "/account?done=phone"

    start_app = _account_form(p, "/account/app", "/account/app/start")
    start_app.other = csrf_case
    sweep(p, start_app, ["csrf_token"])
    app_page = start_app.post(start_app.fields)
    uri = form_value(app_page.text, "provisioning_uri")
    new_secret = urllib.parse.parse_qs(urllib.parse.urlsplit(uri).query)["secret"][0]
    enrol = Form(
        p.rp.browser,
        "/account/app",
        {
            "csrf_token": csrf_of(app_page),
            "enrolment_id": form_value(app_page.text, "enrolment_id"),
            "provisioning_uri": uri,
            "manual_key": form_value(app_page.text, "manual_key"),
            "code": "000000",
        },
    )
    sweep(p, enrol, ["provisioning_uri", "manual_key"])
    enrol.fields["code"] = totp.code_at(secret=new_secret, for_time=time.time())
    enrol.other = csrf_case
    sweep(p, enrol, ["csrf_token", "enrolment_id", "code"])
    enrol.fields["code"] = totp.code_at(secret=new_secret, for_time=time.time())
    assert enrol.post(enrol.fields).headers["location"] == "/account?done=app"

    recovery = _account_form(p, "/account/recovery", "/account/recovery")
    recovery.other = csrf_case
    sweep(p, recovery, ["csrf_token"])
    shown = recovery.post(recovery.fields)
    assert shown.status_code == 200
    saved = Form(
        p.rp.browser,
        "/account/recovery/saved",
        {"csrf_token": csrf_of(shown), "recovery_set": form_value(shown.text, "recovery_set")},
    )
    saved.other = csrf_case
    sweep(p, saved, ["csrf_token", "recovery_set"])
    assert saved.post(saved.fields).headers["location"] == "/account?done=recovery"

    mine = register(p)
    assert mine is not None
    q = party(email=f"q-{secrets.token_hex(4)}@example.com")
    register(q)
    theirs = q.served.run(
        q.served.state.db.read(
            lambda conn: conn.execute(
                select(tables.passkey_credentials.c.credential_id).where(
                    tables.passkey_credentials.c.eid_id == q.eid.id  # type: ignore[union-attr]
                )
            ).scalar_one()
        )
    )
    listed = p.rp.browser.get("/account/passkeys")
    remove = Form(
        p.rp.browser,
        "/account/passkeys/remove",
        {"csrf_token": csrf_of(listed), "credential_id": form_value(listed.text, "credential_id")},
        {**csrf_case, "credential_id of another person": {"credential_id": theirs}},
    )
    sweep(p, remove, ["csrf_token", "credential_id"])
    assert remove.post(remove.fields).headers["location"] == "/account?done=passkey_removed"

    page = p.rp.browser.get("/account/passkeys")
    options = page.text.split('id="passkey-options">')[1].split("</script>")[0]
    device = SoftPasskey()
    credential = device.register(options, p.served.issuer)
    add = Form(
        p.rp.browser,
        "/account/passkeys",
        {
            "csrf_token": csrf_of(page),
            "challenge_id": form_value(page.text, "challenge_id"),
            "credential": credential,
        },
        dict(csrf_case),
    )
    for i, garbage in enumerate(PASSKEY_JSON_CASES):
        add.other[f"credential json {i}"] = {"credential": garbage}
    sweep(p, add, ["csrf_token", "challenge_id", "credential"])
    page = p.rp.browser.get("/account/passkeys")
    options = page.text.split('id="passkey-options">')[1].split("</script>")[0]
    added = add.post(
        {
            "csrf_token": csrf_of(page),
            "challenge_id": form_value(page.text, "challenge_id"),
            "credential": device.register(options, p.served.issuer),
        }
    )
    assert added.headers["location"] == "/account?done=passkey_added", added.text[:500]

    block = _account_form(p, "/account/block", "/account/block", confirm="yes")
    block.other = csrf_case
    sweep(p, block, ["csrf_token", "confirm"])
    blocked = block.post(block.fields)
    assert blocked.status_code == 200 and snapshot(p.served, p.tenant.id)["eids"][0].count("blocked")


# -- password reset ----------------------------------------------------------------------------------


def test_password_reset_every_step(party: PartyFactory) -> None:
    p, secret = advanced_party(party)
    assert secret is not None
    other = other_browser(p, party)
    page, _, _ = start(p, acr_values=ADVANCED, prompt="login")
    form_page = p.rp.browser.get(f"/reset?request_id={form_value(page.text, 'request_id')}")
    ask = Form(
        p.rp.browser,
        "/reset",
        {
            "csrf_token": csrf_of(form_page),
            "request_id": form_value(form_page.text, "request_id"),
            "email": p.email,
        },
        cross_cases(other, "request_id", "csrf_token"),
    )
    sweep(p, ask, ["csrf_token", "request_id", "email"])
    seen = outbox_names(p.served)
    assert ask.post(ask.fields).status_code == 303
    link = reset_link(wait_for_mail(p.served, p.email, seen=seen))
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["token"][0]
    for case, value in {**TEXT_CASES, "100kB": "x" * 8_000}.items():
        opened = p.rp.browser.get("/reset/verify", params={"token": value})
        assert not problems_of(case, opened) and opened.status_code == 400, (case, opened.text[:300])
    entry = p.rp.browser.get(link)
    assert entry.status_code == 200

    sms = Form(p.rp.browser, "/reset/sms", {"csrf_token": csrf_of(entry), "token": token})
    sms.other = {"csrf_token of another browser": {"csrf_token": other["csrf_token"]}}
    before = sms_count(p.served)
    sweep(p, sms, ["csrf_token", "token"])
    assert sms_count(p.served) == before

    code = Form(
        p.rp.browser,
        "/reset/code",
        {"csrf_token": csrf_of(entry), "token": token, "method": "totp", "code": ""},
        {"csrf_token of another browser": {"csrf_token": other["csrf_token"]}},
    )
    code.fields["code"] = totp.code_at(secret=secret, for_time=time.time() + 30)
    sweep(p, code, ["csrf_token", "token", "method", "code"])
    code.fields["code"] = totp.code_at(secret=secret, for_time=time.time() + 30)
    good = code.post(code.fields)
    assert good.status_code == 303, good.text[:500]

    new_page = p.rp.browser.get(good.headers["location"])
    new = Form(
        p.rp.browser,
        "/reset/password",
        {
            "csrf_token": csrf_of(new_page),
            "request_id": form_value(new_page.text, "request_id"),
            "password": "amber quiet falcon 77",
            "password_repeat": "amber quiet falcon 77",
        },
        cross_cases(other, "request_id", "csrf_token"),
    )
    sweep(p, new, ["csrf_token", "request_id", "password", "password_repeat"])
    done = new.post(new.fields)
    assert done.status_code == 200 and "Your password was changed" in done.text


# -- a unit of work that commits, then one that fails ----------------------------------------------


def test_a_reset_whose_link_fails_after_the_code_keeps_the_recovery_code(
    party: PartyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The code and the link are one unit: when the link cannot be used (a racing tab used it,
    it expired while the code was typed), the recovery code is not spent for nothing."""
    p, _ = advanced_party(party, app=False)
    assert p.eid is not None
    eid_id = p.eid.id
    codes = p.served.write(lambda tx: recovery_codes.issue(tx, eid_id=eid_id, now=time.time()))
    page, _, _ = start(p, acr_values=ADVANCED, prompt="login")
    asked = p.rp.browser.get(f"/reset?request_id={form_value(page.text, 'request_id')}")
    seen = outbox_names(p.served)
    sent = p.rp.browser.post(
        "/reset",
        data={
            "csrf_token": csrf_of(asked),
            "request_id": form_value(asked.text, "request_id"),
            "email": p.email,
        },
    )
    assert sent.status_code == 303
    link = reset_link(wait_for_mail(p.served, p.email, seen=seen))
    entry = p.rp.browser.get(link)
    fields = {
        "csrf_token": csrf_of(entry),
        "token": urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["token"][0],
        "method": "recovery",
        "code": codes[0],
    }

    def link_gone(*args: object, **kwargs: object) -> None:
        raise LoginError(email_link.LinkProblem.USED, "used by a racing tab")

    with monkeypatch.context() as patched:
        patched.setattr(email_link, "consume", link_gone)
        refused = p.rp.browser.post("/reset/code", data=fields)
    assert refused.status_code == 400 and "This link cannot be used" in refused.text, refused.text[:500]
    left = p.served.run(p.served.state.db.read(lambda conn: recovery_codes.remaining(conn, eid_id=eid_id)))
    assert left == len(codes), "the recovery code was spent although the reset did not go on"
    # and it still works with the link, which nothing used
    good = p.rp.browser.post("/reset/code", data=fields)
    assert good.status_code == 303 and good.headers["location"].startswith("/reset/password?"), good.text[
        :500
    ]
