"""One hostile member at a time in the administration API's invitations: creation (every member of
the body), the list's query parameters, invitation ids in paths and revocation (the sweep and its
helpers: :mod:`tests.web.test_hostile_steps`, :mod:`tests.web.test_hostile_steps_videoid`).

The administration API has no HTML pages: every answer is JSON, and every refusal an RFC 9457
problem (``application/problem+json``) below 500. A refused request changes none of the tenant's
rows nor its audit trail, and afterwards an invitation made with valid data still opens.
"""

from __future__ import annotations

import json
import secrets
import urllib.parse
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

import httpx
import pytest
from sqlalchemy import Connection, func, select, update

from idp.storage import tables
from tests.admin.conftest import Admin, client_credentials_token
from tests.oidc.test_advanced_login import ADVANCED, PHONE
from tests.support.hostile import (
    BODIES,
    GET_LIMIT,
    NOT_TEXT,
    RAW_CASES,
    TEXT_CASES,
    app,  # noqa: F401  (the module's served app, per engine)
    csrf_of,
    snapshot,
)
from tests.support.server import ServedApp

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
NAME_TEXT = {"digits", "letters", "negative", "float", "markup", "confusable", "fullwidth-digits"}
OPTIONAL = {"missing", "null"}  # null is "not given" in a body
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
HUGE: dict[str, bytes] = {
    "1e400": b"1e400",
    "-1e400": b"-1e400",
    "10**30": b"1" + b"0" * 30,
    "5000 digits": b"9" * 5000,
    "-0": b"-0",
    "NaN": b"NaN",
    "Infinity": b"Infinity",
}


def _rows(served: ServedApp, tenant_id: str) -> dict[str, list[str]]:
    """The shared snapshot with what an invitation's revocation and the audit trail change."""

    def load(conn: Connection) -> dict[str, list[str]]:
        i = tables.invitations.c
        found = conn.execute(
            select(i.id, i.email, i.acr, i.expires_at, i.revoked_at, i.completed_at).where(
                i.tenant_id == tenant_id
            )
        )
        audit = conn.execute(
            select(func.count())
            .select_from(tables.audit_events)
            .where(tables.audit_events.c.tenant_id == tenant_id)
        ).scalar_one()
        return {"invitation rows": sorted(repr(tuple(r)) for r in found), "audit": [str(audit)]}

    return {**snapshot(served, tenant_id), **served.run(served.state.db.read(load))}


def _admin(served: ServedApp) -> Admin:
    """A tenant with a relying app and an admin script's token for it."""
    tenant = served.tenant()
    served.client_app(tenant, redirect_uris=[f"{ORIGIN}/cb"])
    new = served.client_app(tenant, name="Admin script", grant_types=["client_credentials"], scopes=["admin"])
    token = client_credentials_token(served, new, "admin")
    assert token.status_code == 200, token.text
    http = served.client(headers={"Authorization": f"Bearer {token.json()['access_token']}"})
    return Admin(served, tenant, new, token.json()["access_token"], http)


@pytest.fixture
def admins(app: ServedApp) -> Iterator[tuple[Admin, Admin]]:  # noqa: F811
    """This tenant's admin and another tenant's."""
    made = (_admin(app), _admin(app))
    try:
        yield made
    finally:
        for a in made:
            a.http.close()


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


# -- what every refusal must look like ---------------------------------------------------------------


def problem_of(case: str, response: httpx.Response, *, refused: bool = True) -> list[str]:
    """A refusal as RFC 9457 problem details below 500 (or, when ``refused`` is false, any answer
    below 500 that is either JSON or a problem)."""
    status = response.status_code
    if status >= 500:
        return [f"[{case}] {status}: {response.text[:300]}"]
    if status < 400:
        return [f"[{case}] accepted: {status} {response.text[:200]}"] if refused else []
    ctype = response.headers.get("content-type", "")
    if not ctype.startswith("application/problem+json"):
        return [f"[{case}] {status} is not a problem: {ctype} {response.text[:200]}"]
    body = response.json()
    if body.get("status") != status or not body.get("title") or not body.get("detail") or "type" not in body:
        return [f"[{case}] {status} is not RFC 9457 problem details: {body}"]
    return []


