"""CORS for a single-page app (a public client) calling the token, userinfo and revocation
endpoints, discovery and the JWKS from its own origin (idp.web.cors)."""

from __future__ import annotations

import time

import httpx
import pytest

from idp.clients import ClientType
from idp.web.cors import origin_of
from tests.oidc.conftest import Party, PartyFactory

SPA = "https://rp.example"  # the origin of the parties' redirect URI, https://rp.example/cb
STRANGER = "https://evil.example"


def preflight(p: Party, path: str, origin: str, method: str = "POST") -> httpx.Response:
    return p.rp.backend.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "content-type",
        },
    )


def public_party(party: PartyFactory, **extra: object) -> Party:
    return party(client_type=ClientType.PUBLIC, **extra)


@pytest.mark.parametrize("path", ["/token", "/revoke", "/userinfo"])
def test_a_registered_apps_origin_passes_the_preflight(party: PartyFactory, path: str) -> None:
    p = public_party(party)
    answer = preflight(p, path, SPA)
    assert answer.status_code == 204, answer.text
    assert answer.headers["access-control-allow-origin"] == SPA
    assert "POST" in answer.headers["access-control-allow-methods"]
    assert "content-type" in answer.headers["access-control-allow-headers"]
    assert "origin" in answer.headers["vary"].lower()
    assert "access-control-allow-credentials" not in answer.headers  # never the session cookie


@pytest.mark.parametrize("path", ["/token", "/revoke", "/userinfo", "/introspect", "/authorize"])
def test_another_origin_gets_no_cors(party: PartyFactory, path: str) -> None:
    p = public_party(party)
    answer = preflight(p, path, STRANGER)
    assert "access-control-allow-origin" not in answer.headers
    assert answer.status_code in (403, 405), answer.text


def test_the_whole_code_exchange_and_refresh_can_be_read_by_the_apps_page(party: PartyFactory) -> None:
    p = public_party(
        party,
        grant_types=["authorization_code", "refresh_token"],
        scopes=["openid", "email", "offline_access"],
    )
    done = p.login(scope="openid email offline_access")
    exchanged = p.rp.backend.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": done.callback["code"],
            "redirect_uri": p.rp.redirect_uri,
            "code_verifier": done.verifier,
            "client_id": p.client_id,
        },
        headers={"Origin": SPA},
    )
    assert exchanged.status_code == 200, exchanged.text
    assert exchanged.headers["access-control-allow-origin"] == SPA
    tokens = exchanged.json()
    me = p.rp.backend.get(
        "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}", "Origin": SPA}
    )
    assert me.status_code == 200 and me.headers["access-control-allow-origin"] == SPA
    # a refused bearer token: the page may read why (RFC 6750 §3)
    refused = p.rp.backend.get("/userinfo", headers={"Authorization": "Bearer nope", "Origin": SPA})
    assert refused.status_code == 401
    assert "www-authenticate" in refused.headers["access-control-expose-headers"]
    # the same answer to another origin's page: no CORS headers, the browser keeps it from the script
    other = p.rp.backend.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": p.client_id,
        },
        headers={"Origin": STRANGER},
    )
    assert other.status_code == 200 and "access-control-allow-origin" not in other.headers


@pytest.mark.parametrize(
    "path",
    [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/.well-known/jwks.json",
    ],
)
def test_discovery_and_keys_are_readable_from_any_origin(party: PartyFactory, path: str) -> None:
    p = public_party(party)
    answer = p.rp.backend.get(path, headers={"Origin": STRANGER})
    assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == "*"
    asked = preflight(p, path, STRANGER, method="GET")
    assert asked.status_code == 204 and asked.headers["access-control-allow-origin"] == "*"


def test_a_newly_registered_origin_works_within_seconds(party: PartyFactory) -> None:
    origin = f"https://spa-{time.monotonic_ns()}.example"
    p = public_party(party)
    assert preflight(p, "/token", origin).status_code == 403  # not registered yet
    public_party(party, redirect_uri=f"{origin}/callback")
    deadline = time.monotonic() + 5
    while (answer := preflight(p, "/token", origin)).status_code != 204 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert answer.status_code == 204 and answer.headers["access-control-allow-origin"] == origin


def test_requests_without_an_origin_are_untouched(party: PartyFactory) -> None:
    p = public_party(party)
    answer = p.rp.backend.get("/.well-known/openid-configuration")
    assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers


@pytest.mark.parametrize(
    ("uri", "origin"),
    [
        ("https://app.example/cb", "https://app.example"),
        ("https://APP.example:443/cb?x=1", "https://app.example"),
        ("https://app.example:8443/cb", "https://app.example:8443"),
        ("http://127.0.0.1:8080/callback", "http://127.0.0.1:8080"),
        ("http://localhost:80/cb", "http://localhost"),
        ("https://[::1]:9000/cb", "https://[::1]:9000"),
        ("com.example.app:/oauth2redirect", None),  # a native app's custom scheme
        ("https:///nohost", None),
        ("https://app.example:99999/cb", None),
        ("not a uri", None),
    ],
)
def test_origin_of(uri: str, origin: str | None) -> None:
    assert origin_of(uri) == origin


@pytest.mark.parametrize(
    "origin",
    [
        "null",  # a sandboxed frame, a file: page, about:blank
        "https://rp.example.evil.example",
        "https://evil.example/https://rp.example",
        "https://rp.example/",
        "http://rp.example",  # another scheme is another origin
        "https://RP.EXAMPLE",  # browsers send the host in lower case; this is not one of them
        "https://rp.example:444",
        "https://rp.example, https://evil.example",
        "https://xn--p-vfa.example",  # punycode of a look-alike host
        "x" * 8000,
        "",
    ],
)
def test_origins_that_only_look_like_a_registered_one_get_nothing(party: PartyFactory, origin: str) -> None:
    p = public_party(party)
    for answer in (
        preflight(p, "/token", origin),
        p.rp.backend.post("/token", data={"grant_type": "x"}, headers={"Origin": origin}),
    ):
        assert answer.status_code < 500 and "access-control-allow-origin" not in answer.headers, answer.text
