"""One hostile member at a time in the administration API's clients and SCIM tokens.

Registration and change of a client (every member of the body, every redirect URI and scope, the
keys of its JWK Set), ids in paths, secret rotation and deletion; a SCIM token's creation and
revocation. Every refusal is an RFC 9457 problem below 500 that changes none of the tenant's rows
nor the audit trail; afterwards a valid request still works (the sweep and its helpers:
:mod:`tests.web.test_hostile_steps_admin`, :mod:`tests.support.hostile`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any

import httpx
from joserfc.jwk import ECKey

from tests.admin.conftest import Admin
from tests.support.hostile import (
    NAME_TEXT,
    OPTIONAL,
    admin_rows,
    body_variants,
    content_types,
    encoded,
    id_requests,
    nested_variants,
    refused_without_change,
    requested,
    sent,
    with_raw,
)
from tests.support.hostile import admins as admins  # this tenant's admin and another's
from tests.support.hostile import app as app  # the module's served app, per engine

KEY = ECKey.generate_key("P-256", parameters={"kid": "portal-1"}, private=True)
PUBLIC = KEY.as_dict(private=False)
NEW_CLIENT: dict[str, Any] = {
    "name": "Signing portal",
    "client_type": "confidential",
    "redirect_uris": ["https://portal.example/cb", "https://portal.example/cb2"],
    "post_logout_redirect_uris": ["https://portal.example/bye"],
    "grant_types": ["authorization_code", "refresh_token"],
    "scopes": ["openid", "email"],
    "token_endpoint_auth_method": "private_key_jwt",
    "jwks": {"keys": [PUBLIC]},
    "id_token_signed_response_alg": "ES256",
    "default_acr": "urn:eid:loa:basic",
    "minimum_acr": "urn:eid:loa:basic",
    "login_token_acr": "urn:eid:loa:advanced",
}
SCOPE_TEXT = {"digits", "letters", "negative", "float"}  # RFC 6749 §3.3 scope-tokens all
# per member, the cases that are valid input there (free text is a valid name; absent is allowed)
CREATE_CASES: dict[str, Collection[str]] = {
    "name": NAME_TEXT,
    "client_type": {"missing"},
    "post_logout_redirect_uris": {"missing"},
    "grant_types": {"missing"},
    "scopes": {*OPTIONAL, "list"},  # ["x"] is a list of one scope
    "scopes[]": SCOPE_TEXT,
    "token_endpoint_auth_method": OPTIONAL,  # private_key_jwt, as it has keys
    "id_token_signed_response_alg": {"missing"},
    "default_acr": OPTIONAL,
    "minimum_acr": OPTIONAL,
    "login_token_acr": OPTIONAL,
}
CHANGE: dict[str, Any] = {
    "name": "Signing portal 2",
    "redirect_uris": ["https://portal.example/cb3"],
    "post_logout_redirect_uris": ["https://portal.example/bye2"],
    "grant_types": ["authorization_code"],
    "scopes": ["openid"],
    "jwks": {"keys": [PUBLIC]},
    "default_acr": "urn:eid:loa:advanced",
    "minimum_acr": "urn:eid:loa:advanced",
    "active": True,
    "login_token_acr": "urn:eid:loa:basic",
}
# in a change every member may be left out; null clears a level, and nothing else
CHANGE_CASES: dict[str, Collection[str]] = {
    **{name: {"missing"} for name in CHANGE},
    "name": {*NAME_TEXT, "missing"},
    "scopes": {"missing", "list"},
    "scopes[]": SCOPE_TEXT,
    "default_acr": OPTIONAL,
    "minimum_acr": OPTIONAL,
    "login_token_acr": OPTIONAL,
    "active": {"missing", "bool"},
}
HOSTILE_URIS: dict[str, str] = {
    "plain http": "http://portal.example/cb",
    "javascript": "javascript:alert(1)",
    "data": "data:text/html,<script>x</script>",
    "file": "file:///etc/passwd",
    "relative": "/cb",
    "protocol-relative": "//portal.example/cb",
    "no host": "https:///cb",
    "fragment": "https://portal.example/cb#x",
    "wildcard": "https://*.portal.example/cb",
    "CRLF": "https://portal.example/cb\r\nSet-Cookie: a=b",
    "tab in host": "https://portal.\texample/cb",
    "trailing space": "https://portal.example/cb ",
    "NBSP": "https://portal.example/c\u00a0b",
    "2001 characters": "https://portal.example/" + "c" * 1978,
}
HOSTILE_KEYS: dict[str, dict[str, Any]] = {
    "private key": KEY.as_dict(private=True),
    "symmetric key": {"kty": "oct", "k": "c2VjcmV0"},
    "unknown kty": {"kty": "XYZ", "x": "y"},
    "off the curve": {**PUBLIC, "x": PUBLIC["y"]},
    "x not base64url": {**PUBLIC, "x": "!!!"},
    "no kty": {k: v for k, v in PUBLIC.items() if k != "kty"},
    "kty a number": {**PUBLIC, "kty": 2},
    "unknown curve": {**PUBLIC, "crv": "P-1"},
}


def _jwks_variants(fields: dict[str, Any]) -> Iterator[tuple[str, bytes]]:
    """The key set's members (a JWK Set may carry members of its own), and its keys one at a time."""
    yield from nested_variants(fields, "jwks", {}, text_member=None)
    for case, key in HOSTILE_KEYS.items():
        yield f"jwks {case}", with_raw(fields, "jwks", b'{"keys": [' + encoded(key) + b"]}")
    deep = b"[" * 900 + b"]" * 900
    yield "jwks key 900 deep", with_raw(fields, "jwks", b'{"keys": [{"kty": "EC", "x": ' + deep + b"}]}")
    yield "jwks 21 keys", encoded({**fields, "jwks": {"keys": [PUBLIC] * 21}})
    yield "jwks no keys", encoded({**fields, "jwks": {"keys": []}})


