"""Fixtures of the protocol suite: a relying party registered in its own tenant, logged-in flows.

``served`` is overridden here: one app per database engine serves the whole protocol suite, so
every test still runs on SQLite and on PostgreSQL, without starting a server for each test.
Tests stay independent because each makes its own tenant (:func:`party`) and looks only at its
own rows, mails and audit events. Tests that need other settings start their own app with
:func:`tests.support.server.serve`.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import Connection, select

from idp import audit, clients, eids, tenants
from idp.storage import tables
from tests.support.flows import RelyingParty, form_value, query_of
from tests.support.server import ServedApp, database_url_on, serve, settings_factory_for

REDIRECT_URI = "https://rp.example/cb"
LOGOUT_URI = "https://rp.example/logged-out"


@dataclass
class Party:
    """A tenant, one of its clients with a relying party, and a person with an eID there."""

    served: ServedApp
    tenant: tenants.Tenant
    client: clients.NewClient
    rp: RelyingParty
    email: str
    eid: eids.EID | None

    @property
    def client_id(self) -> str:
        return self.client.client.client_id

    @property
    def auth(self) -> tuple[str, str] | None:
        secret = self.client.client_secret
        return (self.client_id, secret) if secret else None

    def post(self, path: str, **data: str) -> httpx.Response:
        """A back-channel POST authenticated as this client (client_secret_basic or client_id)."""
        if self.auth is None:
            data.setdefault("client_id", self.client_id)
        return self.rp.backend.post(path, data=data, auth=self.auth)

    def introspect(self, token: str) -> httpx.Response:
        return self.post("/introspect", token=token)

    def userinfo(self, access_token: str) -> httpx.Response:
        return self.rp.backend.get("/userinfo", headers={"Authorization": f"Bearer {access_token}"})

    def refresh(self, refresh_token: str) -> httpx.Response:
        return self.rp.token(grant_type="refresh_token", refresh_token=refresh_token)

    def login(self, **extra: str) -> Login:
        """From /authorize to the RP's callback: through the email-link login, or at once when the
        browser's SSO session is good enough."""
        params, verifier = self.rp.authorize_params(**extra)
        response = self.rp.start(params)
        if response.status_code == 303:
            response = self.sign_in(response)
        return Login(params, verifier, redirect_query(response, self.rp.redirect_uri))

    def sign_in(self, to_login: httpx.Response) -> httpx.Response:
        """Given /authorize's redirect to the login page: the email-link login; returns the
        response that redirects back to the client."""
        assert to_login.status_code == 303, to_login.text
        page = self.rp.browser.get(to_login.headers["location"])
        assert page.status_code == 200, page.text
        seen = outbox_names(self.served)
        sent = self.rp.browser.post(
            "/login/email",
            data={
                "csrf_token": form_value(page.text, "csrf_token"),
                "request_id": form_value(page.text, "request_id"),
                "email": self.email,
            },
            follow_redirects=True,  # POST, then 303 to the "check your email" page
        )
        assert sent.status_code == 200, sent.text
        resume = self.rp.open_link(link_in(wait_for_mail(self.served, self.email, seen=seen)))
        assert resume.status_code == 303, resume.text
        return self.rp.browser.get(resume.headers["location"])

    def tokens(self, **extra: str) -> dict[str, Any]:
        """A login and the code exchanged: the token response."""
        done = self.login(**extra)
        response = self.rp.exchange(done.callback["code"], done.verifier)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        body["_nonce"] = done.params["nonce"]
        return body

    def authorize_again(self, **extra: str) -> httpx.Response:
        """A new /authorize request from the same browser (its SSO session cookie goes along)."""
        params, _verifier = self.rp.authorize_params(**extra)
        return self.rp.start(params)


@dataclass
class Login:
    params: dict[str, str]
    verifier: str
    callback: dict[str, str]


PartyFactory = Callable[..., Party]


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def shared_app(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    sqlite_template: Path,
    tls: tuple[Path, Path],
) -> Iterator[ServedApp]:
    """One app per engine for the suite: SQLite with in-process limits, or PostgreSQL with Redis as
    a multi-instance deployment has them. Generous per-IP throttles: every test comes from 127.0.0.1."""
    directory = tmp_path_factory.mktemp(f"oidc-{request.param}")
    url = database_url_on(request.param, request, directory, sqlite_template)
    redis_url = reachable_redis() if request.param == "postgresql" else None
    with serve(
        settings_factory_for(url, directory),
        tls=tls,
        outbox=directory / "mail",
        email_link_limit_per_ip=1_000_000,
        email_link_limit_per_address=1_000,
        login_free_failures_per_ip=1_000_000,
        sms_limit_per_ip=1_000_000,
        # the flows share a few numbers on one server for the session; the limit's own tests are
        # in tests/otp/test_sms_codes.py
        sms_limit_per_number=1_000_000,
        redis_url=redis_url,
        redis_key_prefix=f"idp-test-{secrets.token_hex(6)}:",  # counters of earlier runs stay out
    ) as app:
        yield app