def refused_without_change(a: Admin, cases: Iterator[tuple[str, httpx.Response]], what: str) -> None:
    before = _rows(a.app, a.tenant.id)
    found: list[str] = []
    for case, response in cases:
        found.extend(problem_of(case, response))
    assert not found, f"{what}:\n" + "\n".join(found)
    after = _rows(a.app, a.tenant.id)
    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    assert not changed, f"{what}: hostile input changed {changed}"


# -- JSON bodies with one member hostile ------------------------------------------------------------


def _encoded(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data).encode()


def _with_raw(fields: Mapping[str, Any], name: str, raw_value: bytes) -> bytes:
    """``fields`` as JSON with ``name``'s value replaced by raw JSON text, as no encoder writes it."""
    marker = f"@@{secrets.token_hex(4)}@@"
    return _encoded({**fields, name: marker}).replace(f'"{marker}"'.encode(), raw_value)


def body_variants(
    fields: Mapping[str, Any], names: Sequence[str], skip: Mapping[str, Collection[str]]
) -> Iterator[tuple[str, bytes]]:
    """The JSON body ``fields`` with one of ``names`` hostile at a time (the others valid)."""
    for name in names:
        skipped = skip.get(name, ())
        for case, value in {**TEXT_CASES, **NOT_TEXT}.items():
            if case not in skipped:
                yield f"{name}={case}", _encoded({**fields, name: value})
        for case, raw in RAW_CASES.items():
            escaped = raw.decode("utf-8", "surrogateescape").encode("utf-8", "backslashreplace")
            yield f"{name}={case}", _with_raw(fields, name, b'"' + escaped.replace(b"\\x", b"\\u00") + b'"')
        yield f"{name}=raw invalid utf-8", _with_raw(fields, name, b'"\xff\xfe"')
        yield f"{name}=escaped lone surrogate", _with_raw(fields, name, b'"a\\ud800b"')
        yield f"{name}=escaped low surrogate", _with_raw(fields, name, b'"\\udfff"')
        yield f"{name}=escaped NUL", _with_raw(fields, name, b'"a\\u0000b"')
        for case, number in HUGE.items():
            yield f"{name}={case}", _with_raw(fields, name, number)
        yield f"{name}=nested", _encoded({**fields, name: {"a": {"b": [fields[name]]}}})
        yield f"{name}=deep", _with_raw(fields, name, b'{"a":' * 5_000 + b"1" + b"}" * 5_000)
        yield f"{name}=list of it", _encoded({**fields, name: [fields[name]]})
        # a duplicate member: the hostile value after a valid one, and before it
        yield f"{name} duplicated after", _encoded(fields)[:-1] + f', "{name}": "\\u0000"}}'.encode()
        yield f"{name} duplicated before", b'{"' + name.encode() + b'": [1], ' + _encoded(fields)[1:]
        if "missing" not in skipped:
            yield f"{name} missing", _encoded({k: v for k, v in fields.items() if k != name})
    yield "unknown member", _encoded({**fields, "is_admin": True})
    yield "unknown member with NUL key", _encoded({**fields, "a\x00": 1})
    yield "unknown member with surrogate key", _encoded(fields)[:-1] + b', "\\ud800": 1}'
    yield "100 kB member", _encoded({**fields, "given_name": "x" * 100_000})
    yield "60 kB member", _encoded({**fields, "given_name": "x" * 60_000})
    for case, raw in BODIES.items():
        yield case, raw
    yield "huge number body", b"9" * 5000


