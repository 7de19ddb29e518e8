"""The onboarding pages and the advanced sign-in in Chromium, as a person uses them.

An invitation's link opens in the browser; the person confirms the SMS code, the prefilled data,
sets up an authenticator app (reading the key off the page), chooses a password, saves the
recovery codes and lands back at the relying app; the app then gets the advanced level at once.
A second test signs in at the advanced level with the password and a code from the app.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser, Page, expect

from idp import clients, invitations, tenants
from idp.clients import ClientType
from otp import totp
from tests.oidc.test_advanced_login import sms_code, sms_count
from tests.support.browser import RelyingApp, add_virtual_authenticator, on_browser_thread, relying_app
from tests.support.flows import RelyingParty, pkce_pair, query_of
from tests.support.server import ServedApp, serve, settings_factory_for

pytestmark = pytest.mark.browser
ADVANCED = "urn:eid:loa:advanced"
PHONE = "+38640111222"
PASSWORD = "maple violin harbour 7"


@pytest.fixture(scope="module")
def localhost_app(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path, tls: tuple[Path, Path]
) -> Iterator[ServedApp]:
    """The app on SQLite with a host name for an issuer (passkeys need a domain, not an IP)."""
    directory = tmp_path_factory.mktemp("browser-advanced")
    shutil.copy(sqlite_template, directory / "idp.db")
    url = f"sqlite+aiosqlite:///{directory / 'idp.db'}"
    with serve(
        settings_factory_for(url, directory), tls=tls, outbox=directory / "mail", issuer_host="localhost"
    ) as app:
        yield app


@pytest.fixture
def rp_app() -> Iterator[RelyingApp]:
    with relying_app() as app:
        yield app


@dataclass
class Sender:
    """The signing service: its tenant and client here, and its back channel."""

    tenant: tenants.Tenant
    client: clients.Client
    rp: RelyingParty


def _party(served: ServedApp, app: RelyingApp) -> Sender:
    tenant = served.tenant()
    new = served.client_app(tenant, name="Signing service", redirect_uris=[app.redirect_uri])
    return Sender(
        tenant, new.client, RelyingParty(served, new.client.client_id, new.client_secret, app.redirect_uri)
    )


def _invite(served: ServedApp, sender: Sender, app: RelyingApp, email: str) -> str:
    def unit(tx: object) -> tuple[invitations.Invitation, str]:
        return invitations.create(
            tx,  # type: ignore[arg-type]
            tenant_id=sender.tenant.id,
            email=email,
            acr=ADVANCED,
            ttl=3600,
            given_name="Maja",
            family_name="Horvat",
            phone_number=PHONE,
            client=sender.client,
            return_url=app.redirect_uri + "?from=invitation",
        )

    _, token = served.write(unit)
    return f"{served.issuer}/invite?token={token}"


def _onboard(page: Page, served: ServedApp, link: str) -> str:
    """Through every onboarding page; returns the authenticator app's secret."""
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Create your eID")
    page.get_by_role("button", name="Start").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your mobile number")
    before = sms_count(served)
    page.get_by_role("button", name="Send the code").click()
    expect(page.get_by_label("Code", exact=True)).to_be_visible()
    page.get_by_label("Code", exact=True).fill(sms_code(served, PHONE, after=before))
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your details")
    expect(page.locator("dl.details")).to_contain_text("Horvat")
    page.get_by_label("These details are mine and they are correct.").check()
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("How do you want to receive sign-in codes?")
    page.get_by_label(re.compile("Authenticator app")).check()
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Set up your authenticator app")
    expect(page.locator(".qr svg")).to_be_visible()
    key = page.locator("code").first.inner_text().replace(" ", "")
    page.get_by_label("Code from the app").fill(totp.code_at(secret=key, for_time=time.time()))
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose a password")
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Save your recovery codes")
    page.get_by_role("button", name="Show my recovery codes").click()
    expect(page.locator("ol.recovery-codes li")).to_have_count(10)
    page.get_by_role("button", name="I have saved my recovery codes").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your eID is ready")
    page.get_by_role("button", name="Finish").click()
    return key


