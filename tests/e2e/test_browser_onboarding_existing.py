"""An invitation to an address whose eID signs in by email link alone, in Chromium.

The eID was made with only an email; an invitation at the advanced level offers to set up what
that level needs on it. The person confirms the sender's number by SMS (a wrong code first), sets
up an authenticator app, chooses a password, saves the recovery codes and lands back at the
relying app, which then gets the advanced level at once; the account page shows the same eID with
what the steps proved.
"""

from __future__ import annotations

import re
import time
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser, Page, expect

from idp import eids
from otp import totp
from tests.e2e import test_browser_onboarding as onboarding
from tests.oidc.test_advanced_login import sms_code, sms_count
from tests.support.browser import RelyingApp, on_browser_thread
from tests.support.flows import query_of
from tests.support.server import ServedApp

pytestmark = pytest.mark.browser
EMAIL = "marko.kos@example.com"

# the served app and the relying app of the onboarding's browser tests
localhost_app = onboarding.localhost_app
rp_app = onboarding.rp_app


def _step(page: Page, heading: str, number: int) -> None:
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    expect(page.locator(".steps")).to_have_text(f"Step {number} of 4")  # no details step: the eID's stay


def _enrol(page: Page, served: ServedApp, link: str) -> None:
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Make your eID ready for a stronger sign-in")
    expect(page.get_by_role("main")).to_contain_text("So far you sign in with it by a link we email you.")
    page.get_by_role("button", name="Start").click()

    _step(page, "Confirm your mobile number", 1)
    before = sms_count(served)
    page.get_by_role("button", name="Send the code").click()
    code = page.get_by_label("Code", exact=True)
    code.fill("000000")
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("alert")).to_contain_text("That code is not correct.")
    expect(code).to_be_focused()
    code.fill(sms_code(served, onboarding.PHONE, after=before))
    page.get_by_role("button", name="Confirm").click()

    _step(page, "How do you want to receive sign-in codes?", 2)
    # each choice is named in bold; what it means is plain text
    description = page.locator("label.choice .muted").first
    assert description.evaluate("e => getComputedStyle(e).fontWeight") == "400"
    page.get_by_label(re.compile("Authenticator app")).check()
    page.get_by_role("button", name="Continue").click()

    _step(page, "Set up your authenticator app", 2)
    key = page.locator("code").first.inner_text().replace(" ", "")
    page.get_by_label("Code from the app").fill(totp.code_at(secret=key, for_time=time.time()))
    page.get_by_role("button", name="Confirm").click()

    _step(page, "Choose a password", 3)
    page.get_by_label("New password").fill(onboarding.PASSWORD)
    page.get_by_label("Repeat the password").fill(onboarding.PASSWORD)
    page.get_by_role("button", name="Continue").click()

    _step(page, "Save your recovery codes", 4)
    page.get_by_role("button", name="Show my recovery codes").click()
    expect(page.locator("ol.recovery-codes li")).to_have_count(10)
    page.get_by_role("button", name="I have saved my recovery codes").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Your eID is ready")
    expect(page.get_by_role("main")).to_contain_text("Continue to finish and sign in with your eID.")
    expect(page.get_by_role("main")).not_to_contain_text("new eID")
    page.get_by_role("button", name="Finish").click()


@on_browser_thread
def test_an_email_only_eid_sets_up_the_advanced_level_from_an_invitation(
    browser: Browser, localhost_app: ServedApp, rp_app: RelyingApp
) -> None:
    sender = onboarding._party(localhost_app, rp_app)
    rp = sender.rp
    person = localhost_app.user(sender.tenant, EMAIL)  # signs in by email link alone
    link = onboarding._invite(localhost_app, sender, rp_app, EMAIL)
    context = browser.new_context(ignore_https_errors=True, locale="en-GB")
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        _enrol(page, localhost_app, link)
        page.wait_for_url(lambda url: url.startswith(rp_app.redirect_uri + "?from=invitation"))

        params, verifier = rp.authorize_params(acr_values=onboarding.ADVANCED)
        page.goto(f"{localhost_app.issuer}/authorize?{urlencode(params)}")
        page.wait_for_url(lambda url: "code=" in url)  # signed in at the level: no page in between
        tokens = rp.exchange(query_of(page.url)["code"], verifier).json()
        claims = rp.verify_id_token(tokens["id_token"], nonce=params["nonce"])
        assert claims["acr"] == onboarding.ADVANCED and claims["amr"] == ["pwd", "otp", "mfa"]

        found = localhost_app.run(
            localhost_app.state.db.read(
                lambda conn: eids.find_by_email(conn, tenant_id=sender.tenant.id, email=EMAIL)
            )
        )
        assert found is not None and found.id == person.id  # the same eID, not a second one

        page.goto(f"{localhost_app.issuer}/account")
        details = page.locator("dl.details")
        expect(details).to_contain_text(f"{EMAIL} · confirmed by the invitation link")
        expect(details).to_contain_text("confirmed by an SMS code")
        events = page.locator("ul.events")
        for said in ("Authenticator app set up", "Password set", "New recovery codes made"):
            expect(events).to_contain_text(said)
    finally:
        context.close()
        rp.close()
