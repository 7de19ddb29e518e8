"""The email-link login through a real browser, as a person does it (Chromium via Playwright).

The relying app's browser-facing half is a small HTTP server of the test's own (its redirect URI);
its backend half (code exchange with PKCE, ID token verification) is ``tests.support.flows``.
Each test runs against the app on both storage engines (the ``served`` fixture).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Response, expect

from tests.support.browser import RelyingApp, focus_ring, on_browser_thread, relying_app
from tests.support.flows import RelyingParty, query_of
from tests.support.server import ServedApp

pytestmark = pytest.mark.browser

EMAIL = "ana@example.com"
CLIENT_NAME = "Relying app"
SESSION_COOKIE = "__Host-idp_session"

# What a person reads, per page language; Playwright finds fields by label and buttons by name.
TEXT = {
    "sl": {
        "locale": "sl-SI",
        "heading": f"Prijava v storitev {CLIENT_NAME}",
        "email": "E-poštni naslov",
        "send": "Pošlji mi povezavo za prijavo",
        "sent": "Preverite e-pošto",
        "subject": f"Vaša povezava za prijavo v storitev {CLIENT_NAME}",
        "continue": "Nadaljuj",
        "language": "Jezik",
        "change": "Zamenjaj",
        "unusable": "Te povezave ni mogoče uporabiti",
        "other_browser": "Ta povezava je bila zahtevana v drugem brskalniku ali na drugi napravi. "
        "Zaradi vaše varnosti jo odprite tam, kjer ste jo zahtevali.",
    },
    "en": {
        "locale": "en-US",
        "heading": f"Sign in to {CLIENT_NAME}",
        "email": "Email address",
        "send": "Send me a sign-in link",
        "sent": "Check your email",
        "subject": f"Your sign-in link for {CLIENT_NAME}",
        "continue": "Continue",
        "language": "Language",
        "change": "Change",
        "unusable": "This link cannot be used",
        "other_browser": "This link was requested in a different browser or on a different device. "
        "For your security, open it where you requested it.",
    },
}


@dataclass
class Scene:
    served: ServedApp
    app: RelyingApp
    rp: RelyingParty

    def authorize_url(self, **extra: str) -> tuple[str, dict[str, str], str]:
        """The URL the relying app sends the browser to, its parameters and the PKCE verifier."""
        params, verifier = self.rp.authorize_params(**extra)
        return f"{self.served.issuer}/authorize?{urlencode(params)}", params, verifier


@pytest.fixture
def scene(served: ServedApp) -> Iterator[Scene]:
    with relying_app() as app:
        tenant = served.tenant()
        new = served.client_app(tenant, name=CLIENT_NAME, redirect_uris=[app.redirect_uri])
        served.user(tenant, EMAIL, given_name="Ana")
        rp = RelyingParty(served, new.client.client_id, new.client_secret, app.redirect_uri)
        try:
            yield Scene(served, app, rp)
        finally:
            rp.close()


@contextmanager
def browsing(browser: Browser, language: str) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) whose person reads ``language``."""
    context = browser.new_context(ignore_https_errors=True, locale=TEXT[language]["locale"])
    context.set_default_timeout(10_000)
    try:
        yield context
    finally:
        context.close()


def ask_for_link(page: Page, scene: Scene, language: str, **extra: str) -> tuple[dict[str, str], str, int]:
    """From the relying app's /authorize URL to "check your email", using the form as a person does."""
    text = TEXT[language]
    url, params, verifier = scene.authorize_url(**extra)
    page.goto(url)
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.get_by_role("heading", level=1)).to_have_text(text["heading"])
    mails_before = len(scene.served.mails())
    page.get_by_role("textbox", name=text["email"]).fill(EMAIL)  # the visible one
    page.get_by_role("button", name=text["send"]).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(text["sent"])
    expect(page.locator("html")).to_have_attribute("lang", language)
    return params, verifier, mails_before


