"""How pages lay out on a phone (375 px wide) and on a desktop, in Chromium: templates rendered
with their test contexts (``tests.support.pages``) and the real stylesheet, no app behind them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, Route

from tests.support.browser import on_browser_thread
from tests.support.pages import TEMPLATES_DIR, all_pages, render

pytestmark = pytest.mark.browser

ORIGIN = "https://idp.test"
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 800}
STYLESHEET = (TEMPLATES_DIR / "static" / "style.css").read_bytes()


@pytest.fixture
def showing(browser: Browser) -> Iterator[list[Page]]:
    opened: list[Page] = []
    yield opened
    for page in opened:
        on_browser_thread(page.context.close)()


def show(browser: Browser, opened: list[Page], viewport: dict[str, int], page_html: str) -> Page:
    context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    page = context.new_page()
    opened.append(page)

    def answer(route: Route) -> None:
        if route.request.url.endswith("/static/style.css"):
            route.fulfill(body=STYLESHEET, content_type="text/css")
        else:
            route.fulfill(body=page_html, content_type="text/html; charset=utf-8")

    page.route(f"{ORIGIN}/**", answer)
    page.goto(f"{ORIGIN}/page")
    return page


def widths(page: Page, selector: str) -> list[float]:
    return page.eval_on_selector_all(selector, "els => els.map(e => e.getBoundingClientRect().width)")  # type: ignore[no-any-return]


ACCOUNT = {
    "person": {
        "attributes": {
            "given_name": {"value": "Ana", "verified_at": None, "verified_method": None},
            "email": {
                "value": "ana.novak-horvat@primer-podjetja.si",
                "verified_at": 1_700_000_000,
                "verified_method": "invitation_link",
            },
            "phone_number": {"value": "+38640123456", "verified_at": 1_700_000_000, "verified_method": "sms"},
        }
    },
}


@pytest.mark.parametrize("language", ["sl", "hr"])
@on_browser_thread
def test_details_on_a_phone_use_the_whole_width(browser: Browser, showing: list[Page], language: str) -> None:
    """On a phone the label column ('Številka mobilnega telefona') took its full width and left the
    values a strip of ~140 px: the email address broke over four lines, a word or two a line."""
    page = show(browser, showing, PHONE, render(all_pages(), "account.html", language, **ACCOUNT))
    content = page.eval_on_selector(
        "main", "m => m.clientWidth - 2 * parseFloat(getComputedStyle(m).paddingLeft)"
    )
    assert min(widths(page, ".details dd")) >= 0.9 * content
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


@on_browser_thread
def test_details_on_a_desktop_stay_side_by_side(browser: Browser, showing: list[Page]) -> None:
    page = show(browser, showing, DESKTOP, render(all_pages(), "account.html", "sl", **ACCOUNT))
    label_right = page.eval_on_selector(".details dt", "e => e.getBoundingClientRect().right")
    value_left = page.eval_on_selector(".details dd", "e => e.getBoundingClientRect().left")
    assert value_left > label_right


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
@on_browser_thread
def test_the_masked_sms_number_stays_on_one_line(
    browser: Browser, showing: list[Page], viewport: dict[str, int]
) -> None:
    """The Serbian line 'Broj mobilnog telefona za SMS kodove: +381 ••• ••• 567' broke inside the
    masked number on a desktop, leaving '567' alone on the next line."""
    html = render(all_pages(), "account.html", "sr-Latn", **ACCOUNT, phone="+381 ••• ••• 567")
    page = show(browser, showing, viewport, html)
    lines = page.eval_on_selector_all(
        "li span", "els => els.filter(e => e.textContent.includes('•')).map(e => e.getClientRects().length)"
    )
    assert lines == [1]
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]


@pytest.mark.parametrize("language", ["sl", "hr", "sr-Latn", "en"])
@on_browser_thread
def test_the_date_a_detail_was_confirmed_stays_on_one_line(
    browser: Browser, showing: list[Page], language: str
) -> None:
    """On a phone the Slovenian 'potrjeno s povezavo iz povabila 2026-12-07' broke inside the date,
    leaving '12-07' alone on the next line: the value's column may break anywhere (long addresses)."""
    page = show(browser, showing, PHONE, render(all_pages(), "account.html", language, **ACCOUNT))
    lines = page.eval_on_selector_all(".details dd time", "els => els.map(e => e.getClientRects().length)")
    assert lines and all(n == 1 for n in lines), lines
