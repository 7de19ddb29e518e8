"""The email-link login (basic level): no enumeration, single use, expiry, browser binding, mail
scanners, throttles, CSRF on every form, suspended eIDs."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from sqlalchemy import update

from idp import eids, lockout
from idp.settings import Settings
from idp.storage import tables
from idp.storage.database import Tx
from tests.oidc.conftest import (
    Party,
    PartyFactory,
    audit_events,
    link_in,
    new_mails,
    outbox_names,
    parties,
    redirect_query,
    wait_for_mail,
)
from tests.support.flows import form_value, query_of
from tests.support.server import ServedApp, serve


class LoginPage:
    """The email form of one pending authorization request, in the party's browser."""

    def __init__(self, p: Party, **extra: str) -> None:
        self.p = p
        self.params, self.verifier = p.rp.authorize_params(**extra)
        to_login = p.rp.start(self.params)
        assert to_login.status_code == 303, to_login.text
        page = p.rp.browser.get(to_login.headers["location"])
        assert page.status_code == 200, page.text
        self.csrf = form_value(page.text, "csrf_token")
        self.request_id = form_value(page.text, "request_id")

    def send(
        self, email: str, *, csrf: str | None = None, browser: httpx.Client | None = None
    ) -> httpx.Response:
        data = {"request_id": self.request_id, "email": email}
        data["csrf_token"] = self.csrf if csrf is None else csrf
        # POST, then 303 to the "check your email" page; errors answer the POST itself
        return (browser or self.p.rp.browser).post("/login/email", data=data, follow_redirects=True)

    def link(self, email: str | None = None) -> str:
        """Ask for a link and read it from the mail."""
        email = email or self.p.email
        seen = outbox_names(self.p.served)
        response = self.send(email)
        assert response.status_code == 200, response.text
        return link_in(wait_for_mail(self.p.served, email, seen=seen))


def _confirm(browser: httpx.Client, link: str) -> tuple[httpx.Response, dict[str, str]]:
    page = browser.get(link)
    fields = {}
    if page.status_code == 200:
        fields = {"csrf_token": form_value(page.text, "csrf_token"), "token": form_value(page.text, "token")}
    return page, fields


def _link_problem(response: httpx.Response, reason: str) -> None:
    """The "this link cannot be used" page, for ``reason``."""
    assert response.status_code == 400, response.text
    assert "This link cannot be used" in response.text
    words = {
        "used": "already been used",
        "expired": "has expired",
        "other_browser": "different browser",
        "unknown": "do not recognise",
    }[reason]
    assert words in response.text, reason
    assert "set-cookie" not in response.headers or "idp_session" not in response.headers["set-cookie"]


def _refusals(served: ServedApp, tenant_id: str) -> list[str]:
    return [
        str(e["details"]["reason"])
        for e in audit_events(served)
        if e["event_type"] == "email_link.refused" and e["tenant_id"] == tenant_id
    ]


def test_an_unknown_address_gets_the_same_page_and_no_mail(party: PartyFactory, served: ServedApp) -> None:
    p = party()
    form = LoginPage(p)
    seen = outbox_names(served)
    unknown = form.send("nobody@example.com")
    known = form.send(p.email)
    assert unknown.status_code == known.status_code == 200
    # the page shows the address as typed, masked (it travels in the redirect's URL)
    assert _without(unknown.text, "nobody@example.com") == _without(known.text, p.email)
    wait_for_mail(served, p.email, seen=seen)  # the known one's mail was sent ...
    assert [m["To"] for m in _new(served, seen)] == [p.email]  # ... and only that one
    assert _refusals(served, p.tenant.id) == ["unknown_address"]
    # an address with an eID in another tenant is unknown here too
    other = party(email="bob@example.com")
    again = form.send(other.email)
    assert _without(again.text, other.email) == _without(known.text, p.email)
    assert _refusals(served, p.tenant.id) == ["unknown_address", "unknown_address"]


def _without(page: str, email: str) -> str:
    """The page with the masked address taken out, as text and as it appears in its own URL."""
    local, _, domain = email.partition("@")
    masked = f"{local[:1]}***@{domain}"
    return page.replace(masked, "X").replace(quote(masked, safe=""), "X")


def _new(served: ServedApp, seen: set[str]) -> list[EmailMessage]:
    return new_mails(served, seen=seen)


def test_an_invalid_address_is_asked_again(party: PartyFactory) -> None:
    p = party()
    form = LoginPage(p)
    response = form.send("not an address")
    assert response.status_code == 400
    assert "Enter a valid email address" in response.text


def test_a_link_works_once(party: PartyFactory) -> None:
    p = party()
    form = LoginPage(p)
    link = form.link()
    page, fields = _confirm(p.rp.browser, link)
    assert page.status_code == 200
    assert "a***@example.com" in page.text  # the address, masked
    first = p.rp.browser.post("/login/email/verify", data=fields)
    assert first.status_code == 303
    assert first.headers["location"] == f"/authorize/resume?request_id={form.request_id}"
    back = p.rp.browser.get(first.headers["location"])
    assert "code" in redirect_query(back)

    _link_problem(p.rp.browser.get(link), "used")
    _link_problem(p.rp.browser.post("/login/email/verify", data=fields), "used")


