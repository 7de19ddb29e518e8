"""Which field a form's error belongs to, as a screen reader hears it in Chromium: the error is the
accessible description of the field it is about, and only that field is marked invalid. Templates
rendered with their test contexts (``tests.support.pages``), no app behind them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import on_browser_thread
from tests.support.pages import _ONBOARDING, LANGUAGES, all_pages, render

pytestmark = pytest.mark.browser

PAGES = all_pages()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = on_browser_thread(browser.new_context)()
    yield on_browser_thread(context.new_page)()
    on_browser_thread(context.close)()


NEW_PASSWORD_PAGES = [
    ("onboarding.html", dict(_ONBOARDING, step="password", step_number=4, step_count=5)),
    ("reset.html", {"step": "password"}),
    ("account_change.html", {"step": "password"}),
]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(("template", "context"), NEW_PASSWORD_PAGES, ids=[t for t, _ in NEW_PASSWORD_PAGES])
@on_browser_thread
def test_passwords_that_differ_are_the_repeated_fields_error(
    page: Page, template: str, context: dict[str, object], language: str
) -> None:
    """'The two passwords are not the same' was the first field's description and made it invalid;
    the first password was fine, the repetition is what differs."""
    page.set_content(render(PAGES, template, language, **context, error="mismatch"))
    said = PAGES.gettext(language, "The two passwords are not the same.")
    repeat, first = page.locator("#password_repeat"), page.locator("#password")
    expect(repeat).to_have_attribute("aria-invalid", "true")
    expect(repeat).to_have_accessible_description(said)
    expect(first).not_to_have_attribute("aria-invalid", "true")
    expect(first).to_have_accessible_description("")


@pytest.mark.parametrize(("template", "context"), NEW_PASSWORD_PAGES, ids=[t for t, _ in NEW_PASSWORD_PAGES])
@on_browser_thread
def test_a_password_the_policy_refuses_is_the_first_fields_error(
    page: Page, template: str, context: dict[str, object]
) -> None:
    page.set_content(render(PAGES, template, "en", **context, error="too_short"))
    first = page.locator("#password")
    expect(first).to_have_attribute("aria-invalid", "true")
    expect(first).to_have_accessible_description("The password is too short: use at least 8 characters.")
    expect(page.locator("#password_repeat")).not_to_have_attribute("aria-invalid", "true")


@pytest.mark.parametrize("offer_email_link", [True, False], ids=["basic", "advanced"])
@on_browser_thread
def test_an_address_that_is_not_one_is_the_address_fields_error(page: Page, offer_email_link: bool) -> None:
    """'Enter a valid email address' on the password form described the password field and marked
    it invalid; the address was what was wrong."""
    context = {
        "offer_email_link": offer_email_link,
        "email": "ana@@example",
        "password_error": "invalid_email",
    }
    page.set_content(render(PAGES, "login_email.html", "en", **context))
    address, secret = page.locator("#pw-email"), page.locator("#password")
    expect(address).to_have_attribute("aria-invalid", "true")
    expect(address).to_have_accessible_description("Enter a valid email address, like name@example.com.")
    expect(secret).not_to_have_attribute("aria-invalid", "true")


@on_browser_thread
def test_a_wrong_password_is_the_password_fields_error(page: Page) -> None:
    context = {"offer_email_link": False, "email": "ana@example.com", "password_error": "wrong_credentials"}
    page.set_content(render(PAGES, "login_email.html", "en", **context))
    expect(page.locator("#password")).to_have_accessible_description(
        "The email address or password is not correct."
    )
    expect(page.locator("#pw-email")).not_to_have_attribute("aria-invalid", "true")