def back_at_relying_app(page: Page, scene: Scene) -> dict[str, str]:
    """Wait until the browser is at the redirect URI; the query it brought."""
    page.wait_for_url(lambda url: url.startswith(scene.app.redirect_uri + "?"))
    query = query_of(page.url)
    assert scene.app.received[-1] == query
    return query


def redirect_chain(response: Response | None) -> list[tuple[str, int]]:
    """Every (URL, status) a navigation went through, first to last."""
    assert response is not None
    chain: list[tuple[str, int]] = []
    request: Any = response.request
    while request is not None:
        answered = request.response()
        chain.append((request.url, answered.status if answered else 0))
        request = request.redirected_from
    return chain[::-1]


def assert_focus_visible(ring: dict[str, Any]) -> None:
    assert ring["outlineStyle"] != "none" and ring["outlineWidth"] >= 2, f"no visible focus on {ring}"


@pytest.mark.parametrize("language", ["sl", "en"])
@on_browser_thread
def test_email_link_login(browser: Browser, scene: Scene, language: str) -> None:
    text = TEXT[language]
    with browsing(browser, language) as context:
        page = context.new_page()
        params, verifier, mails_before = ask_for_link(page, scene, language)
        mail = scene.served.wait_for_mail(EMAIL, after=mails_before)
        assert mail["Subject"] == text["subject"]
        page.goto(scene.rp.link_from_mail(EMAIL, after=mails_before))
        expect(page.locator("html")).to_have_attribute("lang", language)
        page.get_by_role("button", name=text["continue"]).click()
        callback = back_at_relying_app(page, scene)
        expect(page.get_by_role("heading", level=1)).to_have_text("Signed in")

    assert callback["state"] == params["state"]
    assert callback["iss"] == scene.served.issuer
    tokens = scene.rp.exchange(callback["code"], verifier)
    assert tokens.status_code == 200, tokens.text
    claims = scene.rp.verify_id_token(tokens.json()["id_token"], nonce=params["nonce"])
    assert claims["acr"] == "urn:eid:loa:basic"
    assert claims["amr"] == ["email"]


@pytest.mark.parametrize("language", ["sl", "en"])
@on_browser_thread
def test_a_link_opened_in_another_browser_sends_the_person_back_to_where_they_asked(
    browser: Browser, scene: Scene, language: str
) -> None:
    """The page told the person to 'request a new link here', where there was nothing to request it
    with: the link's sign-in request belongs to the browser that asked for it."""
    text = TEXT[language]
    with browsing(browser, language) as asked_in, browsing(browser, language) as another:
        _params, _verifier, mails_before = ask_for_link(asked_in.new_page(), scene, language)
        page = another.new_page()
        page.goto(scene.rp.link_from_mail(EMAIL, after=mails_before))
        expect(page.get_by_role("heading", level=1)).to_have_text(text["unusable"])
        expect(page.locator("main p").first).to_have_text(text["other_browser"])
        expect(page.locator("main a")).to_have_count(0)


@on_browser_thread
def test_keyboard_alone(browser: Browser, scene: Scene) -> None:
    """Tab and Enter are enough, and the person always sees where the focus is."""
    with browsing(browser, "sl") as context:
        page = context.new_page()
        url, params, _verifier = scene.authorize_url()
        page.goto(url)
        expect(page.get_by_role("heading", level=1)).to_have_text(TEXT["sl"]["heading"])
        for _ in range(6):  # the field has autofocus; Tab reaches it if that was lost
            if focus_ring(page)["id"] == "email":
                break
            page.keyboard.press("Tab")
        ring = focus_ring(page)
        assert ring["id"] == "email", f"Tab did not reach the email field: {ring}"
        assert_focus_visible(ring)
        mails_before = len(scene.served.mails())
        page.keyboard.type(EMAIL)
        page.keyboard.press("Tab")
        ring = focus_ring(page)
        assert (ring["tag"], ring["type"], ring["text"]) == ("button", "submit", TEXT["sl"]["send"])
        assert_focus_visible(ring)
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", level=1)).to_have_text(TEXT["sl"]["sent"])

        page.goto(scene.rp.link_from_mail(EMAIL, after=mails_before))
        stops = []
        for _ in range(6):
            page.keyboard.press("Tab")
            stops.append(focus_ring(page))
            assert_focus_visible(stops[-1])
            if stops[-1]["text"] == TEXT["sl"]["continue"]:
                break
        assert stops[-1]["tag"] == "button", f"Tab did not reach Continue: {stops}"
        page.keyboard.press("Enter")
        callback = back_at_relying_app(page, scene)
    assert callback["state"] == params["state"]
    assert callback["code"]


