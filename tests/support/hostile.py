"""What the hostile-step sweeps share: the hostile values, the app they run against (per engine),
a step's form sent with one field replaced, and the snapshot of what must not change.

Used by ``tests/web/test_hostile_steps*.py``; the fixtures are imported into each module.
"""

from __future__ import annotations

import secrets
import shutil
import urllib.parse
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Connection, select

from idp.storage import tables
from tests.oidc.conftest import Party, PartyFactory, parties
from tests.oidc.test_advanced_login import ADVANCED, start
from tests.support.flows import form_value
from tests.support.server import ServedApp, serve, settings_factory_for

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
    if request.param == "sqlite":
        shutil.copy(sqlite_template, directory / "idp.db")
        url = f"sqlite+aiosqlite:///{directory / 'idp.db'}"
    else:
        url = str(request.getfixturevalue("pg_database_url"))
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
