"""Onboarding from an invitation, through the served app, as the invited person would do it."""

from __future__ import annotations

import re
import time
import urllib.parse
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from idp import eids, invitations, sessions
from idp.clients import Client
from idp.delivery.sms import read_outbox
from idp.storage import tables
from idp.storage.database import Database, Tx
from idp.web import onboarding_routes
from idp.web.browser import BROWSER_COOKIE, csrf_token
from idp.web.i18n import LANGUAGE_COOKIE
from otp import totp
from otp.sms import Checked, PhoneVerifier
from tests.oidc.conftest import Party, PartyFactory, audit_events, outbox_names, redirect_query, wait_for_mail
from tests.oidc.test_advanced_login import ADVANCED, PHONE, enrol, post_form, sms_code, sms_count, start
from tests.support.flows import form_value
from tests.support.pages import as_read
from tests.support.server import ServedApp

PASSWORD = "violet lantern orbit 42"
RETURN_URL = "https://rp.example/sign?doc=17"
USED_HR = "Ova je pozivnica već iskorištena."


def invite(
    p: Party,
    *,
    level: str = ADVANCED,
    phone: str | None = PHONE,
    mail: bool = False,
    language: str | None = None,
) -> str:
    """An invitation for a new person in ``p``'s tenant; returns the link."""
    client = p.client.client

    def unit(tx: object) -> tuple[invitations.Invitation, str]:
        return invitations.create(
            tx,  # type: ignore[arg-type]
            tenant_id=p.tenant.id,
            email="new.signer@example.com",
            acr=level,
            ttl=3600,
            given_name="Nina",
            family_name="Kovač",
            phone_number=phone,
            country="SI",
            client=client if isinstance(client, Client) else None,
            return_url=RETURN_URL,
            language=language,
        )

    _, token = p.served.write(unit)
    return f"{p.served.issuer}/invite?token={token}"


def post(p: Party, page: httpx.Response, action: str, **fields: str) -> httpx.Response:
    response = p.rp.browser.post(action, data={"csrf_token": form_value(page.text, "csrf_token"), **fields})
    return response


def step(p: Party, response: httpx.Response) -> httpx.Response:
    assert response.status_code == 303, response.text[:3000]
    page = p.rp.browser.get(response.headers["location"])
    assert page.status_code == 200, page.text[:3000]
    return page


def action_of(page: httpx.Response, suffix: str) -> str:
    found = re.search(r'action="(/onboarding/[^"]+' + re.escape(suffix) + ')"', page.text)
    assert found, f"no form posting to …{suffix}: {page.text[:3000]}"
    return found.group(1)