@on_browser_thread
def test_language_switcher_is_remembered(browser: Browser, scene: Scene) -> None:
    with browsing(browser, "sl") as context:
        page = context.new_page()
        url, _params, _verifier = scene.authorize_url()
        page.goto(url)
        expect(page.locator("html")).to_have_attribute("lang", "sl")
        login_url = page.url
        page.get_by_label(TEXT["sl"]["language"]).select_option("en")
        page.get_by_role("button", name=TEXT["sl"]["change"]).click()
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.get_by_role("heading", level=1)).to_have_text(TEXT["en"]["heading"])
        assert page.url == login_url, "the switcher must come back to the same sign-in request"
        cookies = {cookie["name"]: cookie for cookie in context.cookies()}
        assert cookies["idp_lang"]["value"] == "en"

        # the browser still says sl-SI; the next page and the mail follow the choice
        mails_before = len(scene.served.mails())
        page.get_by_role("textbox", name=TEXT["en"]["email"]).fill(EMAIL)
        page.get_by_role("button", name=TEXT["en"]["send"]).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(TEXT["en"]["sent"])
        expect(page.locator("html")).to_have_attribute("lang", "en")
        assert scene.served.wait_for_mail(EMAIL, after=mails_before)["Subject"] == TEXT["en"]["subject"]

        # "check your email" is a page of its own (Post/Redirect/Get): switching the language
        # there shows the same page again, translated, and sends no second mail
        sent_url = page.url
        mails_after = len(scene.served.mails())
        page.get_by_label(TEXT["en"]["language"]).select_option("sl")
        page.get_by_role("button", name=TEXT["en"]["change"]).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(TEXT["sl"]["sent"])
        assert page.url == sent_url
        page.reload()
        expect(page.get_by_role("heading", level=1)).to_have_text(TEXT["sl"]["sent"])
        assert len(scene.served.mails()) == mails_after

        page.goto(scene.served.issuer + "/")
        expect(page.locator("html")).to_have_attribute("lang", "sl")