def test_create_invitation_one_member_at_a_time(admins: tuple[Admin, Admin]) -> None:
    a, other = admins
    fields = _valid(a)
    url = a.base + "/invitations"

    def cases() -> Iterator[tuple[str, httpx.Response]]:
        kind = {"Content-Type": "application/json"}
        for case, raw in body_variants(fields, list(fields), VALID_CASES):
            yield case, a.http.post(url, content=raw, headers=kind)
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
        yield "no content type", a.http.post(url, content=_encoded(fields), headers={"Content-Type": ""})
        yield "text/plain", a.http.post(url, content=_encoded(fields), headers={"Content-Type": "text/plain"})

    refused_without_change(a, cases(), f"POST {url}")
    assert _rows(a.app, other.tenant.id)["invitation rows"] == [], "another tenant got an invitation"
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
    url = a.base + "/invitations"

    def cases() -> Iterator[tuple[str, httpx.Response]]:
        for name in ("offset", "limit"):
            for case, value in {
                **TEXT_CASES,
                "100kB": "x" * GET_LIMIT,
                "huge": "9" * 5000,
                "2**63": str(2**63),
                "limit+1": "201",
                "zero limit": "0",
                "hex": "0x10",
                "minus zero padded": "-00001",
            }.items():
                if name == "offset" and case in ("digits", "limit+1", "zero limit"):
                    continue  # a valid offset past the end: an empty page
                yield f"{name}={case}", a.http.get(url, params={name: value})
            for case, raw in RAW_CASES.items():
                yield (
                    f"{name}={case}",
                    a.http.get(f"{url}?{name}={urllib.parse.quote_from_bytes(raw[:GET_LIMIT])}"),
                )

    refused_without_change(a, cases(), f"GET {url}")
    # what is valid pages as it says; filters the list does not have are not read
    page = a.get("/invitations", params={"offset": 1, "limit": 1, "status": "\x00", "email": "x" * 5000})
    assert page.status_code == 200, page.text
    assert page.json()["total"] == 3 and len(page.json()["items"]) == 1 and page.json()["offset"] == 1
    far = a.get("/invitations", params={"offset": 1_000_000_000, "limit": 200})
    assert far.status_code == 200 and far.json()["items"] == [], far.text


# -- ids in paths, and revocation ------------------------------------------------------------------


def _hostile_ids(theirs: str) -> dict[str, str]:
    return {
        "another tenant's invitation": theirs,
        "garbage": "not-an-invitation",
        "uuid of nothing": "00000000-0000-4000-8000-000000000000",
        "65 characters": "a" * 65,
        "36 characters": "a" * 36,
        "NUL": "%00",
        "encoded slash": "a%2Fb",
        "lone surrogate bytes": "%ED%A0%80",
        "invalid utf-8": "%FF%FE",
        "markup": "%22%3E%3Cscript%3E",
        "sql": "x'%20OR%20'1'='1",
        "space": "%20",
        "newline": "%0A",
    }


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
    their_rows = _rows(other.app, other.tenant.id)

    def cases() -> Iterator[tuple[str, httpx.Response]]:
        for case, ref in _hostile_ids(theirs).items():
            for method in ("GET", "DELETE"):
                yield f"{method} {case}", a.http.request(method, f"{a.base}/invitations/{ref}")
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
    assert _rows(other.app, other.tenant.id) == their_rows, "another tenant's invitation changed"
    assert a.get(f"/invitations/{used}").json()["status"] == "completed"

    assert a.delete(f"/invitations/{mine}").status_code == 204
    revoked = _rows(a.app, a.tenant.id)
    twice = a.delete(f"/invitations/{mine}")
    assert not problem_of("revoked twice", twice) and twice.status_code == 404, twice.text
    assert _rows(a.app, a.tenant.id) == revoked, "revoking twice changed something"
    assert a.get(f"/invitations/{mine}").json()["status"] == "revoked"
    _opens(a, a.post("/invitations", _valid(a, email="after@example.com")))
