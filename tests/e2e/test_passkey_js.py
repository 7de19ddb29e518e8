"""templates/static/passkey.js in Chromium with a virtual authenticator (Chrome DevTools WebAuthn).

A tiny page of the test's own embeds the server's options JSON the way the login pages will, runs
passkey.js, and posts the result; the server side is the real ceremony code on SQLite. Both of
passkey.js's paths are covered: the browser's ``PublicKeyCredential.parse*OptionsFromJSON`` and
``toJSON``, and the manual base64url conversion used where those are missing.
"""

from __future__ import annotations

import asyncio
import html
import json
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

import templates
from idp.eids import EID
from idp.storage.database import Database, Tx
from levels_of_assurance.authenticators import passkey
from tests.support.browser import add_virtual_authenticator, on_browser_thread
from tests.support.factors import person

pytestmark = pytest.mark.browser

T = TypeVar("T")
SCRIPT = Path(templates.__file__).with_name("static") / "passkey.js"
# what a browser without the WebAuthn Level 3 JSON helpers looks like
WITHOUT_JSON_HELPERS = """
delete PublicKeyCredential.parseCreationOptionsFromJSON;
delete PublicKeyCredential.parseRequestOptionsFromJSON;
delete PublicKeyCredential.prototype.toJSON;
"""


@dataclass
class Site:
    port: int = 0
    page: str = ""
    posted: list[dict[str, str]] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"http://localhost:{self.port}"


@contextmanager
def site() -> Iterator[Site]:
    state = Site()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/static/passkey.js":
                self._send(SCRIPT.read_bytes(), "text/javascript")
            elif self.path == "/ceremony":
                self._send(state.page.encode(), "text/html; charset=utf-8")
            else:
                self.send_error(404)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
            state.posted.append({k: v[0] for k, v in form.items()})
            self._send(b"<!doctype html><title>done</title><h1>done</h1>", "text/html")

        def _send(self, body: bytes, kind: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            # the policy the login pages will need: scripts from this origin only, none inline
            self.send_header(
                "Content-Security-Policy", "default-src 'none'; script-src 'self'; form-action 'self'"
            )
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def ceremony_page(options_json: str, mode: str) -> str:
    return f"""<!doctype html><html lang="en"><title>Passkey</title>
<script type="application/json" id="passkey-options">{html.escape(options_json, quote=False)}</script>
<form id="passkey-form" method="post" action="/done"><input type="hidden" name="credential"></form>
<button type="button" id="go" data-passkey="{mode}" data-options="passkey-options" data-form="passkey-form"
        data-field="credential" data-error-field="error" data-status="status">Go</button>
<p id="status" role="status" hidden></p>
<script src="/static/passkey.js"></script></html>"""


@on_browser_thread
def open_with_authenticator(browser: Browser, init_script: str | None) -> tuple[BrowserContext, Page]:
    context = browser.new_context()
    page = context.new_page()
    if init_script:
        page.add_init_script(init_script)
    add_virtual_authenticator(context, page)
    return context, page


@on_browser_thread
def click_through(page: Page, url: str) -> None:
    page.goto(url)
    page.click("#go")
    page.wait_for_url("**/done", timeout=15_000)


@on_browser_thread
def helpers_present(page: Page) -> list[str]:
    return page.evaluate(  # type: ignore[no-any-return]
        """() => [typeof PublicKeyCredential.parseCreationOptionsFromJSON,
                  typeof PublicKeyCredential.parseRequestOptionsFromJSON,
                  typeof PublicKeyCredential.prototype.toJSON]"""
    )


@on_browser_thread
def close(context: BrowserContext) -> None:
    context.close()


def on_db(url: str, unit: Callable[[Tx], T]) -> T:
    async def run() -> T:
        db = Database(url)
        try:
            return await db.write(unit)
        finally:
            await db.close()

    return asyncio.run(run())


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    target = tmp_path / "idp.db"
    shutil.copy(sqlite_template, target)
    return f"sqlite+aiosqlite:///{target}"


def make_person(url: str) -> EID:
    async def run() -> EID:
        db = Database(url)
        try:
            return await person(db)
        finally:
            await db.close()

    return asyncio.run(run())


@pytest.mark.parametrize("helpers", ["browser's JSON helpers", "manual conversion"])
def test_register_and_sign_in_username_less(browser: Browser, sqlite_url: str, helpers: str) -> None:
    signer = make_person(sqlite_url)
    init = None if helpers == "browser's JSON helpers" else WITHOUT_JSON_HELPERS
    context, page = open_with_authenticator(browser, init)
    try:
        with site() as web:
            options, challenge_id = on_db(
                sqlite_url,
                lambda tx: passkey.registration_options(
                    tx, rp_id="localhost", rp_name="Acme", eid=signer, now=tx.now
                ),
            )
            web.page = ceremony_page(options, "create")
            click_through(page, f"{web.origin}/ceremony")
            expected = ["function"] * 3 if init is None else ["undefined"] * 3
            assert helpers_present(page) == expected
            [posted] = web.posted
            credential = json.loads(posted["credential"])
            assert credential["type"] == "public-key" and "attestationObject" in credential["response"]
            stored = on_db(
                sqlite_url,
                lambda tx: passkey.finish_registration(
                    tx,
                    challenge_id=challenge_id,
                    credential_json=posted["credential"],
                    expected_origin=web.origin,
                    rp_id="localhost",
                    name="Chromium",
                    now=tx.now,
                ),
            )
            assert stored.user_verified and "internal" in stored.transports

            options, challenge_id = on_db(
                sqlite_url,
                lambda tx: passkey.authentication_options(tx, rp_id="localhost", eid_id=None, now=tx.now),
            )
            web.page = ceremony_page(options, "get")
            click_through(page, f"{web.origin}/ceremony")
            answer = web.posted[-1]["credential"]
            login = on_db(
                sqlite_url,
                lambda tx: passkey.finish_authentication(
                    tx,
                    challenge_id=challenge_id,
                    credential_json=answer,
                    expected_origin=web.origin,
                    rp_id="localhost",
                    now=tx.now,
                ),
            )
            assert login.eid_id == signer.id and login.user_verified
            assert login.credential_id == stored.credential_id
    finally:
        close(context)


def test_a_refused_ceremony_posts_the_error_name(browser: Browser, sqlite_url: str) -> None:
    signer = make_person(sqlite_url)
    context, page = open_with_authenticator(browser, None)
    try:
        with site() as web:
            options, _challenge_id = on_db(
                sqlite_url,
                lambda tx: passkey.registration_options(
                    tx, rp_id="another-site.example", rp_name="Acme", eid=signer, now=tx.now
                ),
            )
            web.page = ceremony_page(options, "create")  # an RP ID this origin may not use
            click_through(page, f"{web.origin}/ceremony")
            [posted] = web.posted
            assert posted["credential"] == "" and posted["error"] == "SecurityError"
    finally:
        close(context)