def test_invitation_to_an_advanced_eid_and_back_to_the_relying_app(party: PartyFactory) -> None:
    p = party(email=None)
    link = invite(p)
    path = urllib.parse.urlsplit(link)
    welcome = p.rp.browser.get(f"{path.path}?{path.query}")
    assert "invites you to create your eID" in welcome.text
    phone_page = step(p, post(p, welcome, "/invite", token=form_value(welcome.text, "token")))
    assert "Confirm your mobile number" in phone_page.text and "Step 1 of 5" in phone_page.text

    before = sms_count(p.served)
    entry = step(p, post(p, phone_page, action_of(phone_page, "/phone/send")))
    code = sms_code(p.served, PHONE, after=before)
    # "Send a new code" at once: refused for now, and the page still takes the code already sent
    sent = form_value(entry.text, "challenge_id")
    assert entry.text.count(f'name="challenge_id" value="{sent}"') == 2  # the code form and the resend form
    too_soon = post(p, entry, action_of(entry, "/phone/send"), challenge_id=sent)
    assert too_soon.status_code == 429 and "You can ask for a new code in" in too_soon.text
    assert 'name="code"' in too_soon.text and form_value(too_soon.text, "challenge_id") == sent
    # switching the language on that answer comes back to the same code, not to "send a code"
    assert (
        form_value(too_soon.text, "next")
        == f"{action_of(entry, '/phone').removesuffix('/phone')}?challenge={sent}"
    )
    assert sms_count(p.served) == before + 1
    details = step(
        p,
        post(
            p,
            entry,
            action_of(entry, "/phone"),
            challenge_id=form_value(entry.text, "challenge_id"),
            code=code,
        ),
    )
    assert "Nina" in details.text and "Kovač" in details.text and "new.signer@example.com" in details.text

    factor = step(p, post(p, details, action_of(details, "/details"), confirm="yes"))
    assert "How do you want to receive sign-in codes?" in factor.text and "Step 3 of 5" in factor.text
    app_page = post(p, factor, action_of(factor, "/factor"), factor="app")
    assert app_page.status_code == 200 and "<svg" in app_page.text
    assert "Step 3 of 5" in app_page.text  # setting up the app is part of choosing it, not a step after
    uri = form_value(app_page.text, "provisioning_uri")
    secret = urllib.parse.parse_qs(urllib.parse.urlsplit(uri).query)["secret"][0]
    wrong = post(
        p,
        app_page,
        action_of(app_page, "/app"),
        enrolment_id=form_value(app_page.text, "enrolment_id"),
        provisioning_uri=uri,
        manual_key=form_value(app_page.text, "manual_key"),
        code="000000",
    )
    assert wrong.status_code == 401 and "<svg" in wrong.text  # the same key again, to retry
    # the field takes the focus after a wrong code; before the first, the QR code comes first
    assert re.search(r'<input id="code"[^>]*autofocus', wrong.text)
    assert not re.search(r'<input id="code"[^>]*autofocus', app_page.text)
    assert form_value(wrong.text, "enrolment_id") == form_value(app_page.text, "enrolment_id")
    hostile = post(
        p,
        wrong,
        action_of(wrong, "/app"),
        enrolment_id=form_value(wrong.text, "enrolment_id"),
        provisioning_uri="javascript:alert(document.cookie)",
        manual_key="<script>x</script>",
        code="111111",
    )
    # what the page posted back is shown again only as an otpauth:// link, and escaped
    assert hostile.status_code == 401 and "javascript:" not in hostile.text
    assert "<script>x</script>" not in hostile.text
    password_page = step(
        p,
        post(
            p,
            wrong,
            action_of(wrong, "/app"),
            enrolment_id=form_value(wrong.text, "enrolment_id"),
            code=totp.code_at(secret=secret, for_time=time.time()),
        ),
    )
    assert "Choose a password" in password_page.text and "Step 4 of 5" in password_page.text

    weak = post(
        p,
        password_page,
        action_of(password_page, "/password"),
        password="password1",
        password_repeat="password1",
    )
    assert weak.status_code == 400 and "too common" in weak.text
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
    first = post(p, recovery, action_of(recovery, "/recovery"))
    shown = post(p, recovery, action_of(recovery, "/recovery"))  # shown again in another window
    codes = re.findall(r"<code>([A-Z0-9]{5}-[A-Z0-9]{5})</code>", shown.text)
    assert len(codes) == 10 and codes[0] not in first.text
    # the second showing says the first set is void; each offers its own codes as a text file
    replaced = "codes shown to you before and not saved do not work"
    assert replaced in as_read(shown.text) and replaced not in as_read(first.text)
    download = re.search(
        r'href="data:text/plain;charset=utf-8,([^"]+)" download="recovery-codes.txt"', shown.text
    )
    assert download
    # the file says whose codes they are and from when, then lists them
    heading, made, blank, *listed = urllib.parse.unquote(download.group(1)).split("\r\n")
    assert listed == codes and not blank
    assert heading == f"Recovery codes of new.signer@example.com at {p.tenant.shown_name}", heading
    assert made.startswith("Made on 20") and " UTC. Each code lets you sign in once" in made
    stale = post(
        p, first, action_of(first, "/recovery/saved"), recovery_set=form_value(first.text, "recovery_set")
    )
    assert stale.status_code == 409 and "newer ones were made" in as_read(stale.text)
    assert "Show my recovery codes" in stale.text
    finish_page = step(
        p,
        post(
            p, shown, action_of(shown, "/recovery/saved"), recovery_set=form_value(shown.text, "recovery_set")
        ),
    )
    done = post(p, finish_page, action_of(finish_page, "/finish"))
    assert done.status_code == 303 and done.headers["location"] == RETURN_URL

    # back at the relying app: it asks for the advanced level and gets it without another login
    params, verifier = p.rp.authorize_params(acr_values=ADVANCED, prompt="none")
    query = redirect_query(p.rp.start(params), p.rp.redirect_uri)
    tokens = p.rp.exchange(query["code"], verifier).json()
    claims = p.rp.verify_id_token(tokens["id_token"], nonce=params["nonce"])
    assert claims["acr"] == ADVANCED
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    info = p.userinfo(tokens["access_token"]).json() if "access_token" in tokens else {}
    assert info.get("email") in (None, "new.signer@example.com")

    person = p.served.run(
        p.served.state.db.read(
            lambda conn: eids.find_by_email(conn, tenant_id=p.tenant.id, email="new.signer@example.com")
        )
    )
    assert person is not None and person.status == "active"
    assert person.attributes["email"].verified_method == "invitation_link"
    assert person.attributes["phone_number"].verified_method == "sms"
    kinds = [e["event_type"] for e in audit_events(p.served) if e["tenant_id"] == p.tenant.id]
    for expected in (
        "invitation.created",
        "invitation.opened",
        "otp.sms.verified",
        "eid.created",
        "password.set",
        "recovery_codes.issued",
        "invitation.completed",
        "session.authenticated",
    ):
        assert expected in kinds, expected

    # the link worked once
    again = p.rp.browser.get(f"{path.path}?{path.query}")
    assert again.status_code == 400 and "already used" in again.text


