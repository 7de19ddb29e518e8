"""OpenID Connect RP-Initiated Logout 1.0: id_token_hint, confirmation, post-logout redirection."""

from __future__ import annotations

import base64
import json

import httpx

from idp.sessions import COOKIE_NAME
from tests.oidc.conftest import LOGOUT_URI, Party, PartyFactory, audit_events, redirect_query
from tests.support.flows import form_value, query_of
from tests.support.server import ServedApp


def _claims(id_token: str) -> dict[str, object]:
    payload = id_token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def _session_alive(p: Party, cookie: str) -> bool:
    """Whether an SSO session cookie still gets a code with prompt=none (from a fresh browser)."""
    with p.served.client() as other:
        other.cookies.set(COOKIE_NAME, cookie, domain="127.0.0.1")
        params, _ = p.rp.authorize_params(prompt="none")
        query = redirect_query(other.get("/authorize", params=params))
    if "code" in query:
        return True
    assert query["error"] == "login_required", query
    return False


def _signed_in(p: Party) -> tuple[dict[str, object], str]:
    tokens = p.tokens()
    cookie = p.rp.browser.cookies.get(COOKIE_NAME)
    assert cookie
    return tokens, cookie


def test_logout_with_the_id_token_hint_of_the_session_ends_it_and_redirects(
    party: PartyFactory, served: ServedApp
) -> None:
    p = party()
    tokens, cookie = _signed_in(p)
    sid = _claims(str(tokens["id_token"]))["sid"]
    response = p.rp.browser.get(
        "/logout",
        params={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": LOGOUT_URI,
            "state": "bye-1",
        },
    )
    assert response.status_code in (302, 303), response.text
    location = response.headers["location"]
    assert location.startswith(LOGOUT_URI + "?")
    assert query_of(location) == {"state": "bye-1"}
    assert COOKIE_NAME not in p.rp.browser.cookies  # deleted in the browser
    assert not _session_alive(p, cookie)  # and ended on the server: the old value is dead
    # this browser, asked silently, must log in again
    params, _ = p.rp.authorize_params(prompt="none")
    query = redirect_query(p.rp.start(params))
    assert query["error"] == "login_required"
    assert query["state"] == params["state"]
    ended = [
        e
        for e in audit_events(served)
        if e["event_type"] == "session.ended" and e["tenant_id"] == p.tenant.id
    ]
    assert [e["details"]["sid"] for e in ended] == [sid]
    assert ended[0]["details"]["reason"] == "logout"


def test_logout_with_hint_and_matching_client_id(party: PartyFactory) -> None:
    p = party()
    tokens, cookie = _signed_in(p)
    response = p.rp.browser.get(
        "/logout",
        params={
            "id_token_hint": tokens["id_token"],
            "client_id": p.client_id,
            "post_logout_redirect_uri": LOGOUT_URI,
        },
    )
    assert response.status_code in (302, 303), response.text
    assert response.headers["location"] == LOGOUT_URI
    assert not _session_alive(p, cookie)


def test_a_client_id_other_than_the_hints_audience_is_refused(party: PartyFactory) -> None:
    p = party()
    other = party(tenant=p.tenant, email=None)
    tokens, cookie = _signed_in(p)
    response = p.rp.browser.get(
        "/logout",
        params={
            "id_token_hint": tokens["id_token"],
            "client_id": other.client_id,
            "post_logout_redirect_uri": LOGOUT_URI,
        },
    )
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "aud" in response.text
    assert _session_alive(p, cookie)


def test_logout_without_hint_asks_for_confirmation(party: PartyFactory) -> None:
    p = party()
    _tokens, cookie = _signed_in(p)
    page = p.rp.browser.get(
        "/logout",
        params={"client_id": p.client_id, "post_logout_redirect_uri": LOGOUT_URI, "state": "s"},
    )
    assert page.status_code == 200
    assert 'action="/logout"' in page.text
    assert p.client.client.name in page.text
    csrf = form_value(page.text, "csrf_token")
    assert _session_alive(p, cookie)  # nothing happened yet

    fields = {
        "confirm": form_value(page.text, "confirm"),
        "client_id": form_value(page.text, "client_id"),
        "post_logout_redirect_uri": form_value(page.text, "post_logout_redirect_uri"),
        "state": form_value(page.text, "state"),
    }
    assert fields["confirm"] == "yes"
    missing = p.rp.browser.post("/logout", data=fields)
    assert missing.status_code == 403
    wrong = p.rp.browser.post("/logout", data={**fields, "csrf_token": "0" * 64})
    assert wrong.status_code == 403
    assert _session_alive(p, cookie)

    done = p.rp.browser.post("/logout", data={**fields, "csrf_token": csrf})
    # without an id_token_hint the OP has no proof the RP asked, so it does not redirect (§3)
    assert done.status_code == 200
    assert "location" not in done.headers
    assert not _session_alive(p, cookie)
    assert COOKIE_NAME not in p.rp.browser.cookies