@on_browser_thread
def test_session_cookie_and_single_sign_on(browser: Browser, scene: Scene) -> None:
    with browsing(browser, "sl") as context:
        page = context.new_page()
        params, verifier, mails_before = ask_for_link(page, scene, "sl")
        page.goto(scene.rp.link_from_mail(EMAIL, after=mails_before))
        with page.expect_response(
            lambda r: r.request.method == "POST" and urlsplit(r.url).path == "/login/email/verify"
        ) as verified:
            page.get_by_role("button", name=TEXT["sl"]["continue"]).click()
        first = back_at_relying_app(page, scene)

        # the cookie as sent, and as the browser keeps it
        sent = [
            header["value"]
            for header in verified.value.headers_array()
            if header["name"].lower() == "set-cookie" and header["value"].startswith(SESSION_COOKIE + "=")
        ]
        assert len(sent) == 1, sent
        attributes = {
            name.strip().lower(): value
            for name, _, value in (part.partition("=") for part in sent[0].split(";")[1:])
        }
        assert {"secure", "httponly", "samesite", "path"} <= attributes.keys(), sent[0]
        assert "domain" not in attributes, sent[0]
        assert attributes["samesite"].lower() == "lax" and attributes["path"] == "/"
        jar = {cookie["name"]: cookie for cookie in context.cookies()}
        assert SESSION_COOKIE in jar, sorted(jar)
        kept = jar[SESSION_COOKIE]
        assert (kept["secure"], kept["httpOnly"], kept["sameSite"], kept["path"]) == (True, True, "Lax", "/")
        assert kept["domain"] == "127.0.0.1", "host-only: no Domain attribute"

        # a second authorization in the same browser: straight back, no page shown
        url, params_again, verifier_again = scene.authorize_url(prompt="none")
        chain = redirect_chain(page.goto(url))
        second = back_at_relying_app(page, scene)
        assert [status for _, status in chain] == [302, 200], chain
        assert chain[0][0] == url and chain[1][0].startswith(scene.app.redirect_uri)

    assert second["state"] == params_again["state"] and second["iss"] == scene.served.issuer
    one = scene.rp.exchange(first["code"], verifier)
    two = scene.rp.exchange(second["code"], verifier_again)
    assert one.status_code == 200 and two.status_code == 200, (one.text, two.text)
    first_claims = scene.rp.verify_id_token(one.json()["id_token"], nonce=params["nonce"])
    second_claims = scene.rp.verify_id_token(two.json()["id_token"], nonce=params_again["nonce"])
    assert second_claims["sub"] == first_claims["sub"]
    assert second_claims["auth_time"] == first_claims["auth_time"], "SSO must not re-authenticate"
    assert second_claims["acr"] == "urn:eid:loa:basic"

    # without the session cookie the same request cannot be answered silently
    with browsing(browser, "sl") as fresh:
        page = fresh.new_page()
        url, params_fresh, _verifier = scene.authorize_url(prompt="none")
        page.goto(url)
        refused = back_at_relying_app(page, scene)
    assert refused["error"] == "login_required"
    assert refused["state"] == params_fresh["state"]
    assert "code" not in refused


@on_browser_thread
def test_a_redirect_uri_that_is_not_registered_is_explained(browser: Browser, scene: Scene) -> None:
    """The person stays here and reads, in their language, why they are not sent back."""
    url, _params, _verifier = scene.authorize_url(redirect_uri="https://evil.example/cb")
    with browsing(browser, "sl") as context:
        page = context.new_page()
        response = page.goto(url)
        assert response is not None and response.status == 400
        assert page.url == url
        expect(page.get_by_role("heading", level=1)).to_have_text("Ne moremo vas vrniti v to aplikacijo")
        main = page.get_by_role("main")
        expect(main).to_contain_text("samo na naslov, ki ga je aplikacija registrirala pri nas")
        expect(main).to_contain_text("se obrnite na podporo aplikacije")
        expect(main.locator(".detail")).to_contain_text("invalid_request")  # for the app's support
        expect(page.locator("a[href*='evil.example']")).to_have_count(0)
    assert scene.app.received == []


@on_browser_thread
def test_the_email_address_is_typed_once(browser: Browser, scene: Scene) -> None:
    """The sign-in link's form and the password form share the address typed, and "Forgot your
    password?" brings it to the reset page, without putting it in a URL."""
    with browsing(browser, "en") as context:
        page = context.new_page()
        url, _params, _verifier = scene.authorize_url()
        page.goto(url)
        page.get_by_role("textbox", name="Email address").fill(EMAIL)  # the link's form
        page.get_by_text("Sign in with your password").click()
        expect(page.locator("#pw-email")).to_have_value(EMAIL)
        page.locator("#pw-email").fill("ana.novak@example.com")  # corrected in the other form
        expect(page.locator("#email")).to_have_value("ana.novak@example.com")
        page.get_by_role("link", name="Forgot your password?").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Forgot your password?")
        expect(page.get_by_role("textbox", name="Email address")).to_have_value("ana.novak@example.com")
        assert "example.com" not in page.url
        # a new tab starts empty: the address stays in the tab it was typed in
        other = context.new_page()
        other.goto(url)
        expect(other.locator("#email")).to_have_value("")
