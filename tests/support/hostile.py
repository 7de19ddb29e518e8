"""What the hostile-step sweeps share: the hostile values, the app they run against (per engine),
a step's form sent with one field replaced, and the snapshot of what must not change.

Used by ``tests/web/test_hostile_steps*.py``; the fixtures are imported into each module. The
administration API's sweeps share JSON bodies with one member hostile, its callers, and what a
refusal must look like.
"""

from __future__ import annotations

import json
import secrets
import urllib.parse
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Connection, func, select

from idp.storage import tables
from tests.admin.conftest import Admin, client_credentials_token
from tests.oidc.conftest import Party, PartyFactory, parties
from tests.oidc.test_advanced_login import ADVANCED, start
from tests.support.flows import form_value
from tests.support.server import ServedApp, database_url_on, serve, settings_factory_for

TEXT_CASES: dict[str, str] = {
    "nul": "ab\x00cd",
    "100kB": "x" * 100_000,
    "empty": "",
    "whitespace": " \t\r\n ",
    "confusable": "\u0430n\u0430\uff20\u0435x\u0430mple.\u0441\u043em",  # Cyrillic a, e, c, o; fullwidth @
    "fullwidth-digits": "\uff11\uff12\uff13\uff14\uff15\uff16",
    "digits": "123456",
    "letters": "abcdef",
    "negative": "-1",
    "float": "1e309",
    "markup": '"><script>x</script>',
}
RAW_CASES: dict[str, bytes] = {  # sent as multipart, where no client re-encodes them
    "lone-surrogate": b"a\xed\xa0\x80b",
    "invalid-utf8": b"\xff\xfe\xc3",
    "100kB-part": b"y" * 100_000,
}
MULTIPART_BOUNDARY = "hostile-steps-boundary"
GET_LIMIT = 8_000


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def app(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    sqlite_template: Path,
    tls: tuple[Path, Path],
) -> Iterator[ServedApp]:
    directory = tmp_path_factory.mktemp("hostile-steps")
    url = database_url_on(request.param, request, directory, sqlite_template)
    with serve(
        settings_factory_for(url, directory),
        tls=tls,
        outbox=directory / "mail",
        # every hostile code and password is a failure: no delays or locks in the way of the sweep
        email_link_limit_per_ip=1_000_000,
        email_link_limit_per_address=1_000_000,
        login_free_failures_per_ip=1_000_000,
        login_free_failures_per_account=1_000_000,
        login_lock_after=1_000_000,
        sms_limit_per_ip=1_000_000,
        sms_limit_per_number=1_000_000,
    ) as served:
        yield served


@pytest.fixture
def party(app: ServedApp) -> Iterator[PartyFactory]:
    with parties(app) as make:

        def browser_party(**kwargs: Any) -> Party:
            made = make(**kwargs)
            made.rp.browser.headers["Accept"] = "text/html,application/xhtml+xml,*/*;q=0.8"  # a browser
            return made

        yield browser_party


# -- sending a form with one field replaced ---------------------------------------------------------


@dataclass
class Form:
    browser: httpx.Client
    action: str
    fields: dict[str, str]  # valid values of every field the step reads
    other: dict[str, dict[str, str]] = field(default_factory=dict)  # case -> field values of others
    method: str = "POST"  # GET: the fields go in the query

    def post(self, data: dict[str, Any], action: str | None = None) -> httpx.Response:
        if self.method == "GET":  # a URL holds 8 kB, not 100 kB (the request line's limit)
            query = {k: v[:GET_LIMIT] if isinstance(v, str) else v for k, v in data.items()}
            return self.browser.get(action or self.action, params=query)
        return self.browser.post(action or self.action, data=data)

    def post_raw(self, name: str, raw: bytes) -> httpx.Response:
        if self.method == "GET":  # the raw bytes percent-encoded, as no client would send them
            pairs = {k: v.encode() for k, v in self.fields.items()} | {name: raw[:GET_LIMIT]}
            query = "&".join(f"{key}={urllib.parse.quote_from_bytes(value)}" for key, value in pairs.items())
            return self.browser.get(f"{self.action}?{query}")
        parts = []
        for key, value in {**self.fields, name: raw}.items():
            body = value if isinstance(value, bytes) else value.encode()
            parts.append(
                f'--{MULTIPART_BOUNDARY}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'.encode()
                + body
                + b"\r\n"
            )
        content = b"".join(parts) + f"--{MULTIPART_BOUNDARY}--\r\n".encode()
        headers = {"content-type": f"multipart/form-data; boundary={MULTIPART_BOUNDARY}"}
        return self.browser.post(self.action, content=content, headers=headers)