def test_an_expired_link_shows_the_expired_page(party: PartyFactory, served: ServedApp) -> None:
    p = party()
    form = LoginPage(p)
    link = form.link()
    page, fields = _confirm(p.rp.browser, link)
    assert page.status_code == 200
    assert p.eid is not None
    eid_id = p.eid.id

    def expire(tx: Tx) -> None:
        e = tables.email_links.c
        tx.conn.execute(update(tables.email_links).where(e.eid_id == eid_id).values(expires_at=tx.now - 1))

    served.write(expire)
    _link_problem(p.rp.browser.get(link), "expired")
    _link_problem(p.rp.browser.post("/login/email/verify", data=fields), "expired")


def test_a_link_opened_in_another_browser_is_refused_and_not_consumed(
    party: PartyFactory, served: ServedApp
) -> None:
    p = party()
    form = LoginPage(p)
    link = form.link()
    with served.client(headers={"Accept-Language": "en"}) as other:
        _link_problem(other.get(link), "other_browser")
        # even with a valid form token of its own, the other browser cannot use it
        own_csrf = _csrf_of(other, form.params)
        posted = other.post(
            "/login/email/verify", data={"csrf_token": own_csrf, "token": query_of(link)["token"]}
        )
        _link_problem(posted, "other_browser")
    # the first browser still can
    page, fields = _confirm(p.rp.browser, link)
    assert page.status_code == 200
    done = p.rp.browser.post("/login/email/verify", data=fields)
    assert done.status_code == 303


def _csrf_of(browser: httpx.Client, params: dict[str, str]) -> str:
    """A valid form token of ``browser`` (from a login page of its own)."""
    to_login = browser.get("/authorize", params=params)
    return form_value(browser.get(to_login.headers["location"]).text, "csrf_token")


def test_opening_the_link_does_not_log_in(party: PartyFactory, served: ServedApp) -> None:
    """Mail scanners fetch links: only the POST from the confirmation page logs in."""
    p = party()
    form = LoginPage(p)
    link = form.link()
    with served.client() as scanner:
        scanned = scanner.get(link)
        assert scanned.status_code == 400  # not its browser
    page = p.rp.browser.get(link)
    assert page.status_code == 200
    assert "idp_session" not in page.headers.get("set-cookie", "")
    assert 'action="/login/email/verify"' in page.text
    assert redirect_query(p.authorize_again(prompt="none"))["error"] == "login_required"
    # it is still good for the person
    page, fields = _confirm(p.rp.browser, link)
    assert p.rp.browser.post("/login/email/verify", data=fields).status_code == 303


def test_every_form_needs_its_csrf_token(party: PartyFactory, served: ServedApp) -> None:
    p = party()
    form = LoginPage(p)
    seen = outbox_names(served)
    for csrf in ("", "0" * 64):
        assert form.send(p.email, csrf=csrf).status_code == 403
    missing = p.rp.browser.post("/login/email", data={"request_id": form.request_id, "email": p.email})
    assert missing.status_code == 403
    assert not _new(served, seen)  # no link was sent

    link = form.link()
    _page, fields = _confirm(p.rp.browser, link)
    for bad in ({"token": fields["token"]}, {**fields, "csrf_token": "0" * 64}):
        refused = p.rp.browser.post("/login/email/verify", data=bad)
        assert refused.status_code == 403
    # a token made for another browser is no good either
    with served.client() as other:
        foreign = _csrf_of(other, form.params)
    assert foreign != fields["csrf_token"]
    assert p.rp.browser.post("/login/email/verify", data={**fields, "csrf_token": foreign}).status_code == 403
    # the link was not consumed by any of that
    assert p.rp.browser.post("/login/email/verify", data=fields).status_code == 303

    page = p.rp.browser.get("/logout")
    assert page.status_code == 200
    logout_fields = {"confirm": "yes"}
    assert p.rp.browser.post("/logout", data=logout_fields).status_code == 403
    assert p.rp.browser.post("/logout", data={**logout_fields, "csrf_token": "x"}).status_code == 403
    assert "code" in redirect_query(p.authorize_again(prompt="none"))  # still signed in


def test_a_suspended_eid_gets_no_mail_and_its_tokens_stop_working(
    party: PartyFactory, served: ServedApp
) -> None:
    p = party()
    tokens = p.tokens()
    assert p.eid is not None
    eid_id = p.eid.id
    served.write(
        lambda tx: eids.set_status(tx, eid_id=eid_id, status=eids.EIDStatus.SUSPENDED, reason="test")
    )

    refreshed = p.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"  # suspending revoked it
    assert p.userinfo(tokens["access_token"]).status_code == 401
    assert p.introspect(tokens["access_token"]).json() == {"active": False}
    # the SSO session no longer serves
    assert redirect_query(p.authorize_again(prompt="none"))["error"] == "login_required"

    served.user(p.tenant, "bob@example.com")
    form = LoginPage(p)
    seen = outbox_names(served)
    response = form.send(p.email)
    assert response.status_code == 200
    assert "Check your email" in response.text
    assert _refusals(served, p.tenant.id) == ["eid_not_active"]
    # mail goes out in the background: once a later request's mail is there, none came for Ana
    form.link("bob@example.com")
    assert [m["To"] for m in _new(served, seen)] == ["bob@example.com"]