def _through_the_steps(p: Party, *, until: str, language: str | None = None) -> tuple[httpx.Response, str]:
    """The invitation's steps with the app, up to the page of step ``until`` ("recovery" or
    "finish"); returns that page and the app's key."""
    path = urllib.parse.urlsplit(invite(p, language=language))
    welcome = p.rp.browser.get(f"{path.path}?{path.query}")
    phone_page = step(p, post(p, welcome, "/invite", token=form_value(welcome.text, "token")))
    before = sms_count(p.served)
    entry = step(p, post(p, phone_page, action_of(phone_page, "/phone/send")))
    code = sms_code(p.served, PHONE, after=before)
    challenge = form_value(entry.text, "challenge_id")
    details = step(p, post(p, entry, action_of(entry, "/phone"), challenge_id=challenge, code=code))
    factor = step(p, post(p, details, action_of(details, "/details"), confirm="yes"))
    app_page = post(p, factor, action_of(factor, "/factor"), factor="app")
    uri = form_value(app_page.text, "provisioning_uri")
    secret = urllib.parse.parse_qs(urllib.parse.urlsplit(uri).query)["secret"][0]
    enrolment_id = form_value(app_page.text, "enrolment_id")
    now_code = totp.code_at(secret=secret, for_time=time.time())
    password_page = step(
        p, post(p, app_page, action_of(app_page, "/app"), enrolment_id=enrolment_id, code=now_code)
    )
    fields = {"password": PASSWORD, "password_repeat": PASSWORD}
    recovery = step(p, post(p, password_page, action_of(password_page, "/password"), **fields))
    if until == "recovery":
        return recovery, secret
    shown = post(p, recovery, action_of(recovery, "/recovery"))
    saved = post(
        p, shown, action_of(shown, "/recovery/saved"), recovery_set=form_value(shown.text, "recovery_set")
    )
    return step(p, saved), secret


def _sign_in_as_the_invitee(p: Party) -> httpx.Response:
    """The invitee's email and password on a fresh sign-in page: the code page, or the refusal."""
    page, _, _ = start(p, acr_values=ADVANCED, prompt="login")
    answer = post_form(p, page, "/login/password", email="new.signer@example.com", password=PASSWORD)
    return p.rp.browser.get(answer.headers["location"]) if answer.status_code == 303 else answer


def test_the_eid_works_once_the_last_step_is_done_even_if_finish_is_never_pressed(
    party: PartyFactory,
) -> None:
    p = party(email=None)
    finish_page, secret = _through_the_steps(p, until="finish")
    assert "Your eID is ready" in finish_page.text
    # the person closes the page here, and later signs in from the relying app
    code_page = _sign_in_as_the_invitee(p)
    assert "Enter your one-time code" in code_page.text, code_page.text[:2000]
    code = totp.code_at(secret=secret, for_time=time.time() + 30)  # the step after the enrolment's
    done = post_form(p, code_page, "/login/code", method="totp", code=code)
    assert done.status_code == 303 and done.headers["location"].startswith(p.rp.redirect_uri)
    kinds = [e["event_type"] for e in audit_events(p.served) if e["tenant_id"] == p.tenant.id]
    assert "invitation.completed" not in kinds and kinds.count("eid.status_changed") == 1
    # Finish, pressed after all, still signs in and goes back to the app
    finished = post(p, finish_page, action_of(finish_page, "/finish"))
    assert finished.status_code == 303 and finished.headers["location"] == RETURN_URL