def variants(
    form: Form, names: Sequence[str], skip: Mapping[str, Collection[str]] | None = None
) -> Iterator[tuple[str, httpx.Response]]:
    """``form`` sent with one of ``names`` hostile at a time (the others valid); ``skip`` names,
    per field, the cases that are valid input there (an optional field ``missing``)."""
    for name in names:
        skipped = (skip or {}).get(name, ())
        for case, value in TEXT_CASES.items():
            if case not in skipped:
                yield f"{name}={case}", form.post({**form.fields, name: value})
        for case, raw in RAW_CASES.items():
            if case not in skipped:
                yield f"{name}={case} (multipart)", form.post_raw(name, raw)
        if "repeated" not in skipped:
            yield f"{name} repeated", form.post({**form.fields, name: [form.fields[name], "x"]})
        if "missing" not in skipped:
            yield f"{name} missing", form.post({k: v for k, v in form.fields.items() if k != name})
    for case, values in form.other.items():
        yield case, form.post({**form.fields, **values})


def problems_of(case: str, response: httpx.Response) -> list[str]:
    found = []
    if response.status_code >= 500:
        found.append(f"[{case}] {response.status_code}: {response.text[:300]}")
    elif response.status_code not in (302, 303):
        ctype = response.headers.get("content-type", "")
        if not ctype.startswith("text/html"):
            found.append(f"[{case}] {response.status_code} is not a page: {ctype}")
        elif response.status_code >= 400 and "<h1" not in response.text:
            found.append(f"[{case}] {response.status_code} page without a heading: {response.text[:300]}")
    return found


def snapshot(served: ServedApp, tenant_id: str) -> dict[str, list[str]]:
    """What a failed request must not change, for the eIDs, logins, invitations and video
    identifications of a tenant."""

    def load(conn: Connection) -> dict[str, list[str]]:
        t = tables
        eid_ids = select(t.eids.c.id).where(t.eids.c.tenant_id == tenant_id).scalar_subquery()
        clients = select(t.clients.c.client_id).where(t.clients.c.tenant_id == tenant_id).scalar_subquery()
        queries = {
            "eids": select(t.eids.c.id, t.eids.c.status, t.eids.c.email_normalized).where(
                t.eids.c.tenant_id == tenant_id
            ),
            "attributes": select(
                t.eid_attributes.c.eid_id, t.eid_attributes.c.name, t.eid_attributes.c.value
            ).where(t.eid_attributes.c.eid_id.in_(eid_ids)),
            "passwords": select(t.password_credentials.c.hash).where(
                t.password_credentials.c.eid_id.in_(eid_ids)
            ),
            "apps": select(t.totp_credentials.c.id, t.totp_credentials.c.confirmed_at).where(
                t.totp_credentials.c.eid_id.in_(eid_ids)
            ),
            "recovery": select(t.recovery_codes.c.digest, t.recovery_codes.c.used_at).where(
                t.recovery_codes.c.eid_id.in_(eid_ids)
            ),
            "passkeys": select(t.passkey_credentials.c.credential_id, t.passkey_credentials.c.name).where(
                t.passkey_credentials.c.eid_id.in_(eid_ids)
            ),
            "locks": select(t.login_locks.c.eid_id).where(t.login_locks.c.eid_id.in_(eid_ids)),
            "sessions": select(t.sso_sessions.c.sid, t.sso_sessions.c.ended_at).where(
                t.sso_sessions.c.tenant_id == tenant_id
            ),
            "logins": select(
                t.auth_requests.c.id,
                t.auth_requests.c.eid_id,
                t.auth_requests.c.factors,
                t.auth_requests.c.completed_at,
            ).where(t.auth_requests.c.client_id.in_(clients)),
            "invitations": select(
                t.invitations.c.id,
                t.invitations.c.progress,
                t.invitations.c.eid_id,
                t.invitations.c.completed_at,
            ).where(t.invitations.c.tenant_id == tenant_id),
            "links": select(t.email_links.c.digest, t.email_links.c.used_at).where(
                t.email_links.c.tenant_id == tenant_id
            ),
            "videoid": select(
                t.videoid_sessions.c.id,
                t.videoid_sessions.c.status,
                t.videoid_sessions.c.decision,
                t.videoid_sessions.c.review,
                t.videoid_sessions.c.consent_at,
            ).where(t.videoid_sessions.c.tenant_id == tenant_id),
        }
        return {name: sorted(repr(tuple(r)) for r in conn.execute(q)) for name, q in queries.items()}

    return served.run(served.state.db.read(load))


