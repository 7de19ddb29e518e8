"""Every page and HTML mail, in every state the tests know, passes axe-core's checks in Chromium on
a phone: names and labels, ARIA, contrast (the tenant's colour included), landmarks, language.

axe-core comes with ``axe-playwright-python`` (its ``axe.min.js``, loaded into each page before
the page's own scripts; nothing is downloaded). Templates are rendered with their test contexts
(``tests.support.pages``) and the real stylesheet, no app behind them, in Slovenian: the other
languages change words, not structure (``tests/web/test_i18n.py`` checks each page's ``lang``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from axe_playwright_python.base import AXE_SCRIPT
from playwright.sync_api import Browser, Page, Route

from tests.support.browser import on_browser_thread
from tests.support.pages import PAGES, TEMPLATES_DIR, VARIANTS, all_pages, render

pytestmark = pytest.mark.browser

ORIGIN = "https://idp.test"
PHONE = {"width": 375, "height": 812}
STYLESHEET = (TEMPLATES_DIR / "static" / "style.css").read_bytes()
# the layout every page extends has no heading of its own: each page brings its <h1>; a mail has
# no landmarks or headings to navigate by (mail programs drop or replace them)
NOT_CHECKED = {"base.html": {"page-has-heading-one"}}
NOT_IN_MAIL = {"landmark-one-main", "page-has-heading-one", "region"}

STATES = [(name, {}) for name in sorted(PAGES) if name.endswith(".html")] + [
    (name, context) for name, context in VARIANTS if name.endswith(".html")
]
# light, mid and dark tenant colours: buttons, links and focus rings keep their contrast
BRANDED = [
    (name, {"branding": {"primary_color": colour, "name": "ACME d.o.o."}})
    for name in ("login_email.html", "onboarding.html", "account.html")
    for colour in ("#ffcc00", "#7fb3ff", "#102040")
]


@pytest.fixture(scope="module")
def page(browser: Browser) -> Iterator[Page]:
    """One tab for the whole module; each check loads its page into it."""
    context = on_browser_thread(browser.new_context)(viewport=PHONE)
    on_browser_thread(context.add_init_script)(script=AXE_SCRIPT)  # sent once, run in every page
    tab = on_browser_thread(context.new_page)()
    tab.showing = ""  # type: ignore[attr-defined]

    def answer(route: Route) -> None:
        if route.request.url.endswith("/static/style.css"):
            route.fulfill(body=STYLESHEET, content_type="text/css")
        elif route.request.url == f"{ORIGIN}/page":
            route.fulfill(body=tab.showing, content_type="text/html; charset=utf-8")  # type: ignore[attr-defined]
        else:  # scripts, images: not what is checked here
            route.fulfill(status=404, body="")

    on_browser_thread(tab.route)(f"{ORIGIN}/**", answer)
    yield tab
    on_browser_thread(context.close)()


def violations(page: Page, name: str, language: str, context: dict[str, Any]) -> list[str]:
    page.showing = render(all_pages(), name, language, **context)  # type: ignore[attr-defined]
    page.goto(f"{ORIGIN}/page")
    found = page.evaluate('axe.run({resultTypes: ["violations"]}).then(r => r.violations)')
    skip = NOT_IN_MAIL if name.startswith("emails/") else NOT_CHECKED.get(name, set())
    return [
        f"{v['id']} ({v['impact']}): {v['help']}: " + " | ".join(n["html"][:160] for n in v["nodes"][:3])
        for v in found
        if v["id"] not in skip
    ]


@on_browser_thread
def test_every_state_of_every_page(page: Page) -> None:
    found = {
        f"{name} {sorted(context)}": problems
        for name, context in STATES + BRANDED
        if (problems := violations(page, name, "sl", context))
    }
    assert not found, "\n".join(f"{k}: {v}" for k, v in found.items())
