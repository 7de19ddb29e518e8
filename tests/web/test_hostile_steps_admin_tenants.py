"""One hostile member at a time in the administration API's tenants and their branding.

A tenant's creation (by a platform admin), change and branding (every member, and every member of
``branding`` inside them), and tenant references in paths. Every refusal is an RFC 9457 problem
below 500 that changes none of the tenant's rows, no tenant's count, nor the audit trail;
afterwards a valid request still works (the sweep and its helpers:
:mod:`tests.web.test_hostile_steps_admin`, :mod:`tests.support.hostile`).
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Iterator
from typing import Any

import httpx

from tests.admin.conftest import Admin
from tests.support.hostile import (
    NAME_TEXT,
    OPTIONAL,
    admin_of,
    admin_rows,
    body_variants,
    content_types,
    hostile_ids,
    nested_variants,
    refused_without_change,
    sent,
)
from tests.support.hostile import admins as admins  # this tenant's admin and another's
from tests.support.hostile import app as app  # the module's served app, per engine
from tests.support.server import ServedApp

BRANDING: dict[str, Any] = {
    "name": "Acme signing",
    "logo_url": "https://cdn.acme.example/logo.png",
    "primary_color": "#0a5",
    "invitation_text": "Acme asks you to sign a document.",
    "sms_name": "Acme",
}
# per member, the cases that are valid input there (free text is a valid name; absent is allowed)
BRANDING_CASES: dict[str, Collection[str]] = {
    "name": {*NAME_TEXT, *OPTIONAL},
    "logo_url": OPTIONAL,
    "primary_color": OPTIONAL,
    "invitation_text": {*NAME_TEXT, *OPTIONAL},
    "sms_name": {"digits", "letters", "negative", "float", *OPTIONAL},
}
CHANGE: dict[str, Any] = {"name": "Acme 2", "branding": BRANDING, "login_token_unknown_users": "create"}
# in a change every member may be left out, and null leaves it as it is
CHANGE_CASES: dict[str, Collection[str]] = {
    "name": {*NAME_TEXT, *OPTIONAL},
    "branding": OPTIONAL,
    "login_token_unknown_users": OPTIONAL,
}
HOSTILE_BRANDING: dict[str, dict[str, Any]] = {
    "logo_url plain http": {"logo_url": "http://cdn.acme.example/logo.png"},
    "logo_url protocol-relative": {"logo_url": "//evil.example/logo.png"},
    "logo_url backslash": {"logo_url": "/\\evil.example/logo.png"},
    "logo_url no host": {"logo_url": "https:///logo.png"},
    "logo_url only the scheme": {"logo_url": "https://"},
    "logo_url javascript": {"logo_url": "javascript:alert(1)"},
    "logo_url CRLF": {"logo_url": "https://cdn.acme.example/logo.png\r\nX: y"},
    "logo_url space": {"logo_url": "https://cdn.acme.example/lo go.png"},
    "primary_color named": {"primary_color": "red"},
    "primary_color 4 digits": {"primary_color": "#0a5f"},
    "primary_color newline": {"primary_color": "#0a5\n"},
    "invitation_text 601": {"invitation_text": "t" * 601},
    "sms_name 21": {"sms_name": "s" * 21},
    "sms_name newline": {"sms_name": "Acme\n"},
}


def _platform(served: ServedApp) -> Admin:
    return admin_of(served, platform=True)


# -- a tenant's change and branding ---------------------------------------------------------------------


def test_change_tenant_one_member_at_a_time(admins: tuple[Admin, Admin]) -> None:
    a, other = admins
    url = a.base

    def cases() -> Iterator[tuple[str, httpx.Response]]:
        yield from sent(
            a, "PATCH", url, body_variants(CHANGE, list(CHANGE), CHANGE_CASES, text_member="name")
        )
        yield from sent(
            a, "PATCH", url, nested_variants(CHANGE, "branding", BRANDING_CASES, text_member="name")
        )
        for case, branding in HOSTILE_BRANDING.items():
            yield case, a.http.patch(url, json={**CHANGE, "branding": {**BRANDING, **branding}})
        for case, changes in {
            "status without the platform scope": {"status": "suspended"},
            "status unknown": {"status": "paused"},
            "unknown users unknown": {"login_token_unknown_users": "invite"},
            "name 201": {"name": "n" * 201},
            "name spaces only": {"name": "   "},
            "slug": {"slug": "renamed"},
            "id": {"id": other.tenant.id},
        }.items():
            yield case, a.http.patch(url, json=changes)
        yield from content_types(a, "PATCH", url, CHANGE)

    refused_without_change(a, cases(), f"PATCH {url}")
    changed = a.http.patch(url, json=CHANGE)
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "Acme 2" and changed.json()["branding"] == BRANDING


def test_put_branding_one_member_at_a_time(admins: tuple[Admin, Admin]) -> None:
    a, _ = admins
    url = a.base + "/branding"

    def cases() -> Iterator[tuple[str, httpx.Response]]:
        yield from sent(
            a, "PUT", url, body_variants(BRANDING, list(BRANDING), BRANDING_CASES, text_member="name")
        )
        for case, branding in HOSTILE_BRANDING.items():
            yield case, a.http.put(url, json={**BRANDING, **branding})
        yield from content_types(a, "PUT", url, BRANDING)
        yield "PATCH branding", a.http.patch(url, json=BRANDING)

    refused_without_change(a, cases(), f"PUT {url}")
    for logo in ("/static/logo.png", "https://cdn.acme.example/logo.png?v=2"):
        put = a.put("/branding", {**BRANDING, "logo_url": logo})
        assert put.status_code == 200 and put.json()["logo_url"] == logo, put.text
    assert a.get("/branding").json() == {**BRANDING, "logo_url": logo}


# -- a tenant's creation ---------------------------------------------------------------------------------


def test_create_tenant_one_member_at_a_time(admins: tuple[Admin, Admin]) -> None:
    a, _ = admins
    platform = _platform(a.app)
    try:
        slug = f"acme-{secrets.token_hex(4)}"
        new = {"slug": slug, "name": "Acme", "branding": BRANDING, "login_token_unknown_users": "create"}
        url = "/admin/v1/tenants"

        def cases() -> Iterator[tuple[str, httpx.Response]]:
            skip = {
                "slug": {"digits", "letters", "float"},  # "123456", "abcdef" and "1e309" are slugs
                "name": NAME_TEXT,
                "branding": OPTIONAL,
                "login_token_unknown_users": {"missing"},
            }
            yield from sent(platform, "POST", url, body_variants(new, list(new), skip, text_member="name"))
            yield from sent(
                platform, "POST", url, nested_variants(new, "branding", BRANDING_CASES, text_member="name")
            )
            for case, value in {
                "slug taken": platform.tenant.slug,
                "slug upper case": slug.upper(),
                "slug leading dash": "-" + slug,
                "slug 64": "s" * 64,
                "slug with dot": "acme.example",
                "slug another tenant's id": a.tenant.id,
            }.items():
                yield case, platform.http.post(url, json={**new, "slug": value})
            yield "status on creation", platform.http.post(url, json={**new, "status": "suspended"})
            yield "without the platform scope", a.http.post(url, json=new)
            yield from content_types(platform, "POST", url, new)

        refused_without_change(platform, cases(), f"POST {url}")
        made = platform.http.post(url, json=new)
        assert made.status_code == 201, made.text
        assert made.json()["slug"] == slug and made.json()["login_token_unknown_users"] == "create"
        listed = [t["slug"] for t in platform.http.get(url).json()["items"]]
        assert slug in listed and slug not in [t["slug"] for t in a.http.get(url).json()["items"]]
    finally:
        platform.http.close()


# -- tenant references in paths ---------------------------------------------------------------------------


def test_tenant_references_in_paths(admins: tuple[Admin, Admin]) -> None:
    a, other = admins
    their_rows = admin_rows(other.app, other.tenant.id)

    def cases() -> Iterator[tuple[str, httpx.Response]]:
        refs = {**hostile_ids(other.tenant.id), "another tenant's slug": other.tenant.slug}
        for case, ref in refs.items():
            tenant = f"/admin/v1/tenants/{ref}"
            yield f"GET {case}", a.http.get(tenant)
            yield f"PATCH {case}", a.http.patch(tenant, json={"name": "Mine now"})
            yield f"GET branding of {case}", a.http.get(f"{tenant}/branding")
            yield f"PUT branding of {case}", a.http.put(f"{tenant}/branding", json=BRANDING)
            yield f"GET users of {case}", a.http.get(f"{tenant}/users")
        yield "DELETE a tenant", a.http.delete(a.base)
        yield "PUT a tenant", a.http.put(a.base, json=CHANGE)
        yield "DELETE the tenants", a.http.delete("/admin/v1/tenants")

    refused_without_change(a, cases(), "tenant references")
    assert admin_rows(other.app, other.tenant.id) == their_rows, "another tenant changed"
    by_slug = a.http.get(f"/admin/v1/tenants/{a.tenant.slug}")
    assert by_slug.status_code == 200 and by_slug.json()["id"] == a.tenant.id, by_slug.text
    assert [t["id"] for t in a.http.get("/admin/v1/tenants").json()["items"]] == [a.tenant.id]