def sweep(
    p: Party, form: Form, names: Sequence[str], skip: Mapping[str, Collection[str]] | None = None
) -> None:
    """Every hostile variant of ``form``: a clear page or a redirect, and nothing written."""
    before = snapshot(p.served, p.tenant.id)
    found: list[str] = []
    for case, response in variants(form, names, skip):
        found.extend(problems_of(case, response))
    assert not found, f"POST {form.action}:\n" + "\n".join(found)
    after = snapshot(p.served, p.tenant.id)
    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    assert not changed, f"POST {form.action}: hostile input changed {changed}"


def csrf_of(page: httpx.Response) -> str:
    return form_value(page.text, "csrf_token")


def other_browser(p: Party, party: PartyFactory) -> dict[str, str]:
    """Another person's sign-in in another browser: its request id and CSRF token."""
    q = party(email=f"other-{secrets.token_hex(4)}@example.com")
    page, _, _ = start(q, acr_values=ADVANCED)
    return {"request_id": form_value(page.text, "request_id"), "csrf_token": csrf_of(page)}


def cross_cases(other: dict[str, str], *names: str) -> dict[str, dict[str, str]]:
    return {f"{name} of another browser": {name: other[name]} for name in names}


# -- signing in ------------------------------------------------------------------------------------


NOT_TEXT: dict[str, Any] = {"number": 5, "null": None, "list": ["x"], "object": {"a": 1}, "bool": True}
BODIES: dict[str, bytes] = {
    "empty body": b"",
    "truncated": b"{",
    "array": b"[]",
    "null": b"null",
    "deep": b"[" * 100_000,
    "invalid utf-8": b'{"x": "\xff\xfe"}',
}


# -- the administration API: JSON bodies with one member hostile -----------------------------------

HUGE: dict[str, bytes] = {
    "1e400": b"1e400",
    "-1e400": b"-1e400",
    "10**30": b"1" + b"0" * 30,
    "5000 digits": b"9" * 5000,
    "-0": b"-0",
    "NaN": b"NaN",
    "Infinity": b"Infinity",
}
NAME_TEXT = {"digits", "letters", "negative", "float", "markup", "confusable", "fullwidth-digits"}
OPTIONAL = {"missing", "null"}  # null is "not given" in a body
# text a name-like member must refuse though no JSON or database layer would: what the domain checks
CONTROL_TEXT: dict[str, str] = {
    "newline": "Ni\nna",
    "CRLF": "Nina\r\nBcc: all@example.com",
    "tab": "Ni\tna",
    "DEL": "Nina\x7f",
    "escape": "\x1b[31mNina",
    "line separator": "Ni\u2028na",
    "bidi override": "\u202eaniN",
}