@on_browser_thread
def test_onboarding_pages_then_the_relying_app_gets_advanced(
    browser: Browser, localhost_app: ServedApp, rp_app: RelyingApp
) -> None:
    sender = _party(localhost_app, rp_app)
    rp = sender.rp
    link = _invite(localhost_app, sender, rp_app, "maja.horvat@example.com")
    context = browser.new_context(ignore_https_errors=True, locale="en-GB")
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        _onboard(page, localhost_app, link)
        page.wait_for_url(lambda url: url.startswith(rp_app.redirect_uri + "?from=invitation"))
        params, verifier = rp.authorize_params(acr_values=ADVANCED)
        page.goto(f"{localhost_app.issuer}/authorize?{urlencode(params)}")
        page.wait_for_url(lambda url: "code=" in url)
        query = query_of(page.url)
        tokens = rp.exchange(query["code"], verifier).json()
        claims = rp.verify_id_token(tokens["id_token"], nonce=params["nonce"])
        assert claims["acr"] == ADVANCED and claims["amr"] == ["pwd", "otp", "mfa"]
    finally:
        context.close()
        rp.close()


@on_browser_thread
def test_back_and_reload_after_a_form_s_answer_send_nothing_again(
    browser: Browser, localhost_app: ServedApp, rp_app: RelyingApp
) -> None:
    """A page that answers a post (a wrong code, the recovery codes shown) took the post's place
    in the history: Back to it, or a reload, sent the form again (Chromium's "Confirm Form
    Resubmission", or a new set of codes). The step's own page now takes that place."""
    sender = _party(localhost_app, rp_app)
    link = _invite(localhost_app, sender, rp_app, "vesna.zupan@example.com")
    context = browser.new_context(ignore_https_errors=True, locale="en-GB")
    context.set_default_timeout(10_000)
    posts: list[str] = []
    try:
        page = context.new_page()
        page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
        page.goto(link)
        page.get_by_role("button", name="Start").click()
        before = sms_count(localhost_app)
        page.get_by_role("button", name="Send the code").click()
        code = sms_code(localhost_app, PHONE, after=before)
        page.get_by_label("Code", exact=True).fill(f"{(int(code) + 1) % 10**6:06d}")
        page.get_by_role("button", name="Confirm").click()
        expect(page.locator("#code-error")).to_be_visible()  # the answer to the post
        assert "?challenge=" in page.url  # the step's page in its place
        page.get_by_label("Code", exact=True).fill(code)
        page.get_by_role("button", name="Confirm").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Check your details")
        sent = len(posts)
        answer = page.go_back()
        assert answer is not None and answer.ok and answer.request.method == "GET"
        expect(page.get_by_role("heading", level=1)).to_have_text("Check your details")  # the step now
        assert len(posts) == sent
        page.get_by_label("These details are mine and they are correct.").check()
        page.get_by_role("button", name="Confirm").click()
        page.get_by_label(re.compile("Authenticator app")).check()
        page.get_by_role("button", name="Continue").click()
        key = page.locator("code").first.inner_text().replace(" ", "")
        page.get_by_label("Code from the app").fill(totp.code_at(secret=key, for_time=time.time()))
        page.get_by_role("button", name="Confirm").click()
        page.get_by_label("New password").fill(PASSWORD)
        page.get_by_label("Repeat the password").fill(PASSWORD)
        page.get_by_role("button", name="Continue").click()
        page.get_by_role("button", name="Show my recovery codes").click()
        first = page.locator("ol.recovery-codes li").first.inner_text()
        sent = len(posts)
        page.reload()  # no new set made behind the person's back: the step's page again
        expect(page.get_by_role("button", name="Show my recovery codes")).to_be_visible()
        assert len(posts) == sent and first not in page.content()
    finally:
        context.close()
        sender.rp.close()


