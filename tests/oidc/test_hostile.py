"""Hostile and malformed input: never a 500, always the protocol's own error format.

OAuth errors are JSON at the back-channel endpoints (RFC 6749 §5.2), redirects to a verified
redirect URI at the authorization endpoint (§4.1.2.1), and an HTML page where no redirect URI can
be trusted.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import httpx
import pytest

from idp.clients import ClientType
from tests.oidc.conftest import REDIRECT_URI, Party, PartyFactory, query_of, redirect_query
from tests.support.server import ServedApp


def _oauth_error(response: httpx.Response, status: int, error: str) -> str:
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == error, body
    return str(body.get("error_description") or "")


def _error_page(response: httpx.Response, status: int = 400) -> None:
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("text/html")
    assert "location" not in response.headers


# -- the authorization endpoint ----------------------------------------------------------------


def test_a_repeated_parameter_is_invalid_request(party: PartyFactory) -> None:
    p = party()
    params, _ = p.rp.authorize_params()
    for name, again in (("client_id", "another-client"), ("redirect_uri", "https://evil.example/cb")):
        response = p.rp.browser.get("/authorize?" + urlencode([*params.items(), (name, again)]))
        _error_page(response)  # which client or redirect URI is meant is unknown: no redirect
        assert "invalid_request" in response.text
        assert f"Multiple &#39;{name}&#39;" in response.text or f"Multiple '{name}'" in response.text
    # authlib checks these before the redirect URI, so they are shown on the page too
    for name in ("scope", "state", "response_type"):
        response = p.rp.browser.get("/authorize?" + urlencode([*params.items(), (name, params[name])]))
        _error_page(response)
        assert "invalid_request" in response.text
        assert name in response.text
    # checked after the redirect URI: back to the client (RFC 6749 §4.1.2.1)
    pairs = [*params.items(), ("code_challenge", params["code_challenge"])]
    query = redirect_query(p.rp.browser.get("/authorize?" + urlencode(pairs)))
    assert query["error"] == "invalid_request"
    assert "code_challenge" in query["error_description"]


def test_two_hundred_query_parameters_are_refused(party: PartyFactory) -> None:
    p = party()
    params, _ = p.rp.authorize_params()
    pairs = list(params.items()) + [(f"x{i}", "y") for i in range(200)]
    page = p.rp.browser.get("/authorize?" + urlencode(pairs))
    _error_page(page)  # a person's browser gets a page, not JSON
    assert "parameters" in page.text
    token = p.rp.backend.post("/token?" + urlencode([(f"x{i}", "y") for i in range(200)]))
    _oauth_error(token, 400, "invalid_request")


def test_two_hundred_form_fields_are_refused(party: PartyFactory) -> None:
    p = party()
    fields = [("grant_type", "client_credentials")] + [(f"x{i}", "y") for i in range(200)]
    response = p.rp.backend.post(
        "/token",
        content=urlencode(fields),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=p.auth,
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"


def test_response_type_token_is_unsupported(party: PartyFactory, served: ServedApp) -> None:
    p = party()
    params, _ = p.rp.authorize_params(response_type="token")
    query = redirect_query(p.rp.start(params))
    assert query["error"] == "unsupported_response_type"
    assert "'token' is not supported; use code" in query["error_description"]
    assert query["state"] == params["state"]
    assert query["iss"] == served.issuer
    assert "access_token" not in query
    # with a redirect URI the client does not own, no redirect
    params, _ = p.rp.authorize_params(response_type="token", redirect_uri="https://evil.example/cb")
    _error_page(p.rp.start(params))


def test_a_huge_state_is_refused_on_a_page(party: PartyFactory) -> None:
    p = party()
    state = "s" * 100_000  # more than a URL carries: sent as a form (OIDC Core §3.1.2.1 allows POST)
    for extra in ({}, {"response_type": "token"}, {"prompt": "none"}):
        params, _ = p.rp.authorize_params(state=state, **extra)
        response = p.rp.browser.post("/authorize", data=params)
        _error_page(response)  # it could not come back in a redirect
        assert "larger than 64 kB" in response.text  # the body limit stops it before it is parsed
    params, _ = p.rp.authorize_params(state="s" * 5000)
    _error_page(p.rp.start(params))


def test_a_long_state_goes_through_the_whole_flow(party: PartyFactory) -> None:
    p = party()
    state = "s-" * 1000
    done = p.login(state=state)
    assert done.callback["state"] == state
    assert p.rp.exchange(done.callback["code"], done.verifier).status_code == 200


@pytest.mark.parametrize(
    "field",
    [
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "nonce",
        "response_type",
        "code_challenge",
        "acr_values",
        "prompt",
        "max_age",
        "claims",
        "ui_locales",
    ],
)
@pytest.mark.parametrize("value", ["\x00", "ž\u202e😀", 'a"b\\c', "\r\nX-Injected: 1"])
def test_odd_characters_in_any_parameter_are_no_server_error(
    party: PartyFactory, field: str, value: str
) -> None:
    p = party()
    params, _ = p.rp.authorize_params()
    params[field] = params.get(field, "") + value
    response = p.rp.start(params)
    assert response.status_code < 500, response.text[:1000]
    assert "x-injected" not in {k.lower() for k in response.headers}
    if response.status_code in (302, 303) and response.headers["location"].startswith(REDIRECT_URI):
        query = query_of(response.headers["location"])
        assert "error" in query or "code" in query


@pytest.mark.parametrize("max_age", ["abc", "-1", "1.5", "1e3", "9" * 5000, " 5"])
def test_a_malformed_max_age_is_invalid_request(party: PartyFactory, max_age: str) -> None:
    p = party()
    for signed_in in (False, True):
        if signed_in:
            p.tokens()
        params, _ = p.rp.authorize_params(max_age=max_age)
        query = redirect_query(p.rp.start(params))
        assert query["error"] == "invalid_request", (signed_in, query)
        assert "max_age" in query["error_description"]


def test_mixing_prompt_none_with_another_prompt_is_invalid_request(party: PartyFactory) -> None:
    p = party()
    params, _ = p.rp.authorize_params(prompt="none login")
    query = redirect_query(p.rp.start(params))
    assert query["error"] == "invalid_request"
    assert "prompt" in query["error_description"]


@pytest.mark.parametrize(
    "acr_values", ['"quoted"', "ž-level", "x" * 5000, "\\", "urn:eid:loa:advanced\u00a0"]
)
def test_strange_acr_values_are_unmet_not_a_crash(party: PartyFactory, acr_values: str) -> None:
    p = party()
    params, _ = p.rp.authorize_params(acr_values=acr_values)
    query = redirect_query(p.rp.start(params))
    assert query["error"] == "unmet_authentication_requirements"
    assert len(query["error_description"]) < 1000


@pytest.mark.parametrize(
    "claims",
    [
        "[" * 5000,
        json.dumps({"id_token": {"acr": {"essential": True, "values": ['"\u017e"']}}}),
        json.dumps({"id_token": {"acr": {"values": [1, 2]}}}),
        json.dumps({"id_token": []}),
        json.dumps({"id_token": {"acr": "urn:eid:loa:basic"}}),
    ],
    ids=["deeply-nested", "odd-value", "non-string-values", "id-token-list", "acr-string"],
)
def test_odd_claims_parameters_are_no_server_error(party: PartyFactory, claims: str) -> None:
    p = party()
    params, _ = p.rp.authorize_params(claims=claims)
    response = p.rp.start(params)
    assert response.status_code < 500, response.text[:500]
    if response.status_code == 302:
        assert redirect_query(response)["error"] in ("invalid_request", "unmet_authentication_requirements")
    else:
        assert response.status_code in (303, 414, 431), response.status_code


def test_an_overlong_client_id_gets_an_error_page(party: PartyFactory) -> None:
    p = party()
    params, _ = p.rp.authorize_params(client_id="c" * 5000)
    _error_page(p.rp.start(params))


def test_resume_and_login_with_bad_request_ids(party: PartyFactory) -> None:
    p = party()
    for request_id in ("\x00", "x" * 10_000, "ž", "' OR 1=1 --"):
        for path in ("/login", "/authorize/resume"):
            response = p.rp.browser.get(path, params={"request_id": request_id})
            _error_page(response)


# -- the token endpoint -------------------------------------------------------------------------


def _machine(party: PartyFactory) -> Party:
    return party(email=None, grant_types=["client_credentials"], scopes=["profile"])


def test_an_unsupported_grant_type(party: PartyFactory) -> None:
    p = _machine(party)
    for grant_type in ("password", "urn:ietf:params:oauth:grant-type:device_code", "ž\x00"):
        description = _oauth_error(p.post("/token", grant_type=grant_type), 400, "unsupported_grant_type")
        assert description


def test_a_missing_grant_type_is_invalid_request(party: PartyFactory) -> None:
    p = _machine(party)
    description = _oauth_error(p.post("/token"), 400, "invalid_request")
    assert "grant_type" in description


def test_a_repeated_token_parameter_is_invalid_request(party: PartyFactory) -> None:
    p = party()
    done = p.login()
    assert p.client.client_secret
    form = [
        ("grant_type", "authorization_code"),
        ("code", done.callback["code"]),
        ("code", "another"),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", done.verifier),
    ]
    response = p.rp.backend.post(
        "/token",
        content=urlencode(form),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=(p.client_id, p.client.client_secret),
    )
    description = _oauth_error(response, 400, "invalid_request")
    assert "code" in description
    # nothing was consumed: the code still works once, properly asked
    tokens = p.rp.exchange(done.callback["code"], done.verifier).json()
    # the same rule at revocation and introspection (RFC 6749 §3.2)
    for path in ("/revoke", "/introspect"):
        response = p.rp.backend.post(
            path,
            content=urlencode([("token", tokens["access_token"]), ("token", "other")]),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            auth=(p.client_id, p.client.client_secret),
        )
        assert "token" in _oauth_error(response, 400, "invalid_request")
    assert p.userinfo(tokens["access_token"]).status_code == 200


def test_a_non_form_body_at_the_token_endpoint(party: PartyFactory) -> None:
    p = _machine(party)
    assert p.auth is not None
    as_json = p.rp.backend.post("/token", json={"grant_type": "client_credentials"}, auth=p.auth)
    assert as_json.status_code == 400
    assert as_json.json()["error"] == "invalid_request"
    multipart = p.rp.backend.post("/token", files={"grant_type": (None, "client_credentials")}, auth=p.auth)
    assert multipart.status_code == 400
    assert multipart.json()["error"] == "invalid_request"
    garbage = p.rp.backend.post(
        "/token",
        content=b"\xff\xfe\x00grant_type=%%%",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=p.auth,
    )
    assert garbage.status_code < 500
    assert "error" in garbage.json()


def test_get_on_the_token_endpoint_is_405(party: PartyFactory) -> None:
    p = party(email=None)
    response = p.rp.backend.get("/token", params={"grant_type": "client_credentials"})
    assert response.status_code == 405
    assert "POST" in response.headers["allow"]
    assert "error" in response.json()


@pytest.mark.parametrize(
    "header",
    [
        "Basic ###",
        "Basic",
        "Basic " + "A" * 10_000,
        "Basic Og==",
        "Basic AA==",
        "Basic w7w6w7w=",
        "Bearer x",
        "Basic JTAwOnNlY3JldA==",
        "Basic " + "JQ==",
        "Basic //46+g==",  # not UTF-8 once decoded: authlib's own decoding raised (a 500)
        "Digest username=x",
    ],
)
def test_garbage_client_authentication_is_invalid_client(party: PartyFactory, header: str) -> None:
    p = _machine(party)
    response = p.rp.backend.post(
        "/token", data={"grant_type": "client_credentials"}, headers={"Authorization": header}
    )
    assert response.status_code in (400, 401), response.text
    assert response.json()["error"] in ("invalid_client", "invalid_request")
    for path in ("/revoke", "/introspect"):
        other = p.rp.backend.post(path, data={"token": "x"}, headers={"Authorization": header})
        assert other.status_code in (400, 401), (path, other.text)
        assert other.json()["error"] in ("invalid_client", "invalid_request")


@pytest.mark.parametrize("value", ["\x00", "ž😀", "x" * 10_000, "a\r\nb"])
def test_odd_values_at_the_back_channel_endpoints(party: PartyFactory, value: str) -> None:
    p = party(client_type=ClientType.PUBLIC)
    checks = [
        (
            "/token",
            {
                "grant_type": "authorization_code",
                "code": value,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": "v" * 43,
                "client_id": p.client_id,
            },
        ),
        ("/token", {"grant_type": "refresh_token", "refresh_token": value, "client_id": p.client_id}),
        ("/token", {"grant_type": "authorization_code", "code": "x", "client_id": value}),
        (
            "/token",
            {
                "grant_type": "authorization_code",
                "code": "x",
                "redirect_uri": value,
                "client_id": p.client_id,
                "code_verifier": "v" * 43,
            },
        ),
        ("/revoke", {"token": value, "client_id": p.client_id}),
        ("/revoke", {"token": "x", "client_id": value}),
        ("/revoke", {"token": "x", "client_id": p.client_id, "token_type_hint": value}),
        ("/introspect", {"token": value, "client_id": value}),
    ]
    for path, data in checks:
        response = p.rp.backend.post(path, data=data)
        assert 400 <= response.status_code < 500 or response.status_code == 200, (path, data, response.text)
        assert response.headers["content-type"].startswith("application/json"), (path, data)
        if response.status_code != 200:
            assert response.json()["error"], (path, data)
    userinfo = p.rp.backend.get(
        "/userinfo", headers={"Authorization": "Bearer " + value.encode("unicode_escape").decode()}
    )
    assert userinfo.status_code == 401


def test_the_token_endpoint_echoes_no_secrets_in_errors(party: PartyFactory) -> None:
    p = party(email=None, grant_types=["client_credentials"])
    assert p.client.client_secret
    response = p.rp.backend.post(
        "/token", data={"grant_type": "client_credentials"}, auth=(p.client_id, p.client.client_secret + "x")
    )
    assert response.status_code == 401
    assert p.client.client_secret not in response.text


# -- the login pages and logout ---------------------------------------------------------------


def test_a_huge_email_field_is_refused_politely(party: PartyFactory) -> None:
    from tests.support.flows import form_value

    p = party()
    params, _ = p.rp.authorize_params()
    page = p.rp.browser.get(p.rp.start(params).headers["location"])
    fields = {
        "csrf_token": form_value(page.text, "csrf_token"),
        "request_id": form_value(page.text, "request_id"),
    }
    for email in ("a" * 100_000 + "@example.com", "ana\x00@example.com", "a@b", "<a@example.com>"):
        response = p.rp.browser.post("/login/email", data={**fields, "email": email})
        assert response.status_code == 400, (email[:20], response.status_code)
        assert "Enter a valid email address" in response.text
        assert len(response.text) < 20_000
    # beyond what a form field may be (Starlette: 1 MB), still no server error
    response = p.rp.browser.post("/login/email", data={**fields, "email": "a" * 1_100_000})
    assert response.status_code == 400


@pytest.mark.parametrize("value", ["\x00", "ž😀", "x" * 10_000])
def test_odd_values_at_logout(party: PartyFactory, value: str) -> None:
    p = party()
    for params in (
        {"id_token_hint": value},
        {"client_id": value},
        {"post_logout_redirect_uri": value},
        {"client_id": p.client_id, "post_logout_redirect_uri": value, "state": value},
    ):
        response = p.rp.browser.get("/logout", params=params)
        assert response.status_code < 500, (params, response.text[:300])
        assert response.headers["content-type"].startswith("text/html")
        assert "location" not in response.headers