def encoded(data: Any) -> bytes:
    return json.dumps(data).encode()


def with_raw(fields: Mapping[str, Any], name: str, raw_value: bytes) -> bytes:
    """``fields`` as JSON with ``name``'s value replaced by raw JSON text, as no encoder writes it."""
    marker = f"@@{secrets.token_hex(4)}@@"
    return encoded({**fields, name: marker}).replace(f'"{marker}"'.encode(), raw_value)


def _raw_texts() -> Iterator[tuple[str, bytes]]:
    """Strings as raw JSON text: what no client's encoder writes, and escapes no column can hold."""
    for case, raw in RAW_CASES.items():
        escaped = raw.decode("utf-8", "surrogateescape").encode("utf-8", "backslashreplace")
        yield case, b'"' + escaped.replace(b"\\x", b"\\u00") + b'"'
    yield "raw invalid utf-8", b'"\xff\xfe"'
    yield "escaped lone surrogate", b'"a\\ud800b"'
    yield "escaped low surrogate", b'"\\udfff"'
    yield "escaped NUL", b'"a\\u0000b"'


def member_variants(
    fields: Mapping[str, Any], names: Sequence[str], skip: Mapping[str, Collection[str]]
) -> Iterator[tuple[str, bytes]]:
    """The JSON object ``fields`` with one of ``names`` hostile at a time (the others valid); for a
    list member, also its first item. ``skip`` names per member (``name[]`` for its items) the
    cases that are valid input there."""
    for name in names:
        skipped = skip.get(name, ())
        for case, value in {**TEXT_CASES, **NOT_TEXT, **CONTROL_TEXT}.items():
            if case not in skipped:
                yield f"{name}={case}", encoded({**fields, name: value})
        for case, raw in _raw_texts():
            yield f"{name}={case}", with_raw(fields, name, raw)
        for case, number in HUGE.items():
            yield f"{name}={case}", with_raw(fields, name, number)
        yield f"{name}=nested", encoded({**fields, name: {"a": {"b": [fields[name]]}}})
        yield f"{name}=deep", with_raw(fields, name, b'{"a":' * 5_000 + b"1" + b"}" * 5_000)
        yield f"{name}=900 deep", with_raw(fields, name, b"[" * 900 + b"]" * 900)
        if "list of it" not in skipped:
            yield f"{name}=list of it", encoded({**fields, name: [fields[name]]})
        # a duplicate member: the hostile value after a valid one, and before it
        yield f"{name} duplicated after", encoded(fields)[:-1] + f', "{name}": "\\u0000"}}'.encode()
        yield f"{name} duplicated before", b'{"' + name.encode() + b'": [1], ' + encoded(fields)[1:]
        if "missing" not in skipped:
            yield f"{name} missing", encoded({k: v for k, v in fields.items() if k != name})
        items = fields[name]
        if isinstance(items, list) and items:
            skipped = skip.get(f"{name}[]", ())
            for case, value in {**TEXT_CASES, **NOT_TEXT, **CONTROL_TEXT}.items():
                if case not in skipped:
                    yield f"{name}[0]={case}", encoded({**fields, name: [value, *items[1:]]})
            for case, raw in _raw_texts():
                yield f"{name}[0]={case}", with_raw(fields, name, b"[" + raw + b"]")
            if "100 items" not in skipped:
                yield f"{name}=100 items", encoded({**fields, name: items * 100})


