"""The account and sign-in pages in Chromium, as a person uses them: templates rendered with their
test contexts (``tests.support.pages``), no app behind them, and the account page of the served app.

After an error the focus is on what the error is about, so typing again goes where it should; the
account's details keep an address whole on a wide screen; its moments are shown on the reader's
clock, in the page's language.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Response, expect

from idp import audit, eids
from idp.storage.database import Tx
from idp.web.browser import SESSION_COOKIE
from levels_of_assurance.ladder import Level
from tests.e2e import test_page_layout as layout
from tests.support.agents import session_cookie
from tests.support.browser import on_browser_thread
from tests.support.pages import _ACCOUNT, _PERSON, LANGUAGES, all_pages, render
from tests.support.server import ServedApp

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


# Moments that are another day in Ljubljana than in UTC, in winter (CET, UTC+1) and in summer
# (CEST, UTC+2). The page writes them in UTC; static/local-time.js on the reader's clock.
WINTER = datetime(2026, 12, 7, 23, 30, 5, 250_000, tzinfo=UTC)
SUMMER = datetime(2026, 7, 31, 23, 45, tzinfo=UTC)
VERIFIED = datetime(2026, 7, 31, 22, 30, tzinfo=UTC)
LJUBLJANA = ZoneInfo("Europe/Ljubljana")
SL_MONTHS = {8: "avg.", 12: "dec."}  # CLDR's abbreviated month names in Slovenian
# the browser's own language for each page language; Playwright sends it as Accept-Language
BROWSER_LOCALES = {"sl": "sl-SI", "en": "en-GB", "hr": "hr-HR", "sr-Latn": "sr-Latn-RS"}


def in_slovenian(moment: datetime, *, date_only: bool = False) -> str:
    """``moment`` in Ljubljana as Slovenian writes it (CLDR's medium date, short time)."""
    local = moment.astimezone(LJUBLJANA)
    day = f"{local.day}. {SL_MONTHS[local.month]} {local.year}"
    return day if date_only else f"{day}, {local:%H:%M}"


@pytest.fixture
def account_cookie(served: ServedApp) -> str:
    """The session cookie of a person whose password was changed on a winter night, who failed to
    sign in on a summer night, and whose address was confirmed on another."""
    tenant = served.tenant()
    person = served.user(tenant, EMAIL, given_name="Ana")

    def unit(tx: Tx) -> None:
        for moment, event_type in ((WINTER, "password.changed"), (SUMMER, "login.failed")):
            tx.now = moment.timestamp()  # what the unit writes happened then
            event = audit.AuditEvent(
                event_type,
                success=event_type != "login.failed",
                tenant_id=person.tenant_id,
                eid_id=person.id,
                username=person.username,
            )
            audit.record(tx, event)
        tx.now = VERIFIED.timestamp()
        eids.mark_verified(tx, eid_id=person.id, name="email", method="email_link")

    served.write(unit)
    return session_cookie(served, person, level=Level.BASIC)


def open_account(browser: Browser, served: ServedApp, cookie: str, locale: str) -> tuple[Page, list[str]]:
    """The account page in a browser in Ljubljana whose person reads ``locale``, and what went
    wrong on it: a script the Content-Security-Policy refused, an error in one, a file not found
    (but the icon the browser asks for by itself)."""
    context = browser.new_context(ignore_https_errors=True, locale=locale, timezone_id="Europe/Ljubljana")
    context.set_default_timeout(10_000)
    context.add_cookies([{"name": SESSION_COOKIE, "value": cookie, "url": served.issuer + "/"}])
    page = context.new_page()
    problems: list[str] = []

    def said(message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.append(message.text)

    def answered(response: Response) -> None:
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            problems.append(f"{response.status} {response.url}")

    page.on("console", said)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("response", answered)
    page.goto(served.issuer + "/account")
    return page, problems


@on_browser_thread
def test_moments_are_shown_on_the_reader_s_clock_in_slovenian(
    browser: Browser, served: ServedApp, account_cookie: str
) -> None:
    """A person in Ljubljana read "2026-12-07 23:30 UTC" and had to work out that it was half past
    midnight on the 8th; in summer the difference is two hours."""
    assert WINTER.astimezone(LJUBLJANA).utcoffset() == timedelta(hours=1)
    assert SUMMER.astimezone(LJUBLJANA).utcoffset() == timedelta(hours=2)
    page, problems = open_account(browser, served, account_cookie, "sl-SI")
    try:
        expect(page.locator("html")).to_have_attribute("lang", "sl")
        winter = page.locator('[data-event="password.changed"] time')
        expect(winter).to_have_text(in_slovenian(WINTER))  # 8. dec. 2026, 00:30
        expect(winter).to_have_attribute("title", "2026-12-07 23:30:05 UTC")
        expect(winter).to_have_attribute("datetime", "2026-12-07T23:30:05Z")
        summer = page.locator('[data-event="login.failed"] time')
        expect(summer).to_have_text(in_slovenian(SUMMER))  # 1. avg. 2026, 01:45
        expect(summer).to_have_attribute("title", "2026-07-31 23:45:00 UTC")
        # the day an address was confirmed is the day in Ljubljana
        verified = page.locator(".details time")
        expect(verified).to_have_text(in_slovenian(VERIFIED, date_only=True))  # 1. avg. 2026
        expect(verified).to_have_attribute("title", "2026-07-31 22:30:00 UTC")
        assert not problems, problems
    finally:
        page.context.close()


@pytest.mark.parametrize("language", LANGUAGES)
@on_browser_thread
def test_moments_are_written_in_the_page_s_language(
    browser: Browser, served: ServedApp, account_cookie: str, language: str
) -> None:
    """Each page language writes the local moment its own way, Serbian in Latin letters as its page."""
    page, problems = open_account(browser, served, account_cookie, BROWSER_LOCALES[language])
    try:
        expect(page.locator("html")).to_have_attribute("lang", language)
        winter = page.locator('[data-event="password.changed"] time')
        expect(winter).to_have_attribute("title", "2026-12-07 23:30:05 UTC")
        shown = winter.inner_text()
        # the day and the time in Ljubljana, on a 24-hour clock; not the UTC ones, not in Cyrillic
        assert re.search(r"\b8\b", shown) and "2026" in shown and "00:30" in shown, shown
        assert "UTC" not in shown and "23:30" not in shown and not re.search("[\u0400-\u04ff]", shown)
        assert not problems, problems
    finally:
        page.context.close()
