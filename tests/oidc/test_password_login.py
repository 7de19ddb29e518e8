"""Password sign-in through the served app: the factor, its throttling and the administrator's lock."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from idp import account, eids, lockout
from tests.oidc.conftest import Party, PartyFactory, audit_events, redirect_query
from tests.support.flows import form_value

SECRET = "correct horse battery staple"


def _login_page(p: Party, **extra: str) -> tuple[httpx.Response, str]:
    params, verifier = p.rp.authorize_params(**extra)
    started = p.rp.start(params)
    assert started.status_code == 303, started.text
    page = p.rp.browser.get(started.headers["location"])
    assert page.status_code == 200, page.text
    return page, verifier


def _submit(p: Party, page: httpx.Response, secret: str, email: str | None = None) -> httpx.Response:
    data = {
        "csrf_token": form_value(page.text, "csrf_token"),
        "request_id": form_value(page.text, "request_id"),
        "password": secret,
    }
    if email is not None:
        data["email"] = email
    return p.rp.browser.post("/login/password", data=data)


def _password_party(party: PartyFactory) -> Party:
    p = party()
    assert p.eid is not None
    p.served.set_password(p.eid, SECRET)
    return p


def test_email_and_password_sign_in_at_basic(party: PartyFactory) -> None:
    p = _password_party(party)
    page, verifier = _login_page(p)
    assert 'action="/login/password"' in page.text
    done = _submit(p, page, SECRET, email=p.email.upper())  # addresses match case-insensitively
    assert done.status_code == 303  # straight back to the client with the code
    code = redirect_query(done, p.rp.redirect_uri)["code"]
    tokens = p.rp.exchange(code, verifier).json()
    claims = p.rp.verify_id_token(tokens["id_token"], nonce=None)
    assert claims["acr"] == "urn:eid:loa:basic"
    assert claims["amr"] == ["pwd"]
    kinds = [e["event_type"] for e in audit_events(p.served) if e["tenant_id"] == p.tenant.id]
    assert "login.factor_proven" in kinds and "session.authenticated" in kinds


@pytest.mark.parametrize("email", ["nobody@example.com", None])
def test_wrong_password_or_unknown_address_get_the_same_answer(
    party: PartyFactory, email: str | None
) -> None:
    p = _password_party(party)
    page, _ = _login_page(p)
    refused = _submit(p, page, "not the password" if email is None else SECRET, email=email or p.email)
    assert refused.status_code == 401
    assert "The email address or password is not correct." in refused.text
    assert "location" not in refused.headers  # a page, no way on to the client


@pytest.mark.parametrize("how", ["suspended", "blocked_by_owner"])
def test_a_suspended_or_blocked_eid_is_told_so_only_after_its_password(party: PartyFactory, how: str) -> None:
    """A person who blocked their own eID (suspected misuse) must not read that their password is
    wrong; anyone without the password learns nothing about the eID's state."""
    p = _password_party(party)
    assert p.eid is not None
    eid_id = p.eid.id
    if how == "suspended":
        p.served.write(lambda tx: eids.suspend(tx, eid_id=eid_id, reason="admin"))
    else:
        p.served.write(lambda tx: account.block(tx, eid_id=eid_id))
    page, _ = _login_page(p)
    guessed = _submit(p, page, "not the password", email=p.email)
    assert guessed.status_code == 401 and "The email address or password is not correct." in guessed.text
    assert "suspended or blocked" not in guessed.text
    told = _submit(p, page, SECRET, email=p.email)
    assert told.status_code == 401 and "location" not in told.headers
    assert "This eID is suspended or blocked, so it cannot sign in." in told.text
    reasons = [
        e["details"].get("reason")
        for e in audit_events(p.served)
        if e["event_type"] == "login.failed" and e["eid_id"] == eid_id
    ]
    assert reasons == ["wrong_password", "eid_not_active"]


def _hashes(p: Party, operation: str) -> tuple[float, float]:
    registry = p.served.state.metrics.registry
    labels = {"operation": operation}
    count = registry.get_sample_value("password_hashes_total", labels) or 0.0
    return count, registry.get_sample_value("password_hash_cpu_seconds_total", labels) or 0.0


def test_each_argon2_verification_and_its_cpu_time_reach_the_metrics(party: PartyFactory) -> None:
    p = _password_party(party)
    before, cpu_before = _hashes(p, "verify")
    hashed = _hashes(p, "hash")
    for secret, email in ((SECRET, p.email), ("not the password", p.email), (SECRET, "nobody@example.com")):
        page, _ = _login_page(p, prompt="login")  # the first one signs in: ask again each time
        _submit(p, page, secret, email=email)
    after, cpu_after = _hashes(p, "verify")
    assert after - before == 3  # a success, a wrong password, and the dummy check of an unknown address
    # the pool thread's CPU time, not the wall time of the request: argon2id at m=19 MiB takes ms
    assert 0.001 * 3 < cpu_after - cpu_before < 10
    assert _hashes(p, "hash") == hashed  # nothing was hashed anew (the app serves other tests too)
    exposed = p.rp.browser.get("/metrics").text
    assert 'password_hashes_total{operation="verify"}' in exposed
    assert 'password_hash_cpu_seconds_total{operation="verify"}' in exposed