def _uri_cases(fields: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for case, uri in HOSTILE_URIS.items():
        yield f"redirect_uri {case}", {**fields, "redirect_uris": [uri]}
        yield f"post_logout_redirect_uri {case}", {**fields, "post_logout_redirect_uris": [uri]}


# -- clients ------------------------------------------------------------------------------------------


def test_register_client_one_member_at_a_time(admins: tuple[Admin, Admin]) -> None:
    a, _ = admins
    url = a.base + "/clients"

    def cases() -> Iterator[tuple[str, httpx.Response]]:
        variants = body_variants(NEW_CLIENT, list(NEW_CLIENT), CREATE_CASES, text_member="name")
        yield from sent(a, "POST", url, variants)
        yield from sent(a, "POST", url, _jwks_variants(NEW_CLIENT))
        for case, body in _uri_cases(NEW_CLIENT):
            yield case, a.http.post(url, json=body)
        for case, changes in {
            "public with keys": {"client_type": "public"},
            "public with client_credentials": {
                "client_type": "public",
                "token_endpoint_auth_method": None,
                "jwks": None,
                "grant_types": ["client_credentials"],
            },
            "confidential without authentication": {"token_endpoint_auth_method": "none", "jwks": None},
            "private_key_jwt without keys": {"jwks": None},
            "client_secret_jwt": {"token_endpoint_auth_method": "client_secret_jwt"},
            "code without redirect": {"redirect_uris": []},
            "unknown grant": {"grant_types": ["password"]},
            "platform scope": {"scopes": ["openid", "admin:platform"]},
            "scope with space": {"scopes": ["openid email"]},
            "qualified login tokens": {"login_token_acr": "urn:eid:loa:qualified"},
            "acr upper case": {"default_acr": "URN:EID:LOA:BASIC"},
            "HS256 id tokens": {"id_token_signed_response_alg": "HS256"},
            "21 redirect URIs": {"redirect_uris": [f"https://portal.example/{i}" for i in range(21)]},
            "client_id given": {"client_id": "chosen"},
        }.items():
            yield case, a.http.post(url, json={**NEW_CLIENT, **changes})
        yield from content_types(a, "POST", url, NEW_CLIENT)

    refused_without_change(a, cases(), f"POST {url}")
    made = a.post("/clients", NEW_CLIENT)
    assert made.status_code == 201, made.text
    assert (
        made.json()["client_secret"] is None
        and made.json()["token_endpoint_auth_method"] == "private_key_jwt"
    )
    plain = a.post("/clients", {"name": "Plain", "redirect_uris": ["https://portal.example/cb"]})
    assert plain.status_code == 201 and plain.json()["client_secret"], plain.text


def test_change_client_one_member_at_a_time(admins: tuple[Admin, Admin]) -> None:
    a, _ = admins
    mine = a.post("/clients", NEW_CLIENT).json()["client_id"]
    public = a.post(
        "/clients", {"name": "SPA", "client_type": "public", "redirect_uris": ["https://spa.example/cb"]}
    ).json()["client_id"]
    url = f"{a.base}/clients/{mine}"

    def cases() -> Iterator[tuple[str, httpx.Response]]:
        yield from sent(
            a, "PATCH", url, body_variants(CHANGE, list(CHANGE), CHANGE_CASES, text_member="name")
        )
        yield from sent(a, "PATCH", url, _jwks_variants(CHANGE))
        for case, body in _uri_cases(CHANGE):
            yield case, a.http.patch(url, json=body)
        for case, changes in {
            "keys removed from private_key_jwt": {"jwks": None},
            "code without redirect": {"redirect_uris": []},
            "platform scope": {"scopes": ["admin:platform"]},
            "active a string": {"active": "false"},
            "active zero": {"active": 0},
            "client_type": {"client_type": "public"},
            "auth method": {"token_endpoint_auth_method": "none"},
            "client_id": {"client_id": "renamed"},
        }.items():
            yield case, a.http.patch(url, json=changes)
        spa = f"{a.base}/clients/{public}"
        yield (
            "public with client_credentials",
            a.http.patch(spa, json={"grant_types": ["client_credentials"]}),
        )
        yield (
            "public with token exchange",
            a.http.patch(spa, json={"grant_types": ["urn:ietf:params:oauth:grant-type:token-exchange"]}),
        )
        yield from content_types(a, "PATCH", url, CHANGE)

    refused_without_change(a, cases(), f"PATCH {url}")
    changed = a.patch(f"/clients/{mine}", CHANGE)
    assert changed.status_code == 200, changed.text
    assert (
        changed.json()["redirect_uris"] == CHANGE["redirect_uris"]
        and changed.json()["name"] == CHANGE["name"]
    )
    cleared = a.patch(f"/clients/{mine}", {"default_acr": None, "login_token_acr": None})
    assert cleared.status_code == 200 and cleared.json()["default_acr"] is None, cleared.text


def test_client_ids_in_paths_rotation_and_deletion(admins: tuple[Admin, Admin]) -> None:
    a, other = admins
    keyed = a.post("/clients", NEW_CLIENT).json()["client_id"]
    mine = a.post("/clients", {"name": "Plain", "redirect_uris": ["https://portal.example/cb"]}).json()
    theirs = other.post("/clients", {"name": "Theirs", "redirect_uris": ["https://t.example/cb"]}).json()
    their_rows = admin_rows(other.app, other.tenant.id)
    calls = [("GET", "", None), ("DELETE", "", None), ("PATCH", "", {"name": "X"}), ("POST", "/secret", None)]

    def cases() -> Iterator[tuple[str, httpx.Response]]:
        yield from id_requests(a, "/clients", theirs["client_id"], calls)
        for method, path, body in calls:
            yield (
                f"{method}{path} under another tenant",
                a.http.request(
                    method,
                    f"/admin/v1/tenants/{other.tenant.id}/clients/{theirs['client_id']}{path}",
                    json=body,
                ),
            )
        yield "rotate a key-authenticated client's secret", a.post(f"/clients/{keyed}/secret")
        yield "rotate with a body", a.post(f"/clients/{mine['client_id']}/secret", {"client_secret": "mine"})
        yield "PUT a client", a.put(f"/clients/{keyed}", NEW_CLIENT)
        yield "DELETE the list", a.delete("/clients")
        yield "GET the secret", a.get(f"/clients/{keyed}/secret")

    refused_without_change(a, cases(), "client ids")
    assert admin_rows(other.app, other.tenant.id) == their_rows, "another tenant's client changed"

    rotated = a.post(f"/clients/{mine['client_id']}/secret")
    assert rotated.status_code == 200 and rotated.json()["client_secret"] != mine["client_secret"], (
        rotated.text
    )
    assert a.delete(f"/clients/{keyed}").status_code == 204
    gone = {f"deleted, {m}{p}": (m, f"/clients/{keyed}{p}", b) for m, p, b in calls}
    refused_without_change(a, requested(a, gone), "deleted client")


# -- SCIM tokens --------------------------------------------------------------------------------------


def test_scim_tokens_one_member_at_a_time(admins: tuple[Admin, Admin]) -> None:
    a, other = admins
    new = {"name": "Provisioning"}
    url = a.base + "/scim-tokens"
    mine = a.post("/scim-tokens", new).json()["id"]
    theirs = other.post("/scim-tokens", new).json()["id"]
    their_rows = admin_rows(other.app, other.tenant.id)

    def cases() -> Iterator[tuple[str, httpx.Response]]:
        yield from sent(
            a, "POST", url, body_variants(new, list(new), {"name": NAME_TEXT}, text_member="name")
        )
        yield "name 201", a.http.post(url, json={"name": "n" * 201})
        yield "name spaces only", a.http.post(url, json={"name": "   "})
        yield from content_types(a, "POST", url, new)
        yield from id_requests(a, "/scim-tokens", theirs, [("DELETE", "", None), ("GET", "", None)])
        yield (
            "DELETE under another tenant",
            a.http.delete(f"/admin/v1/tenants/{other.tenant.id}/scim-tokens/{theirs}"),
        )
        yield "PATCH a token", a.patch(f"/scim-tokens/{mine}", {"name": "X"})
        yield "DELETE the list", a.delete("/scim-tokens")

    refused_without_change(a, cases(), "SCIM tokens")
    assert admin_rows(other.app, other.tenant.id) == their_rows, "another tenant's SCIM token changed"

    made = a.post("/scim-tokens", {"name": "Provisioning 2"})
    assert made.status_code == 201, made.text
    with a.app.client(headers={"Authorization": f"Bearer {made.json()['token']}"}) as scim:
        assert scim.get("/scim/v2/Users").status_code == 200
        assert a.delete(f"/scim-tokens/{made.json()['id']}").status_code == 204
        assert scim.get("/scim/v2/Users").status_code == 401
    listed = {t["id"]: t for t in a.get("/scim-tokens").json()["items"]}
    assert listed[made.json()["id"]]["revoked_at"] is not None and listed[mine]["revoked_at"] is None