def reachable_redis() -> str | None:
    """``IDP_TEST_REDIS_URL`` (default the local server); None only where skipping is allowed."""
    url = os.environ.get("IDP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_timeout=2).ping()
    except (redis.ConnectionError, OSError) as exc:
        if os.environ.get("IDP_TEST_ALLOW_NO_REDIS") == "1":
            return None
        pytest.fail(f"Redis at {url} unreachable ({exc}); set IDP_TEST_ALLOW_NO_REDIS=1 to run without it")
    return url


@pytest.fixture
def served(shared_app: ServedApp) -> ServedApp:
    return shared_app


def outbox_names(served: ServedApp) -> set[str]:
    """The mails in the outbox so far (by file name; reading them all would grow with the suite)."""
    if not served.outbox.is_dir():
        return set()
    return {p.name for p in served.outbox.iterdir() if p.suffix == ".eml"}


def new_mails(served: ServedApp, *, seen: set[str]) -> list[EmailMessage]:
    messages = []
    for name in sorted(outbox_names(served) - seen):
        message = email.message_from_bytes((served.outbox / name).read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        messages.append(message)
    return messages


def wait_for_mail(served: ServedApp, to: str, *, seen: set[str], timeout: float = 5.0) -> EmailMessage:
    """The first mail to ``to`` not in ``seen``; polls, since mail is sent in the background."""
    deadline = time.monotonic() + timeout
    while True:
        found = [m for m in new_mails(served, seen=seen) if m["To"] == to]
        if found:
            return found[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"no mail to {to} within {timeout} s")
        time.sleep(0.01)


def link_in(mail: EmailMessage) -> str:
    body = mail.get_body(("plain",))
    assert body is not None
    match = re.search(r"https://\S+/login/email/verify\?token=\S+", body.get_content())
    assert match, "no sign-in link in the mail"
    return match.group(0)


@contextmanager
def parties(served: ServedApp) -> Iterator[PartyFactory]:
    """Makes a :class:`Party` of ``served``; keyword arguments beyond the named ones go to
    ``idp.clients.create``. Its browser asks for English pages."""
    made: list[Party] = []

    def make(
        *,
        tenant: tenants.Tenant | None = None,
        email: str | None = "ana@example.com",
        attributes: dict[str, str] | None = None,
        redirect_uri: str = REDIRECT_URI,
        **client_kwargs: Any,
    ) -> Party:
        tenant = tenant or served.tenant(f"t{secrets.token_hex(5)}")
        if "grant_types" not in client_kwargs or "authorization_code" in client_kwargs["grant_types"]:
            client_kwargs.setdefault("redirect_uris", [redirect_uri])
        client_kwargs.setdefault("post_logout_redirect_uris", [LOGOUT_URI])
        new = served.client_app(tenant, **client_kwargs)
        eid = served.user(tenant, email, **(attributes or {})) if email else None
        rp = RelyingParty(served, new.client.client_id, new.client_secret, redirect_uri)
        rp.browser.headers["Accept-Language"] = "en"
        made.append(p := Party(served, tenant, new, rp, email or "", eid))
        return p

    try:
        yield make
    finally:
        for p in made:
            p.rp.close()


@pytest.fixture
def party(served: ServedApp) -> Iterator[PartyFactory]:
    with parties(served) as make:
        yield make


def race(p: Party, **data: str) -> list[httpx.Response]:
    """The same token request, authenticated as ``p``'s client, sent twice at the same moment."""
    if p.auth is None:
        return race_raw(p, "/token", **data, client_id=p.client_id)
    return race_raw(p, "/token", auth=p.auth, **data)


def race_raw(p: Party, path: str, auth: tuple[str, str] | None = None, **data: str) -> list[httpx.Response]:
    """The same POST sent twice at the same moment, each on its own connection."""
    barrier = threading.Barrier(2)

    def send(_: int) -> httpx.Response:
        with p.served.client() as backend:
            backend.get("/healthz")  # the TLS handshake before the barrier
            barrier.wait(timeout=5)
            return backend.post(path, data=data, auth=auth)

    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(send, range(2)))


def audit_events(served: ServedApp) -> list[dict[str, Any]]:
    def load(conn: Connection) -> list[dict[str, Any]]:
        rows = conn.execute(select(tables.audit_events).order_by(tables.audit_events.c.seq)).mappings()
        return [dict(r) for r in rows]

    return served.run(served.state.db.read(load))


def verify_audit(served: ServedApp) -> audit.VerifyReport:
    return served.run(served.state.db.read(audit.verify))


def redirect_query(response: httpx.Response, redirect_uri: str = REDIRECT_URI) -> dict[str, str]:
    """The query of a redirect back to the client; fails unless it is one."""
    assert response.status_code in (302, 303), (response.status_code, response.text[:500])
    location = response.headers["location"]
    assert location.startswith(redirect_uri + "?"), location
    return query_of(location)
