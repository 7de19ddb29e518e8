"""One hostile field at a time in the steps around a sign-in: "not you?", RP-initiated logout and
SSO login tokens of enterprise portals (the sweep and its helpers: :mod:`tests.web.test_hostile_steps`).

Fields whose absence is itself a valid request (an optional ``post_logout_redirect_uri``, a login
token without ``request_id``) are not sent missing or empty there; a repeated field counts by its
first value where the route says so.
"""

from __future__ import annotations

import secrets

from idp.sessions import COOKIE_NAME
from tests.oidc.conftest import LOGOUT_URI, PartyFactory
from tests.oidc.test_advanced_login import ADVANCED, advanced_party, password_step, start
from tests.oidc.test_login_tokens import OTHER_KEY, mint, portal
from tests.support.flows import form_value, query_of
from tests.support.hostile import (
    Form,
    app,  # noqa: F401  (the module's served app, per engine)
    cross_cases,
    csrf_of,
    other_browser,
    snapshot,
    sweep,
)
from tests.support.hostile import party as party

OPTIONAL = {"missing", "empty"}


def test_not_you_restart(party: PartyFactory) -> None:
    p, _ = advanced_party(party)
    page, _, _ = start(p, acr_values=ADVANCED)
    code_page = password_step(p, page)  # the person is identified: "not you?" is offered
    fields = {"csrf_token": csrf_of(code_page), "request_id": form_value(code_page.text, "request_id")}
    other = other_browser(p, party)
    form = Form(p.rp.browser, "/login/restart", fields, cross_cases(other, "request_id", "csrf_token"))
    sweep(p, form, list(fields))
    restarted = form.post(fields)
    assert restarted.status_code == 303, restarted.text[:500]
    again = p.rp.browser.get(restarted.headers["location"])
    assert 'name="email"' in again.text and "Enter your one-time code" not in again.text


def test_rp_initiated_logout(party: PartyFactory) -> None:
    p = party()
    tokens = p.tokens()
    q = party(email=f"q-{secrets.token_hex(4)}@example.com")
    theirs = q.tokens()["id_token"]
    valid = {
        "id_token_hint": tokens["id_token"],
        "post_logout_redirect_uri": LOGOUT_URI,
        "state": "bye-1",
        "client_id": p.client_id,
    }
    # with the hint of this browser's session: refused (a wrong hint or client) or the confirmation
    # page (no usable hint), never ended; an unregistered post_logout_redirect_uri is not followed
    # but the logout stands (tests.oidc.test_logout), so it is hostile only without a hint below
    by_hint = Form(
        p.rp.browser,
        "/logout",
        dict(valid),
        {
            "id_token_hint of another person": {"id_token_hint": theirs},
            "client_id of another tenant": {"client_id": q.client_id},
        },
        method="GET",
    )
    sweep(p, by_hint, ["id_token_hint", "client_id"], skip={"client_id": OPTIONAL})
    # without a hint: the confirmation page carries whatever came along
    unhinted = {k: v for k, v in valid.items() if k != "id_token_hint"}
    sweep(
        p,
        Form(p.rp.browser, "/logout", unhinted, method="GET"),
        ["post_logout_redirect_uri", "state", "client_id"],
    )
    sweep(p, Form(p.rp.browser, "/logout", unhinted), ["post_logout_redirect_uri", "state", "client_id"])

    page = p.rp.browser.get("/logout", params=unhinted)
    assert page.status_code == 200 and 'name="confirm"' in page.text, page.text[:500]
    other = other_browser(p, party)
    confirm = Form(
        p.rp.browser,
        "/logout",
        {"csrf_token": csrf_of(page), "confirm": "yes", **unhinted},
        {
            "csrf_token of another browser": {"csrf_token": other["csrf_token"]},
            "id_token_hint of another person": {"id_token_hint": theirs},
        },
    )
    # once confirmed, the person's wish stands whatever client or URI came along (only a registered
    # URI is followed): the confirmation itself is what hostile input must not forge
    sweep(p, confirm, ["csrf_token", "confirm"])
    done = confirm.post(confirm.fields)  # without a hint no redirection: the signed-out page
    assert done.status_code == 200 and "You are signed out" in done.text, done.text[:500]
    assert COOKIE_NAME not in p.rp.browser.cookies
    assert all(not row.endswith("None)") for row in snapshot(p.served, p.tenant.id)["sessions"])


def test_login_token_presented_by_the_browser(party: PartyFactory) -> None:
    p = portal(party)
    params, _verifier = p.rp.authorize_params()
    started = p.rp.start(params)
    request_id = query_of(started.headers["location"])["request_id"]
    token = mint(p)
    other = other_browser(p, party)
    q = portal(party, email=f"q-{secrets.token_hex(4)}@example.com")
    spent = mint(p)
    assert p.rp.browser.post("/login/token", data={"login_token": spent}).status_code == 303
    p.rp.browser.cookies.delete(COOKIE_NAME)
    cases = {
        **cross_cases(other, "request_id"),
        "login_token of another portal": {"login_token": mint(q)},
        "login_token signed with another key": {"login_token": mint(p, key=OTHER_KEY)},
        "login_token for nobody": {"login_token": mint(p, sub="nobody@example.com")},
        "login_token spent": {"login_token": spent},
        "login_token of the past": {"login_token": mint(p, iat=1, exp=60)},
    }
    # a repeated field counts by its first value, as in a query string: repeated is valid
    form = Form(p.rp.browser, "/login/token", {"login_token": token, "request_id": request_id}, cases)
    before = snapshot(p.served, p.tenant.id)
    sweep(
        p,
        form,
        ["login_token", "request_id"],
        skip={"login_token": {"repeated"}, "request_id": {*OPTIONAL, "repeated"}},
    )
    assert snapshot(p.served, p.tenant.id) == before
    assert COOKIE_NAME not in p.rp.browser.cookies, "a refused login token set a session cookie"
    done = form.post(form.fields)  # nothing above spent the token
    assert done.status_code == 303 and done.headers["location"].startswith(p.rp.redirect_uri), done.text[:500]

    # with the authorization request's parameters instead of a login in progress
    p.rp.browser.cookies.delete(COOKIE_NAME)
    params, _verifier = p.rp.authorize_params()
    direct = Form(
        p.rp.browser,
        "/login/token",
        {"login_token": mint(p), **params},
        {"client_id of another tenant": {"client_id": q.client_id}},
        method="GET",
    )
    sweep(
        p,
        direct,
        ["login_token", "client_id"],
        skip={"login_token": {"repeated"}, "client_id": {*OPTIONAL, "repeated"}},
    )
    landed = direct.post(direct.fields)
    assert landed.status_code == 303 and landed.headers["location"].startswith("/authorize?"), landed.text[
        :500
    ]
