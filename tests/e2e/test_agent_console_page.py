"""The agent console in Chromium: an agent takes a reviewed session from the queue, sees the
stills load from the sealed evidence, confirms the checklist and approves; the person's eID is
proofed (issue 4 item 10: "the agent console approving a reviewed session")."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from idp import proofing
from tests.support.agents import DOCUMENT_NUMBER, make_agents, reviewed_session, session_cookie, session_of
from tests.support.browser import on_browser_thread
from tests.support.server import ServedApp, serve, settings_factory_for
from videoid.records import Status

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served_console(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path, tls: tuple[Path, Path]
) -> Iterator[ServedApp]:
    directory = tmp_path_factory.mktemp("agent-console")
    shutil.copy(sqlite_template, directory / "idp.db")
    url = f"sqlite+aiosqlite:///{directory / 'idp.db'}"
    with serve(settings_factory_for(url, directory), tls=tls, outbox=directory / "mail") as app:
        yield app


@on_browser_thread
def test_an_agent_approves_a_reviewed_session_in_the_console(
    browser: Browser, served_console: ServedApp
) -> None:
    served = served_console
    tenant = served.tenant()
    person = served.user(tenant, "ana@example.com", given_name="Ana", family_name="Novak")
    agent = served.user(tenant, "agent@example.com", given_name="Ema")
    make_agents(served, tenant.id, agent)
    session = reviewed_session(served, person)
    context = browser.new_context(
        ignore_https_errors=True, locale="en-GB", viewport={"width": 1280, "height": 800}
    )
    try:
        context.add_cookies(
            [
                {
                    "name": "__Host-idp_session",
                    "value": session_cookie(served, agent),
                    "url": served.issuer + "/",
                }
            ]
        )
        page = context.new_page()
        failed: list[tuple[int, str]] = []
        page.on("response", lambda r: failed.append((r.status, r.url)) if r.status >= 400 else None)
        page.goto(served.issuer + "/agent")
        expect(page.locator("#takeable")).to_have_text("1 session can be assigned to you.")
        page.click("#next")
        expect(page.locator("#document-number")).to_have_text(DOCUMENT_NUMBER)
        for still in ("face", "document_front"):
            image = page.locator(f"#still-{still}")
            expect(image).to_be_visible()
            # the image really loaded (the CSP and the endpoint's headers let it through)
            page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=image.element_handle())
            # on a desktop the still is large enough to compare and read, and opens at full size
            box = image.bounding_box()
            assert box is not None and box["width"] >= 280, box
            link = page.locator(f"a:has(#still-{still})")
            assert link.get_attribute("href") == image.get_attribute("src")
        # approving without the checklist is refused on the page
        page.click("#approve")
        expect(page.locator("#decision-error")).to_be_visible()
        for item in ("security_features_seen", "document_number_read_out", "sms_code_matched"):
            page.check(f"#{item}")
        page.click("#approve")
        expect(page.locator("#notice")).to_contain_text("The session is approved")
        # the only refusal was the incomplete approval (and a browser's favicon request)
        decision_url = f"{served.issuer}/agent/sessions/{session.id}/decision"
        assert [f for f in failed if not f[1].endswith("/favicon.ico")] == [(400, decision_url)], failed
    finally:
        context.close()
    assert session_of(served, session.id).status is Status.APPROVED
    assert served.run(served.state.db.read(lambda conn: proofing.is_proofed(conn, person.id)))