def test_an_eid_whose_steps_are_not_done_is_told_so_with_its_password(party: PartyFactory) -> None:
    p = party(email=None)
    _through_the_steps(p, until="recovery")  # the password is set; the recovery codes are not saved
    refused = _sign_in_as_the_invitee(p)
    assert refused.status_code == 401, refused.text[:2000]
    assert "not ready yet: the steps of its invitation are not finished" in as_read(refused.text)
    wrong = post_form(
        p,
        start(p, acr_values=ADVANCED)[0],
        "/login/password",
        email="new.signer@example.com",
        password="x" * 12,
    )
    assert "not ready yet" not in as_read(wrong.text)  # only whoever knows the password learns it


def test_the_pages_and_the_sms_are_in_the_language_the_sender_chose(party: PartyFactory) -> None:
    p = party(email=None)  # the browser asks for English
    link = invite(p, language="hr")
    path = urllib.parse.urlsplit(link)
    welcome = p.rp.browser.get(f"{path.path}?{path.query}")
    assert '<html lang="hr">' in welcome.text
    phone_page = step(p, post(p, welcome, "/invite", token=form_value(welcome.text, "token")))
    assert '<html lang="hr">' in phone_page.text
    before = sms_count(p.served)
    entry = step(p, post(p, phone_page, action_of(phone_page, "/phone/send")))
    assert '<html lang="hr">' in entry.text
    sms = read_outbox(Path(p.served.settings.sms_backend.removeprefix("file:")))[before:][-1]
    assert "je kod za potvrdu broja telefona" in sms.body, sms.body  # SMS_PHONE_CODE in Croatian
    p.rp.browser.cookies.set(LANGUAGE_COOKIE, "en")  # the person's own choice comes first
    assert '<html lang="en">' in p.rp.browser.get(urllib.parse.urlsplit(str(entry.url)).path).text