def test_a_link_of_an_eid_suspended_after_sending_does_not_log_in(
    party: PartyFactory, served: ServedApp
) -> None:
    p = party()
    form = LoginPage(p)
    link = form.link()
    assert p.eid is not None
    eid_id = p.eid.id
    served.write(lambda tx: eids.set_status(tx, eid_id=eid_id, status=eids.EIDStatus.BLOCKED, reason="test"))
    page, _fields = _confirm(p.rp.browser, link)
    # opening the link already says it cannot be used (no more than for an unknown link) ...
    assert page.status_code == 400
    assert "This link cannot be used" in page.text
    # ... and a confirmation page opened before the suspension cannot complete the login either
    token = parse_qs(urlsplit(link).query)["token"][0]
    fields = {"csrf_token": form.csrf, "token": token}  # the browser's CSRF token is per browser
    response = p.rp.browser.post("/login/email/verify", data=fields)
    assert response.status_code == 400
    assert "This link cannot be used" in response.text
    assert "idp_session" not in response.headers.get("set-cookie", "")
    failed = [e for e in audit_events(served) if e["event_type"] == "login.failed"]
    assert failed[-1]["details"]["reason"] == "eid_not_active"
    assert redirect_query(p.authorize_again(prompt="none"))["error"] == "login_required"


def test_a_locked_eid_gets_no_link_and_a_link_sent_before_the_lock_does_not_log_in(
    party: PartyFactory, served: ServedApp
) -> None:
    """A lock (too many wrong passwords or codes) stops every way in until an administrator
    lifts it, the email link as the password, the code and the passkey."""
    p = party()
    form = LoginPage(p)
    link = form.link()  # sent while the eID was not locked
    assert p.eid is not None
    eid_id, tenant_id = p.eid.id, p.tenant.id
    served.write(lambda tx: lockout.lock(tx, eid_id=eid_id, tenant_id=tenant_id, reason="password_failures"))
    page, _fields = _confirm(p.rp.browser, link)
    # opening the link already says it cannot be used, and posting its form does not log in
    assert page.status_code == 400 and "This link cannot be used" in page.text
    token = parse_qs(urlsplit(link).query)["token"][0]
    response = p.rp.browser.post("/login/email/verify", data={"csrf_token": form.csrf, "token": token})
    assert response.status_code == 400 and "This link cannot be used" in response.text
    assert "idp_session" not in response.headers.get("set-cookie", "")
    failed = [e for e in audit_events(served) if e["event_type"] == "login.failed"]
    assert failed[-1]["details"]["reason"] == "eid_locked"
    # asked for again while locked: the same page as for anyone, and no mail
    served.user(p.tenant, "bob@example.com")
    seen = outbox_names(served)
    again = LoginPage(p).send(p.email)
    assert again.status_code == 200 and "Check your email" in again.text
    assert _refusals(served, p.tenant.id)[-1] == "eid_locked"
    LoginPage(p).link("bob@example.com")  # mail goes out in the background: a later one is there
    assert [m["To"] for m in _new(served, seen)] == ["bob@example.com"]


# -- throttles (own app: the suite's shared one has generous limits) -------------------------------


@pytest.fixture
def limited(
    settings_factory: Callable[..., Settings], tls: tuple[Path, Path], tmp_path: Path
) -> Callable[..., AbstractContextManager[ServedApp]]:
    def start(**overrides: Any) -> AbstractContextManager[ServedApp]:
        return serve(settings_factory, tls=tls, outbox=tmp_path / "mail", **overrides)

    return start


def test_the_per_address_limit_sends_no_more_mail(
    limited: Callable[..., AbstractContextManager[ServedApp]],
) -> None:
    with limited(email_link_limit_per_address=2) as app, parties(app) as party:
        p = party()
        form = LoginPage(p)
        form.link()
        form.link()
        app.user(p.tenant, "bob@example.com")
        seen = outbox_names(app)
        third = form.send(p.email)
        assert third.status_code == 200
        assert "Check your email" in third.text
        assert _refusals(app, p.tenant.id) == ["throttled"]
        # the limit is per address: another person of the tenant still gets a link, and only they
        form.link("bob@example.com")
        assert [m["To"] for m in _new(app, seen)] == ["bob@example.com"]


def test_the_per_ip_limit_answers_429_with_retry_after(
    limited: Callable[..., AbstractContextManager[ServedApp]],
) -> None:
    with limited(email_link_limit_per_ip=2) as app, parties(app) as party:
        p = party()
        form = LoginPage(p)
        assert form.send("x1@example.com").status_code == 200
        assert form.send("x2@example.com").status_code == 200
        seen = outbox_names(app)
        response = form.send(p.email)
        assert response.status_code == 429
        assert 0 < int(response.headers["retry-after"]) <= 3601
        assert "Too many sign-in links" in response.text
        assert not _new(app, seen)