def test_failures_bring_growing_delays_then_a_lock_only_an_administrator_lifts(party: PartyFactory) -> None:
    p = _password_party(party)
    assert p.eid is not None
    policy = p.served.state.throttle.policy
    page, _ = _login_page(p)
    statuses = []
    for _ in range(policy.free_per_account + 1):
        statuses.append(_submit(p, page, "wrong guess", email=p.email).status_code)
    assert statuses == [401] * (policy.free_per_account + 1)
    # the next attempt comes too early: refused without checking the password, with Retry-After
    early = _submit(p, page, SECRET, email=p.email)
    assert early.status_code == 429 and int(early.headers["Retry-After"]) >= 1
    assert "Too many failed attempts" in early.text

    # past the lock threshold the eID is locked in the database, even for the right password
    def lock_now(tx: object) -> None:
        lockout.lock(tx, eid_id=p.eid.id, tenant_id=p.tenant.id, reason="test")  # type: ignore[union-attr, arg-type]

    p.served.write(lock_now)
    # (the account's delay is cleared here only so that the lock answers, not the delay)
    p.served.run(p.served.state.throttle.succeeded("password", account=f"{p.tenant.id}:{p.email}"))
    page, _ = _login_page(p)
    locked = _submit(p, page, SECRET, email=p.email)
    assert locked.status_code == 401 and "This eID is locked" in locked.text
    assert p.served.write(
        lambda tx: lockout.unlock(tx, eid_id=p.eid.id, tenant_id=p.tenant.id, actor="admin")
    )  # type: ignore[union-attr]
    page, _ = _login_page(p)
    assert _submit(p, page, SECRET, email=p.email).status_code == 303


BURST = 24


def test_wrong_passwords_sent_together_take_turns_and_are_throttled_as_one_after_the_other(
    party: PartyFactory,
) -> None:
    """Requests sent at the same moment all passed the throttle before any failure was counted:
    24 of them had 23 wrong passwords checked (the lock is after 10), and a right one among them
    signed in. Attempts at one account now take turns (in the process, and through Redis across
    instances): as many are checked as one after the other, the rest wait for the delay (429)."""
    p = _password_party(party)
    assert p.eid is not None
    policy = p.served.state.throttle.policy
    page, _ = _login_page(p)
    data = {
        "csrf_token": form_value(page.text, "csrf_token"),
        "request_id": form_value(page.text, "request_id"),
        "email": p.email,
    }
    cookies = dict(p.rp.browser.cookies)
    barrier = threading.Barrier(BURST)

    def guess(n: int) -> int:
        with p.served.client(cookies=cookies) as browser:
            browser.get("/healthz")  # the TLS handshake before the barrier
            barrier.wait(timeout=10)
            return browser.post("/login/password", data={**data, "password": f"wrong guess {n}"}).status_code

    with ThreadPoolExecutor(BURST) as pool:
        statuses = list(pool.map(guess, range(BURST)))

    eid_id = p.eid.id
    checked = [
        e
        for e in audit_events(p.served)
        if e["eid_id"] == eid_id
        and e["event_type"] == "login.failed"
        and e["details"]["reason"] == "wrong_password"
    ]
    assert sorted(set(statuses)) == [401, 429], statuses  # no 500 either
    assert len(checked) == statuses.count(401) == policy.free_per_account + 1
    assert len(checked) < policy.lock_after


def test_password_form_refuses_a_foreign_csrf_token(party: PartyFactory) -> None:
    p = _password_party(party)
    page, _ = _login_page(p)
    data = {
        "csrf_token": "0" * 64,
        "request_id": form_value(page.text, "request_id"),
        "email": p.email,
        "password": SECRET,
    }
    assert p.rp.browser.post("/login/password", data=data).status_code == 403


def test_the_relying_apps_login_hint_fills_in_the_address(party: PartyFactory) -> None:
    """OIDC Core §3.1.2.1 login_hint: the signing service knows whom it sent the document to."""
    p = _password_party(party)
    page, verifier = _login_page(p, login_hint=p.email, acr_values="urn:eid:loa:basic")
    assert page.text.count(f'value="{p.email}"') == 2  # the email-link form and the password form
    advanced, _ = _login_page(p, login_hint=f"  {p.email} ", acr_values="urn:eid:loa:advanced")
    field = advanced.text[advanced.text.index('id="pw-email"') :]
    assert f'value="{p.email}"' in field[: field.index(">")] and "autofocus" not in field[: field.index(">")]
    password = advanced.text[advanced.text.index('id="password"') :]
    assert "autofocus" in password[: password.index(">")]  # the address is there: the password next
    # the person may sign in as someone else: the hint is only where the form starts
    done = _submit(p, page, SECRET, email=p.email)
    assert done.status_code == 303
    assert p.rp.exchange(redirect_query(done, p.rp.redirect_uri)["code"], verifier).status_code == 200


@pytest.mark.parametrize(
    "hint",
    [
        '"><script>alert(1)</script>@x',
        "not-an-address",
        "a@b@c",
        "ana@example.com\nBcc: x@y",
        "a" * 400 + "@x.si",
    ],
)
def test_a_login_hint_that_is_not_an_address_fills_in_nothing(party: PartyFactory, hint: str) -> None:
    p = _password_party(party)
    page, _ = _login_page(p, login_hint=hint)
    assert page.status_code == 200 and "<script>alert" not in page.text
    for field_id in ('id="email"', 'id="pw-email"'):
        field = page.text[page.text.index(field_id) :]
        assert 'value=""' in field[: field.index(">")], field_id