def test_the_confirmation_form_is_bound_to_the_browser(party: PartyFactory) -> None:
    p = party()
    _tokens, cookie = _signed_in(p)
    with p.served.client() as attacker:
        params, _ = p.rp.authorize_params()
        page = attacker.get(attacker.get("/authorize", params=params).headers["location"])
        assert page.status_code == 200
        forged = form_value(page.text, "csrf_token")  # valid, but for the attacker's browser
    response = p.rp.browser.post("/logout", data={"confirm": "yes", "csrf_token": forged})
    assert response.status_code == 403
    assert _session_alive(p, cookie)


def test_an_unregistered_post_logout_redirect_uri_is_not_followed(party: PartyFactory) -> None:
    p = party()
    tokens, cookie = _signed_in(p)
    response = p.rp.browser.get(
        "/logout",
        params={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": "https://evil.example/bye",
            "state": "s",
        },
    )
    assert response.status_code == 200
    assert "location" not in response.headers
    assert 'href="https://evil.example' not in response.text
    assert not _session_alive(p, cookie)  # the logout itself was legitimate


def test_a_tampered_id_token_hint_is_a_400_page(party: PartyFactory) -> None:
    p = party()
    tokens, cookie = _signed_in(p)
    header, payload, signature = str(tokens["id_token"]).split(".")
    claims = _claims(str(tokens["id_token"]))
    claims["sub"] = "someone-else"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    for hint in (f"{header}.{forged_payload}.{signature}", "not-a-jwt", f"{header}.{payload}.AAAA"):
        response = p.rp.browser.get(
            "/logout", params={"id_token_hint": hint, "post_logout_redirect_uri": LOGOUT_URI}
        )
        assert response.status_code == 400, hint
        assert "location" not in response.headers
        assert response.headers["content-type"].startswith("text/html")
    assert _session_alive(p, cookie)


def test_a_hint_of_another_session_needs_confirmation(party: PartyFactory) -> None:
    p = party()
    old_tokens, _ = _signed_in(p)
    # a second browser logs in; the first session's hint is no proof about this one
    with httpx.Client(base_url=p.served.issuer, verify=p.served.ssl_context()) as browser:
        p.rp.browser, first_browser = browser, p.rp.browser
        try:
            _tokens, cookie = _signed_in(p)
            page = browser.get(
                "/logout",
                params={"id_token_hint": old_tokens["id_token"], "post_logout_redirect_uri": LOGOUT_URI},
            )
            assert page.status_code == 200
            assert 'action="/logout"' in page.text
            assert _session_alive(p, cookie)
        finally:
            p.rp.browser = first_browser


def test_logout_without_a_session_still_redirects_with_a_valid_hint(party: PartyFactory) -> None:
    p = party()
    tokens, _cookie = _signed_in(p)
    with p.served.client() as stranger:
        response = stranger.get(
            "/logout",
            params={
                "id_token_hint": tokens["id_token"],
                "post_logout_redirect_uri": LOGOUT_URI,
                "state": "x",
            },
        )
    assert response.status_code in (302, 303)
    assert response.headers["location"] == LOGOUT_URI + "?state=x"


def test_a_repeated_parameter_is_a_400_page_and_the_session_stays(party: PartyFactory) -> None:
    """authlib reads the first of repeated values: a second hint or URI would be ignored while the
    first ended the session. Refused as at /authorize (RFC 6749 §3.1)."""
    p = party()
    tokens, cookie = _signed_in(p)
    for name, values in {
        "id_token_hint": [tokens["id_token"], "x"],
        "post_logout_redirect_uri": [LOGOUT_URI, "https://evil.example/bye"],
        "state": ["a", "b"],
    }.items():
        params = {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": LOGOUT_URI, name: values}
        response = p.rp.browser.get("/logout", params=params)
        assert response.status_code == 400, (name, response.text[:500])
        assert "location" not in response.headers
        assert f"parameters must not be repeated: {name}" in response.text
    assert _session_alive(p, cookie)
