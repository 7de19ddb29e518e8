"""The account and sign-in pages in Chromium, as a person uses them: templates rendered with their
test contexts (``tests.support.pages``), no app behind them.

After an error the focus is on what the error is about, so typing again goes where it should; the
account's details keep an address whole on a wide screen.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e import test_page_layout as layout
from tests.support.browser import on_browser_thread
from tests.support.pages import _ACCOUNT, _PERSON, LANGUAGES, all_pages, render

pytestmark = pytest.mark.browser

PAGES = all_pages()
EMAIL = "ana.novak@example.com"

showing = layout.showing  # pages of rendered templates with the real stylesheet


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = on_browser_thread(browser.new_context)(viewport={"width": 375, "height": 800})
    yield on_browser_thread(context.new_page)()
    on_browser_thread(context.close)()


# (template, context, what has the focus after the error)
AFTER_AN_ERROR = [
    # the password form's error: the focus was on the email-link form's address above it
    (
        "login_email.html",
        {"offer_email_link": True, "email": EMAIL, "password_error": "wrong_credentials"},
        "#password",
    ),
    (
        "login_email.html",
        {"offer_email_link": True, "email": "ana@", "password_error": "invalid_email"},
        "#pw-email",
    ),
    (
        "login_email.html",
        {"offer_email_link": True, "email": EMAIL, "password_error": "throttled"},
        "#password",
    ),
    ("login_email.html", {"offer_email_link": True, "error": "invalid_email"}, "#email"),
    (
        "login_email.html",
        {"offer_email_link": False, "email": EMAIL, "password_error": "wrong_credentials"},
        "#password",
    ),
    # nothing had the focus: the box to tick, the button that tries the passkey again, the button
    # that makes the recovery codes again
    ("account_change.html", {"step": "block", "error": "not_confirmed"}, "#confirm"),
    (
        "account_change.html",
        {"step": "passkeys", "passkeys": [], "options_json": "{}", "error": "cancelled"},
        "[data-passkey=create]",
    ),
    (
        "account_change.html",
        {"step": "recovery", "left": 3, "error": "stale"},
        "form[action='/account/recovery'] button",
    ),
]


@pytest.mark.parametrize(("template", "context", "focused"), AFTER_AN_ERROR)
@on_browser_thread
def test_after_an_error_the_focus_is_on_what_it_is_about(
    page: Page, template: str, context: dict[str, object], focused: str
) -> None:
    """The error is said (role=alert), describes what has the focus, and that is what it is about."""
    page.set_content(render(PAGES, template, "sl", **context))
    target = page.locator(focused)
    expect(target).to_be_focused()
    described = target.get_attribute("aria-describedby")
    assert described, f"{focused} has no description"
    error = page.locator(f"#{described}")
    expect(error).to_have_attribute("role", "alert")
    expect(target).to_have_accessible_description(error.inner_text().strip())


@pytest.mark.parametrize("language", LANGUAGES)
@on_browser_thread
def test_the_details_keep_an_address_whole_on_a_wide_screen(
    browser: Browser, showing: list[Page], language: str
) -> None:
    """With the longest label (Slovenian 'Številka mobilnega telefona') as wide as it wanted, an
    ordinary address had a strip left and broke as 'ana.novak@example.co' / 'm'."""
    attributes = dict(_PERSON["attributes"])  # type: ignore[call-overload]
    attributes["email"] = {**attributes["email"], "value": EMAIL}
    html = render(PAGES, "account.html", language, **{**_ACCOUNT, "person": {"attributes": attributes}})
    page = layout.show(browser, showing, layout.DESKTOP, html)
    lines = page.evaluate(
        """(address) => {
            const dd = [...document.querySelectorAll('.details dd')]
                .find(d => d.textContent.includes(address));
            const text = [...dd.childNodes].find(n => n.nodeType === 3 && n.textContent.includes(address));
            const range = document.createRange();
            const start = text.textContent.indexOf(address);
            range.setStart(text, start);
            range.setEnd(text, start + address.length);
            return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size;
        }""",
        EMAIL,
    )
    assert lines == 1, f"{EMAIL} broke over {lines} lines"