def shape_variants(fields: Mapping[str, Any], *, text_member: str) -> Iterator[tuple[str, bytes]]:
    """Members the object does not have, and a text member too long for any column or body."""
    yield "unknown member", encoded({**fields, "is_admin": True})
    yield "unknown member with NUL key", encoded({**fields, "a\x00": 1})
    yield "unknown member with surrogate key", encoded(fields)[:-1] + b', "\\ud800": 1}'
    yield "100 kB member", encoded({**fields, text_member: "x" * 100_000})
    yield "60 kB member", encoded({**fields, text_member: "x" * 60_000})


def body_variants(
    fields: Mapping[str, Any],
    names: Sequence[str],
    skip: Mapping[str, Collection[str]],
    *,
    text_member: str,
) -> Iterator[tuple[str, bytes]]:
    """The JSON body ``fields`` with one of ``names`` hostile at a time, then hostile as a whole."""
    yield from member_variants(fields, names, skip)
    yield from shape_variants(fields, text_member=text_member)
    yield from BODIES.items()
    yield "huge number body", b"9" * 5000
    yield "900 deep body", b"[" * 900 + b"]" * 900


def nested_variants(
    fields: Mapping[str, Any],
    name: str,
    skip: Mapping[str, Collection[str]],
    *,
    text_member: str | None,
) -> Iterator[tuple[str, bytes]]:
    """The object member ``name`` of ``fields`` with one of its own members hostile at a time (and
    members it does not have, unless ``text_member`` is None: an object open to any member)."""
    inner: Mapping[str, Any] = fields[name]
    cases = member_variants(inner, list(inner), skip)
    if text_member is not None:
        cases = chain(cases, shape_variants(inner, text_member=text_member))
    for case, raw in cases:
        yield f"{name}.{case}", with_raw(fields, name, raw)


# -- the administration API: callers, refusals and what must not change -----------------------------


def admin_of(served: ServedApp, *, platform: bool = False) -> Admin:
    """A new tenant with a relying app and an admin script's token for it."""
    tenant = served.tenant()
    served.client_app(tenant, redirect_uris=["https://rp.example/cb"])
    scopes = ["admin", "admin:platform"] if platform else ["admin"]
    new = served.client_app(tenant, name="Admin script", grant_types=["client_credentials"], scopes=scopes)
    token = client_credentials_token(served, new, " ".join(scopes))
    assert token.status_code == 200, token.text
    http = served.client(headers={"Authorization": f"Bearer {token.json()['access_token']}"})
    return Admin(served, tenant, new, token.json()["access_token"], http)


@pytest.fixture
def admins(app: ServedApp) -> Iterator[tuple[Admin, Admin]]:
    """This tenant's admin and another tenant's."""
    made = (admin_of(app), admin_of(app))
    try:
        yield made
    finally:
        for a in made:
            a.http.close()


def admin_rows(served: ServedApp, tenant_id: str) -> dict[str, list[str]]:
    """The shared snapshot with what the administration API changes: the tenant, its people,
    clients, groups, invitations and SCIM tokens, and the whole audit trail."""

    def load(conn: Connection) -> dict[str, list[str]]:
        t = tables
        queries = {
            "tenant": select(t.tenants).where(t.tenants.c.id == tenant_id),
            "eid rows": select(t.eids).where(t.eids.c.tenant_id == tenant_id),
            "clients": select(t.clients).where(t.clients.c.tenant_id == tenant_id),
            "groups": select(t.groups).where(t.groups.c.tenant_id == tenant_id),
            "members": select(t.group_members).join(t.groups).where(t.groups.c.tenant_id == tenant_id),
            "scim tokens": select(t.scim_tokens).where(t.scim_tokens.c.tenant_id == tenant_id),
            "invitation rows": select(t.invitations).where(t.invitations.c.tenant_id == tenant_id),
            "tenants": select(func.count()).select_from(t.tenants),
            "audit": select(func.count(), func.max(t.audit_events.c.seq)).select_from(t.audit_events),
        }
        return {name: sorted(repr(tuple(r)) for r in conn.execute(q)) for name, q in queries.items()}

    return {**snapshot(served, tenant_id), **served.run(served.state.db.read(load))}


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
    """Every case a problem below 500, and the tenant's rows and the audit trail as they were."""
    before = admin_rows(a.app, a.tenant.id)
    found: list[str] = []
    for case, response in cases:
        found.extend(problem_of(case, response))
    assert not found, f"{what}:\n" + "\n".join(found)
    after = admin_rows(a.app, a.tenant.id)
    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    assert not changed, f"{what}: hostile input changed {changed}"


