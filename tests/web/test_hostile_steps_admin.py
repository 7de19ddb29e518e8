"""One hostile member at a time in the administration API's invitations: creation (every member of
the body), the list's query parameters, invitation ids in paths and revocation (the sweep and its
helpers: :mod:`tests.web.test_hostile_steps`, :mod:`tests.web.test_hostile_steps_videoid`).

The administration API has no HTML pages: every answer is JSON, and every refusal an RFC 9457
problem (``application/problem+json``) below 500. A refused request changes none of the tenant's
rows nor its audit trail, and afterwards an invitation made with valid data still opens.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Collection, Iterator
from typing import Any

import httpx
from sqlalchemy import select, update

from idp.storage import tables
from tests.admin.conftest import Admin
from tests.oidc.test_advanced_login import ADVANCED, PHONE
from tests.support.hostile import (
    NAME_TEXT,
    OPTIONAL,
    admin_rows,
    assert_paged,
    body_variants,
    csrf_of,
    encoded,
    id_requests,
    refused_without_change,
    requested,
    sent,
)
from tests.support.hostile import admins as admins  # this tenant's admin and another's
from tests.support.hostile import app as app  # the module's served app, per engine

ORIGIN = "https://rp.example"
VALID: dict[str, Any] = {
    "email": "invited.signer@example.com",
    "acr": ADVANCED,
    "given_name": "Nina",
    "family_name": "Kovač",
    "phone_number": PHONE,
    "country": "SI",
    "client_id": "",  # the tenant's relying app, filled in per test
    "return_url": f"{ORIGIN}/sign?doc=17",
    "language": "en",
    "valid_days": 7,
    "send_mail": False,
}
# per member, the cases that are valid input there (free text is a valid name; absent is allowed)
VALID_CASES: dict[str, Collection[str]] = {
    "acr": {"missing"},  # the default level
    "given_name": {*NAME_TEXT, *OPTIONAL},
    "family_name": {*NAME_TEXT, *OPTIONAL},
    "country": OPTIONAL,
    "return_url": OPTIONAL,
    "language": OPTIONAL,
    "valid_days": {*OPTIONAL, "number"},
    "send_mail": {*OPTIONAL, "bool"},
}


def _relying_app(a: Admin) -> str:
    found = a.app.run(
        a.app.state.db.read(
            lambda conn: conn.execute(
                select(tables.clients.c.client_id).where(
                    (tables.clients.c.tenant_id == a.tenant.id) & (tables.clients.c.name == "Relying app")
                )
            ).scalar_one()
        )
    )
    return str(found)


def _valid(a: Admin, **changes: Any) -> dict[str, Any]:
    return {**VALID, "client_id": _relying_app(a), **changes}


def test_create_invitation_one_member_at_a_time(admins: tuple[Admin, Admin]) -> None:
    a, other = admins
    fields = _valid(a)
    url = a.base + "/invitations"

    def cases() -> Iterator[tuple[str, httpx.Response]]:
        yield from sent(
            a, "POST", url, body_variants(fields, list(fields), VALID_CASES, text_member="given_name")
        )
        their_client = _relying_app(other)
        yield "client_id of another tenant", a.http.post(url, json={**fields, "client_id": their_client})
        yield (
            "client_id of the admin script",
            a.http.post(url, json={**fields, "client_id": a.client.client.client_id}),
        )
        for case, target in {
            "return_url elsewhere": "https://evil.example/sign",
            "return_url javascript": "javascript:alert(1)",
            "return_url protocol-relative": "//evil.example/x",
            "return_url with credentials": f"https://user:pw@{ORIGIN[8:]}/x",
            "return_url plain http": "http://rp.example/sign",
            "return_url bad IPv6": "https://[::1/x",
            "return_url bad port": f"{ORIGIN}:99999/x",
            "return_url relative": "/sign",
            "return_url data": "data:text/html,<script>x</script>",
            "return_url CRLF": f"{ORIGIN}/x\r\nSet-Cookie: a=b",
        }.items():
            yield case, a.http.post(url, json={**fields, "return_url": target})
        yield (
            "return_url without a client",
            a.http.post(url, json={k: v for k, v in fields.items() if k != "client_id"}),
        )
        for case, value in {
            "acr unknown": "urn:eid:loa:ultimate",
            "acr upper case": ADVANCED.upper(),
            "acr with space": ADVANCED + " ",
            "country lower case": "si",
            "country newline": "SI\n",
            "language newline": "en\n",
            "language long": "english",
            "valid_days 0": 0,
            "valid_days 91": 91,
            "valid_days 1.5": 1.5,
            "valid_days 2**63": 2**63,
        }.items():
            member = case.split(" ")[0]
            yield case, a.http.post(url, json={**fields, member: value})
        for case, email in {
            "email without domain": "nina@",
            "email two at": "a@b@example.com",
            "email newline header": "nina@example.com\r\nBcc: all@example.com",
            "email 255": "n" * 64 + "@" + "e" * 186 + ".com",
            "email dotless": "nina@localhost",
        }.items():
            yield case, a.http.post(url, json={**fields, "email": email})
        for case, phone in {
            "phone letters": "+3864abcdefg",
            "phone without plus": "0038640123456",
            "phone too short": "+1",
            "phone 32 nines": "+" + "9" * 31,
        }.items():
            yield case, a.http.post(url, json={**fields, "phone_number": phone})
        yield "advanced without a phone", a.http.post(url, json={**fields, "phone_number": None})
        yield "form-encoded", a.http.post(url, data={"email": fields["email"]})
        yield "no content type", a.http.post(url, content=encoded(fields), headers={"Content-Type": ""})
        yield "text/plain", a.http.post(url, content=encoded(fields), headers={"Content-Type": "text/plain"})

    refused_without_change(a, cases(), f"POST {url}")
    assert admin_rows(a.app, other.tenant.id)["invitation rows"] == [], "another tenant got an invitation"
    _opens(a, a.post("/invitations", fields))


def _opens(a: Admin, created: httpx.Response) -> None:
    """The invitation created with valid data: the invited person opens the link and goes on."""
    assert created.status_code == 201, created.text
    link = urllib.parse.urlsplit(created.json()["link"])
    with a.app.client(headers={"Accept-Language": "en"}) as browser:
        welcome = browser.get(f"{link.path}?{link.query}")
        assert welcome.status_code == 200, welcome.text[:500]
        token = urllib.parse.parse_qs(link.query)["token"][0]
        started = browser.post("/invite", data={"csrf_token": csrf_of(welcome), "token": token})
        assert started.status_code == 303, started.text[:500]
        assert "Confirm your mobile number" in browser.get(started.headers["location"]).text


# -- the list's query parameters ---------------------------------------------------------------------


def test_list_invitations_hostile_query(admins: tuple[Admin, Admin]) -> None:
    a, _ = admins
    made = [a.post("/invitations", _valid(a, email=f"n{i}@example.com")) for i in range(3)]
    assert all(r.status_code == 201 for r in made), [r.text for r in made]
    assert_paged(a, "/invitations", 3)


# -- ids in paths, and revocation ------------------------------------------------------------------


def test_invitation_ids_in_paths_and_revocation(admins: tuple[Admin, Admin]) -> None:
    a, other = admins
    mine = a.post("/invitations", _valid(a)).json()["id"]
    theirs = other.post("/invitations", _valid(other)).json()["id"]
    used = a.post("/invitations", _valid(a, email="used@example.com")).json()["id"]
    a.app.write(
        lambda tx: tx.conn.execute(
            update(tables.invitations).where(tables.invitations.c.id == used).values(completed_at=tx.now)
        )
    )
    their_rows = admin_rows(other.app, other.tenant.id)

    def cases() -> Iterator[tuple[str, httpx.Response]]:
        yield from id_requests(a, "/invitations", theirs, [("GET", "", None), ("DELETE", "", None)])
        for method in ("GET", "DELETE", "POST"):
            yield (
                f"{method} under another tenant",
                a.http.request(method, f"/admin/v1/tenants/{other.tenant.id}/invitations/{theirs}"),
            )
            yield (
                f"{method} with the tenant's slug of another",
                a.http.request(method, f"/admin/v1/tenants/{other.tenant.slug}/invitations/{mine}"),
            )
        for case, ref in {"NUL": "%00", "65 characters": "t" * 65, "garbage": "nope"}.items():
            yield f"tenant {case}", a.http.get(f"/admin/v1/tenants/{ref}/invitations/{mine}")
        yield "revoke a used invitation", a.delete(f"/invitations/{used}")
        yield "PATCH an invitation", a.patch(f"/invitations/{mine}", {"email": "x@example.com"})
        yield "DELETE the list", a.delete("/invitations")

    refused_without_change(a, cases(), "invitation ids")
    assert admin_rows(other.app, other.tenant.id) == their_rows, "another tenant's invitation changed"
    assert a.get(f"/invitations/{used}").json()["status"] == "completed"

    assert a.delete(f"/invitations/{mine}").status_code == 204
    refused_without_change(
        a, requested(a, {"revoked twice": ("DELETE", f"/invitations/{mine}", None)}), "revoked"
    )
    assert a.get(f"/invitations/{mine}").json()["status"] == "revoked"
    _opens(a, a.post("/invitations", _valid(a, email="after@example.com")))