@on_browser_thread
def test_password_and_app_code_sign_in_in_the_browser(
    browser: Browser, localhost_app: ServedApp, rp_app: RelyingApp
) -> None:
    sender = _party(localhost_app, rp_app)
    rp = sender.rp
    link = _invite(localhost_app, sender, rp_app, "ivo.kranjc@example.com")
    context = browser.new_context(ignore_https_errors=True, locale="en-GB")
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        key = _onboard(page, localhost_app, link)
        page.wait_for_url(lambda url: url.startswith(rp_app.redirect_uri))
        context.clear_cookies()  # a new day, a new browser session
        params, verifier = rp.authorize_params(acr_values=ADVANCED)
        page.goto(f"{localhost_app.issuer}/authorize?{urlencode(params)}")
        expect(page.get_by_role("heading", level=1)).to_contain_text("Sign in")
        page.get_by_label("Email address").fill("ivo.kranjc@example.com")
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Enter your one-time code")
        # the onboarding spent this time step's code; the next step's is within the accepted window
        page.get_by_label("Code", exact=True).fill(totp.code_at(secret=key, for_time=time.time() + 30))
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url(lambda url: "code=" in url)
        tokens = rp.exchange(query_of(page.url)["code"], verifier).json()
        assert rp.verify_id_token(tokens["id_token"], nonce=params["nonce"])["acr"] == ADVANCED
    finally:
        context.close()
        rp.close()


@on_browser_thread
def test_a_passkey_added_on_the_account_page_signs_in_without_a_password(
    browser: Browser, localhost_app: ServedApp, rp_app: RelyingApp
) -> None:
    sender = _party(localhost_app, rp_app)
    rp = sender.rp
    link = _invite(localhost_app, sender, rp_app, "pia.zupan@example.com")
    context = browser.new_context(ignore_https_errors=True, locale="en-GB")
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        add_virtual_authenticator(context, page)
        _onboard(page, localhost_app, link)
        page.wait_for_url(lambda url: url.startswith(rp_app.redirect_uri))
        page.goto(f"{localhost_app.issuer}/account/passkeys")
        expect(page.get_by_role("heading", level=1)).to_have_text("Your passkeys")
        page.get_by_label("Name of the passkey").fill("Laptop")
        page.get_by_role("button", name="Create a passkey").click()
        expect(page.get_by_role("status")).to_have_text("Your passkey was added.")
        page.goto(f"{localhost_app.issuer}/account/passkeys")
        expect(page.locator("ul.passkeys")).to_contain_text("Laptop")

        context.clear_cookies()  # signed out; the authenticator keeps the passkey
        params, verifier = rp.authorize_params(acr_values=ADVANCED)
        page.goto(f"{localhost_app.issuer}/authorize?{urlencode(params)}")
        page.get_by_role("button", name="Sign in with a passkey").click()
        page.wait_for_url(lambda url: "code=" in url)
        tokens = rp.exchange(query_of(page.url)["code"], verifier).json()
        claims = rp.verify_id_token(tokens["id_token"], nonce=params["nonce"])
        assert claims["acr"] == ADVANCED
        assert "pwd" not in claims["amr"] and ("hwk" in claims["amr"] or "swk" in claims["amr"])

        # removing it asks first, on a page that names it; Cancel keeps it
        page.goto(f"{localhost_app.issuer}/account/passkeys")
        page.get_by_role("button", name="Remove the passkey Laptop").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Remove this passkey?")
        expect(page.locator("main")).to_contain_text("Laptop")
        page.get_by_role("link", name="Cancel").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Your eID account")
        expect(page.locator("ul.methods")).to_contain_text("Laptop")
        page.goto(f"{localhost_app.issuer}/account/passkeys")
        page.get_by_role("button", name="Remove the passkey Laptop").click()
        page.get_by_role("button", name="Remove", exact=True).click()
        expect(page.get_by_role("status")).to_have_text("The passkey was removed.")
        expect(page.locator("ul.methods")).not_to_contain_text("Laptop")
    finally:
        context.close()
        rp.close()