def sent(
    a: Admin, method: str, url: str, raws: Iterable[tuple[str, bytes]]
) -> Iterator[tuple[str, httpx.Response]]:
    """Each raw body sent as application/json."""
    kind = {"Content-Type": "application/json"}
    for case, raw in raws:
        yield case, a.http.request(method, url, content=raw, headers=kind)


def content_types(a: Admin, method: str, url: str, body: Any) -> Iterator[tuple[str, httpx.Response]]:
    """A valid body in anything but application/json."""
    yield "form-encoded", a.http.request(method, url, data={"x": "1"})
    for case, kind in {
        "no content type": "",
        "text/plain": "text/plain",
        "JSON lookalike": "application/jsonx",
    }.items():
        yield case, a.http.request(method, url, content=encoded(body), headers={"Content-Type": kind})


def hostile_ids(theirs: str) -> dict[str, str]:
    """Path segments that name no resource of this tenant (percent-encoded where needed)."""
    return {
        "another tenant's": theirs,
        "garbage": "not-an-id",
        "uuid of nothing": "00000000-0000-4000-8000-000000000000",
        "65 characters": "a" * 65,
        "36 characters": "a" * 36,
        "NUL": "%00",
        "encoded slash": "a%2Fb",
        "lone surrogate bytes": "%ED%A0%80",
        "invalid utf-8": "%FF%FE",
        "non-ASCII": "%C3%A9%E2%80%AE",
        "markup": "%22%3E%3Cscript%3E",
        "sql": "x'%20OR%20'1'='1",
        "space": "%20",
        "newline": "%0A",
    }


def hostile_pages(a: Admin, url: str) -> Iterator[tuple[str, httpx.Response]]:
    """The paging parameters ``offset`` and ``limit`` of a list, hostile one at a time."""
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
        yield f"{name} repeated", a.http.get(url, params=[(name, "1"), (name, "2")])


def requested(a: Admin, calls: Mapping[str, tuple[str, str, Any]]) -> Iterator[tuple[str, httpx.Response]]:
    """Each case's ``(method, path under the tenant, JSON body or None)``, sent when iterated."""
    for case, (method, path, body) in calls.items():
        yield case, a.http.request(method, a.base + path, json=body)


def id_requests(
    a: Admin, collection: str, theirs: str, calls: Sequence[tuple[str, str, Any]]
) -> Iterator[tuple[str, httpx.Response]]:
    """Every hostile id in ``collection`` (``theirs``: another tenant's), with each of ``calls``:
    ``(method, path after the id, JSON body or None)``."""
    for case, ref in hostile_ids(theirs).items():
        yield from requested(a, {f"{m} {case}{p}": (m, f"{collection}/{ref}{p}", b) for m, p, b in calls})


def assert_paged(a: Admin, path: str, total: int) -> None:
    """Hostile paging parameters are refused; valid ones page as they say, filters the list does
    not have are not read, and an offset past the end is an empty page."""
    url = a.base + path
    refused_without_change(a, hostile_pages(a, url), f"GET {url}")
    page = a.get(path, params={"offset": 1, "limit": 1, "status": "\x00", "email": "x" * 5000})
    assert page.status_code == 200, page.text
    assert page.json()["total"] == total and len(page.json()["items"]) == 1 and page.json()["offset"] == 1
    far = a.get(path, params={"offset": 1_000_000_000, "limit": 200})
    assert far.status_code == 200 and far.json()["items"] == [], far.text
