"""A real browser for page tests: Debian's Chromium driven by Playwright, and a relying app to return to.

Playwright's own browser download is not used: the tests drive the system Chromium
(``IDP_TEST_CHROMIUM``, default ``/usr/bin/chromium``). A browser that cannot start fails the
tests, unless ``IDP_TEST_ALLOW_NO_BROWSER=1`` says to skip them (CI never sets it).
"""

from __future__ import annotations

import functools
import html
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NoReturn, ParamSpec, TypeVar
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Error, Page, Playwright, sync_playwright

P = ParamSpec("P")
T = TypeVar("T")

CHROMIUM = os.environ.get("IDP_TEST_CHROMIUM", "/usr/bin/chromium")
# Unless told not to, Chromium calls home (updates, sync, field trials); tests use no network.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# Playwright's sync API leaves its event loop marked as running on the thread that started it, so
# asyncio.run (database set-up) and pytest-asyncio would fail on that thread. The browser therefore
# lives on a thread of its own, and browser tests run their bodies there (``on_browser_thread``).
_BROWSER_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="browser")


def on_browser_thread(test: Callable[P, T]) -> Callable[P, T]:
    """Run ``test`` (which drives the browser) on the browser's thread; fixtures stay on the main one."""

    @functools.wraps(test)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        return _BROWSER_THREAD.submit(test, *args, **kwargs).result()

    return run


@contextmanager
def chromium() -> Iterator[Browser]:
    """Chromium, started once; a failure to start fails the test with the reason."""
    playwright, browser = _BROWSER_THREAD.submit(_launch).result()
    try:
        yield browser
    finally:
        _BROWSER_THREAD.submit(_close, playwright, browser).result()


def _launch() -> tuple[Playwright, Browser]:
    try:
        playwright = sync_playwright().start()
    except Error as exc:
        problem = f"Playwright did not start: {exc}"
    else:
        try:
            return playwright, playwright.chromium.launch(
                executable_path=CHROMIUM, args=LAUNCH_ARGS, timeout=30_000
            )
        except Error as exc:
            playwright.stop()
            problem = f"Chromium at {CHROMIUM} did not start (set IDP_TEST_CHROMIUM): {exc}"
    _no_browser(problem)


def _close(playwright: Playwright, browser: Browser) -> None:
    try:
        browser.close()
    finally:
        playwright.stop()


def _no_browser(reason: str) -> NoReturn:
    if os.environ.get("IDP_TEST_ALLOW_NO_BROWSER") == "1":
        pytest.skip(reason)
    pytest.fail(
        f"{reason}\nThe browser tests need Chromium; IDP_TEST_ALLOW_NO_BROWSER=1 skips them.", pytrace=False
    )


def add_virtual_authenticator(context: BrowserContext, page: Page) -> None:
    """A platform authenticator with user verification, as a phone or laptop has (Chrome DevTools
    Protocol, WebAuthn domain): passkeys created and used in ``page`` need no person."""
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "ctap2Version": "ctap2_1",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )


def focus_ring(page: Page) -> dict[str, Any]:
    """What the focused element is and how its focus is drawn (computed style)."""
    return page.evaluate(  # type: ignore[no-any-return]
        """() => {
            const el = document.activeElement;
            const style = getComputedStyle(el);
            return {tag: el.tagName.toLowerCase(), id: el.id, type: el.getAttribute("type"),
                    text: el.innerText || "", outlineStyle: style.outlineStyle,
                    outlineWidth: parseFloat(style.outlineWidth) || 0, outlineColor: style.outlineColor};
        }"""
    )


@dataclass
class RelyingApp:
    """The browser-facing half of a relying app: its redirect URI, which records what arrives."""

    host: str
    port: int
    received: list[dict[str, str]] = field(default_factory=list)

    @property
    def redirect_uri(self) -> str:
        return f"http://{self.host}:{self.port}/callback"


@contextmanager
def relying_app() -> Iterator[RelyingApp]:
    """Serve ``http://127.0.0.1:<port>/callback`` in a thread until the block ends."""
    app = RelyingApp("127.0.0.1", 0)

    class Callback(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path != "/callback":
                self.send_error(404)
                return
            query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            app.received.append(query)
            if "code" in query:
                body = "<h1>Signed in</h1>"
            else:
                body = f"<h1>Not signed in</h1><p>{html.escape(query.get('error', 'no code'))}</p>"
            page = f'<!doctype html><html lang="en"><title>Relying app</title>{body}</html>'.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((app.host, 0), Callback)
    app.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="relying-app", daemon=True)
    thread.start()
    try:
        yield app
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