_EXCHANGE = """async ([tokenUrl, userinfoUrl, clientId, redirectUri, verifier]) => {
    const code = new URLSearchParams(location.search).get("code");
    const exchanged = await fetch(tokenUrl, {
        method: "POST",
        headers: {"content-type": "application/x-www-form-urlencoded"},
        body: new URLSearchParams({
            grant_type: "authorization_code", code, redirect_uri: redirectUri,
            code_verifier: verifier, client_id: clientId,
        }),
    });
    const tokens = await exchanged.json();
    const me = await fetch(userinfoUrl, {headers: {authorization: "Bearer " + tokens.access_token}});
    return [exchanged.status, Boolean(tokens.id_token), me.status, (await me.json()).email];
}"""
_FROM_ELSEWHERE = """async (tokenUrl) => {
    try { await fetch(tokenUrl, {method: "POST", body: new URLSearchParams({grant_type: "x"})}); }
    catch (error) { return error.name; }
    return "read";
}"""


@on_browser_thread
def test_a_single_page_app_exchanges_its_code_from_its_own_origin(
    browser: Browser, localhost_app: ServedApp, rp_app: RelyingApp
) -> None:
    """A public client's page calls /token and /userinfo with fetch (CORS, idp.web.cors)."""
    sender = _party(localhost_app, rp_app)
    spa = localhost_app.client_app(
        sender.tenant, name="Signing SPA", client_type=ClientType.PUBLIC, redirect_uris=[rp_app.redirect_uri]
    )
    link = _invite(localhost_app, sender, rp_app, "lea.kos@example.com")
    context = browser.new_context(ignore_https_errors=True, locale="en-GB")
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        _onboard(page, localhost_app, link)  # signed in: the app's /authorize answers at once
        page.wait_for_url(lambda url: url.startswith(rp_app.redirect_uri))
        verifier, challenge = pkce_pair()
        params = {
            "response_type": "code",
            "client_id": spa.client.client_id,
            "redirect_uri": rp_app.redirect_uri,
            "scope": "openid email",
            "state": "s1",
            "nonce": "n1",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        page.goto(f"{localhost_app.issuer}/authorize?{urlencode(params)}")
        page.wait_for_url(lambda url: "code=" in url)  # the app's page, on its own origin
        issuer = localhost_app.issuer
        status, has_id_token, me, email = page.evaluate(
            _EXCHANGE,
            [f"{issuer}/token", f"{issuer}/userinfo", spa.client.client_id, rp_app.redirect_uri, verifier],
        )
        assert (status, has_id_token, me, email) == (200, True, 200, "lea.kos@example.com")
        # a page of an origin that no client registered cannot read the endpoint's answers
        page.goto("about:blank")
        assert page.evaluate(_FROM_ELSEWHERE, f"{issuer}/token") == "TypeError"
    finally:
        context.close()


# What Chromium answers a page when the person closes the device's passkey dialog (or it times out)
_CANCEL = """navigator.credentials.get = () => Promise.reject(
    new DOMException("The operation either timed out or was not allowed.", "NotAllowedError"));"""


@pytest.mark.parametrize(
    ("locale", "said"),
    [
        ("en-GB", "The passkey sign-in did not complete. Try again, or use your password."),
        ("sl-SI", "Prijava s ključem za dostop ni bila dokončana. Poskusite znova ali uporabite geslo."),
    ],
)
@on_browser_thread
def test_a_cancelled_passkey_sign_in_is_told_so(
    browser: Browser, localhost_app: ServedApp, rp_app: RelyingApp, locale: str, said: str
) -> None:
    """The message flashed for a moment, then the sign-in page came back as if nothing had happened."""
    rp = _party(localhost_app, rp_app).rp
    context = browser.new_context(ignore_https_errors=True, locale=locale)
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        page.add_init_script(_CANCEL)
        params, _ = rp.authorize_params(acr_values=ADVANCED)
        page.goto(f"{localhost_app.issuer}/authorize?{urlencode(params)}")
        page.locator("button[data-passkey=get]").click()
        expect(page.get_by_role("alert")).to_have_text(said)
        expect(page.locator("button[data-passkey=get]")).to_be_visible()  # to try again
        assert rp_app.received == []
    finally:
        context.close()
        rp.close()