def test_finish_pressed_twice_gets_the_first_answer_again(
    party: PartyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A double tap on a slow connection: the browser drops the first press's answer (the redirect
    with the session) for the second's, which found the invitation used. The same browser, just
    after, gets the same answer again; the invitation was completed once."""
    p = party(email=None)
    finish_page, _ = _through_the_steps(p, until="finish")
    action = action_of(finish_page, "/finish")
    first = post(p, finish_page, action)
    assert first.status_code == 303 and first.headers["location"] == RETURN_URL
    p.rp.browser.cookies.delete(sessions.COOKIE_NAME)  # the first answer never reached the page
    assert BROWSER_COOKIE in p.rp.browser.cookies
    second = post(p, finish_page, action)
    assert second.status_code == 303 and second.headers["location"] == RETURN_URL
    assert sessions.COOKIE_NAME in second.headers["set-cookie"]
    params, _ = p.rp.authorize_params(acr_values=ADVANCED, prompt="none")
    assert "code" in redirect_query(p.rp.start(params), p.rp.redirect_uri)  # signed in at the level
    kinds = [e["event_type"] for e in audit_events(p.served) if e["tenant_id"] == p.tenant.id]
    assert kinds.count("invitation.completed") == 1
    # later, or from another browser, it is a used invitation
    monkeypatch.setattr(onboarding_routes, "FINISHED_AGAIN_WITHIN", 0.0)
    late = post(p, finish_page, action)
    assert late.status_code == 400 and "already used" in late.text
    with p.served.client() as other:
        other.headers["Accept-Language"] = "en"
        other.get("/healthz")
        assert other.post(action, data={"csrf_token": "x"}).status_code == 403


def test_a_used_invitation_says_so_in_its_language_and_branding_with_a_way_on(party: PartyFactory) -> None:
    p = party(email=None)  # the browser asks for English
    finish_page, _ = _through_the_steps(p, until="finish", language="hr")
    assert '<html lang="hr">' in finish_page.text
    finished = post(p, finish_page, action_of(finish_page, "/finish"))
    assert finished.status_code == 303
    assert p.rp.browser.cookies.get(LANGUAGE_COOKIE) == "hr"  # the eID's pages stay in its language
    steps = urllib.parse.urlsplit(str(finish_page.url)).path
    back = p.rp.browser.get(steps)  # Back after finishing, in the same browser: the eID is ready
    assert back.status_code == 200 and "Vaš eID je spreman" in back.text
    with p.served.client() as other:  # anyone else, or the link forwarded: it was used
        other.headers["Accept-Language"] = "en"
        page = other.get(steps)
    assert page.status_code == 400 and '<html lang="hr">' in page.text
    assert USED_HR in as_read(page.text)

    def header(html: str) -> str:
        return html.split("<header")[1].split("</header>")[0]

    assert header(page.text) == header(finish_page.text)  # the tenant's header, not the service's
    assert f'href="/account?tenant={p.tenant.slug}"' in page.text
    assert f'href="{RETURN_URL}"' in page.text


def test_the_sender_s_language_is_stored_as_a_tag_the_pages_offer(party: PartyFactory) -> None:
    p = party(email=None)
    offered = p.served.settings.languages

    def create(language: str) -> invitations.Invitation:
        return p.served.write(
            lambda tx: invitations.create(
                tx,
                tenant_id=p.tenant.id,
                email="lang@example.com",
                acr="urn:eid:loa:basic",
                ttl=60,
                language=language,
                offered=offered,
            )
        )[0]

    assert [create(value).language for value in ("sr_Latn", "SR-latn", "sr", "hr", "SL")] == [
        "sr-Latn",
        "sr-Latn",
        "sr-Latn",
        "hr",
        "sl",
    ]
    for refused in ("de", "x!", "sr-Cyrl", "", "en-US-x-private"):
        with pytest.raises(ValueError):
            create(refused)
    # a row stored before (the Babel spelling) still opens its pages in its language
    link = urllib.parse.urlsplit(invite(p))
    p.served.write(
        lambda tx: tx.conn.execute(
            tables.invitations.update()
            .where(tables.invitations.c.email == "new.signer@example.com")
            .values(language="sr_Latn")
        )
    )
    assert '<html lang="sr-Latn">' in p.rp.browser.get(f"{link.path}?{link.query}").text


def test_the_link_belongs_to_the_first_browser_that_opens_it(party: PartyFactory) -> None:
    p = party(email=None)
    link = urllib.parse.urlsplit(invite(p))
    welcome = p.rp.browser.get(f"{link.path}?{link.query}")
    step(p, post(p, welcome, "/invite", token=form_value(welcome.text, "token")))
    with p.served.client() as other:
        other.headers["Accept-Language"] = "en"
        page = other.get(f"{link.path}?{link.query}")
        # the link's page says so at once, with no Start that would fail
        assert (
            page.status_code == 400 and "another browser" in page.text and 'action="/invite"' not in page.text
        )
        taken = other.post(
            "/invite",
            data={
                "csrf_token": csrf_token(p.served.settings.secret_key, other.cookies[BROWSER_COOKIE]),
                "token": urllib.parse.parse_qs(link.query)["token"][0],
            },
        )
        assert taken.status_code == 400 and "another browser" in taken.text
    # the browser that opened it may open the link again and go on
    again = p.rp.browser.get(f"{link.path}?{link.query}")
    assert again.status_code == 200 and 'action="/invite"' in again.text


def _invitation_row(conn: object, invitation_id: str) -> invitations.Invitation:
    i = tables.invitations
    row = conn.execute(select(i).where(i.c.id == invitation_id)).mappings().one()  # type: ignore[attr-defined]
    return invitations.from_row(row)


def test_an_invitation_completed_in_another_tab_during_the_sms_step_is_a_clear_page(
    party: PartyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = party(email=None)
    link = urllib.parse.urlsplit(invite(p))
    welcome = p.rp.browser.get(f"{link.path}?{link.query}")
    phone_page = step(p, post(p, welcome, "/invite", token=form_value(welcome.text, "token")))
    before = sms_count(p.served)
    entry = step(p, post(p, phone_page, action_of(phone_page, "/phone/send")))
    code = sms_code(p.served, PHONE, after=before)
    action = action_of(entry, "/phone")
    invitation_id = action.split("/")[2]
    real_check = PhoneVerifier.check

    async def check_then_other_tab_finishes(self: PhoneVerifier, db: Database, **kwargs: object) -> Checked:
        checked = await real_check(self, db, **kwargs)  # type: ignore[arg-type]

        def other_tab(tx: Tx) -> None:
            invitations.complete(tx, _invitation_row(tx.conn, invitation_id))

        await db.write(other_tab)  # between the code check and saving the step
        return checked

    monkeypatch.setattr(PhoneVerifier, "check", check_then_other_tab_finishes)
    raced = post(p, entry, action, challenge_id=form_value(entry.text, "challenge_id"), code=code)
    assert raced.status_code == 409, raced.text[:2000]
    assert "already used" in raced.text and "sign in with your eID" in raced.text
    after = p.served.run(p.served.state.db.read(lambda conn: _invitation_row(conn, invitation_id)))
    assert after.completed_at is not None and "phone_verified_at" not in after.progress


def test_an_invitee_with_an_eid_is_sent_to_sign_in(party: PartyFactory) -> None:
    p = party(email="new.signer@example.com", attributes={"phone_number": PHONE})
    assert p.eid is not None
    enrol(p.served, p.eid)  # a password and an app; eIDs without codes: test_onboarding_existing_eid
    link = urllib.parse.urlsplit(invite(p))
    page = p.rp.browser.get(f"{link.path}?{link.query}")
    assert "You already have an eID" in page.text
    assert RETURN_URL.replace("&", "&amp;") in page.text or RETURN_URL in page.text


@pytest.mark.parametrize("token", ["", "nope", "x" * 500, "%00"])
def test_unknown_links_get_a_clear_page(party: PartyFactory, token: str) -> None:
    p = party(email=None)
    page = p.rp.browser.get("/invite", params={"token": token})
    assert page.status_code == 400 and "do not recognise this invitation" in page.text


def test_the_cli_mails_the_invitation(party: PartyFactory) -> None:
    p = party(email=None)
    seen = outbox_names(p.served)
    import os

    from idp.cli import main

    env = {
        "IDP_DATABASE_URL": p.served.settings.database_url,
        "IDP_SECRET_KEY": p.served.settings.secret_key,
        "IDP_EMAIL_BACKEND": p.served.settings.email_backend,
        "IDP_ISSUER": p.served.issuer,
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        assert (
            main(
                [
                    "user",
                    "invite",
                    "--tenant",
                    p.tenant.slug,
                    "--email",
                    "cli.person@example.com",
                    "--given-name",
                    "Tina",
                    "--phone",
                    "+386 40 123 456",
                    "--json",
                ]
            )
            == 0
        )
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    mail = wait_for_mail(p.served, "cli.person@example.com", seen=seen)
    body = mail.get_body(("plain",))
    # no --language: the mail is in the first configured language, Slovenian
    assert body is not None
    assert "/invite?token=" in body.get_content() and "Dober dan, Tina," in body.get_content()


def test_tenant_branding_reaches_pages_mail_and_sms(party: PartyFactory, served: ServedApp) -> None:
    branding = {
        "name": "Acme Sign",
        "primary_color": "#0b5fff",
        "logo_url": "https://cdn.example/acme.svg",
        "invitation_text": "Your employer uses Acme Sign for contracts.",
        "sms_name": "AcmeSign",
    }
    p = party(email=None, tenant=served.tenant(branding=branding))
    seen = outbox_names(p.served)
    client = p.client.client

    def unit(tx: object) -> tuple[invitations.Invitation, str]:
        return invitations.create(
            tx,  # type: ignore[arg-type]
            tenant_id=p.tenant.id,
            email="branded@example.com",
            acr=ADVANCED,
            ttl=3600,
            phone_number=PHONE,
            client=client,
            return_url=RETURN_URL,
            language="en",
        )

    inv, token = p.served.write(unit)
    from idp.web.invitation_mail import send_invitation

    p.served.run(
        send_invitation(
            settings=p.served.settings,
            pages=p.served.state.pages,
            mailer=p.served.state.mailer,
            invitation=inv,
            token=token,
            tenant=p.tenant,
        )
    )
    mail = wait_for_mail(p.served, "branded@example.com", seen=seen)
    assert "Acme Sign invites you" in str(mail["Subject"])
    text = mail.get_body(("plain",))
    assert text is not None and "Your employer uses Acme Sign for contracts." in text.get_content()
    html = mail.get_body(("html",))
    assert html is not None and "#0b5fff" in html.get_content()

    welcome = p.rp.browser.get("/invite", params={"token": token})
    assert 'src="https://cdn.example/acme.svg"' in welcome.text and "0b5fff" in welcome.text
    phone_page = step(p, post(p, welcome, "/invite", token=token))
    before = sms_count(p.served)
    step(p, post(p, phone_page, action_of(phone_page, "/phone/send")))
    message = read_outbox(Path(p.served.settings.sms_backend.removeprefix("file:")))[before:][-1]
    assert "AcmeSign" in message.body and len(message.body) <= 160
