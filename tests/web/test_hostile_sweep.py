"""Every route of the app against malformed requests: never a 500, errors in the route's format.

The routes come from the app object itself (the router, its mounts, and the machine routes that
:class:`idp.web.direct.DirectRoutes` serves past the router), so a new route is swept without
being listed here. Each allowed method of each route gets every case of :data:`CASES` (query,
path, body and header garbage), sent as raw ASGI messages (:mod:`tests.support.raw_asgi`) so
that bytes an HTTP client would refuse to send (a lone ``%``, non-UTF-8) reach the app; each
path also gets one method it does not allow.

The requests carry working credentials (a browser cookie with its CSRF token, an agent's
advanced SSO session, a SCIM token, an admin token, a client's secret) and real ids in the path,
so that the garbage reaches the code behind authentication, not only the check in front of it.

Which format an error must have:

- OAuth/OIDC machine endpoints and the page scripts' JSON endpoints: a JSON object with an
  ``error`` string (RFC 6749 §5.2, RFC 6750 §3; :mod:`idp.web.page_json`);
- SCIM: an RFC 7644 §3.12 Error (``application/scim+json``);
- the administration API: an RFC 9457 problem (``application/problem+json``);
- pages (the browser asks for ``text/html``): an HTML page. RP-initiated logout is a page: the
  person's browser is sent there, and its errors are shown to the person (OIDC RP-Initiated
  Logout 1.0 §4);
- operations endpoints, static files and the agent's evidence downloads: only "not a 5xx".

SQLite only: the sweep is about the web layer's handling of input, which is the same on both
engines; the storage tests run on both.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from idp import groups, invitations, sessions
from idp.scim import tokens as scim_tokens
from idp.web.app import create_app
from idp.web.browser import BROWSER_COOKIE, csrf_token
from idp.web.direct import DirectRoutes
from idp.web.i18n import LANGUAGE_COOKIE
from tests.support import agents
from tests.support.raw_asgi import InProcessApp, RawRequest, Reply, in_process
from tests.support.server import database_url_on, settings_factory_for

SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BROWSER = "b" * 32  # the browser that started the reviewed video identification session
BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# parameter names the app's routes read, each filled with garbage by the query and body cases
NAMES = (
    "client_id redirect_uri response_type scope state nonce code code_verifier code_challenge "
    "grant_type token token_type_hint refresh_token access_token id_token_hint post_logout_redirect_uri "
    "subject_token subject_token_type audience resource claims acr_values max_age prompt ui_locales "
    "request_id email password new_password next tenant lang notice done confirm phone credential "
    "method factor otp recovery_code login_token decision reason checklist name given_name family_name "
    "country filter startIndex count attributes excludedAttributes sortBy sortOrder limit offset "
    "cursor status displayName userName sdp type value id"
).split()


# -- the routes, from the app object ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpoint:
    path: str  # the route's template, with mount prefixes
    methods: frozenset[str]

    @property
    def family(self) -> str:
        return family_of(self.path)


def _walk(routes: Any, prefix: str = "") -> Iterator[Endpoint]:
    for route in routes:
        if isinstance(route, Mount):
            if route.routes:
                yield from _walk(route.routes, prefix + route.path)
            else:  # an app of its own (static files): any path below it
                yield Endpoint(prefix + route.path + "/{path:path}", frozenset({"GET", "HEAD"}))
        elif isinstance(route, Route):
            yield Endpoint(prefix + route.path, frozenset(route.methods or ()))


def endpoints(app: Starlette) -> list[Endpoint]:
    """Every path of ``app`` with the methods it allows (routes of one path merged)."""
    found: dict[str, set[str]] = {}
    direct = [m.kwargs["routes"] for m in app.user_middleware if m.cls is DirectRoutes]
    assert direct, "DirectRoutes is no longer installed: drop it from the sweep"
    for routes in (app.routes, *direct):
        for e in _walk(routes):
            found.setdefault(e.path, set()).update(e.methods)
    return [Endpoint(path, frozenset(methods)) for path, methods in found.items()]


def family_of(path: str) -> str:
    if path in {"/token", "/introspect", "/revoke", "/userinfo"} or path.startswith("/.well-known/"):
        return "oauth"
    if path.startswith("/scim/"):
        return "scim"
    if path.startswith("/admin/") or path == "/openapi.json":
        return "admin"
    if re.fullmatch(r"/videoid/\{session_id\}/(offer|status|code)", path) or re.fullmatch(
        r"/agent/sessions/\{session_id\}/(live/status|watch|watch/end)", path
    ):
        return "page_json"
    if path in {"/healthz", "/readyz", "/metrics"} or path.startswith("/static/"):
        return "ops"
    if re.fullmatch(r"/agent/sessions/\{session_id\}/(stills/\{name\}|recording)", path):
        return "media"
    return "page"


def _routes_of_an_app() -> list[Endpoint]:
    """The endpoints of an app built (not started: no lifespan, no database) for collection."""
    with tempfile.TemporaryDirectory() as directory:
        settings = settings_factory_for("sqlite+aiosqlite:///:memory:", Path(directory))()
        return sorted(endpoints(create_app(settings)), key=lambda e: e.path)


ENDPOINTS = _routes_of_an_app()


# -- the world the requests act in ---------------------------------------------------------------


@dataclass
class World:
    app: InProcessApp
    ids: dict[str, str]  # path parameter -> a real id (by path prefix where it differs)
    cookie: str
    csrf: str
    scim_token: str
    admin_token: str
    client_basic: str
    seen: list[str] = field(default_factory=list)

    def fill(self, template: str, garbage: dict[str, str] | None = None) -> bytes:
        def value(match: re.Match[str]) -> str:
            name = match.group(1).split(":")[0]
            if garbage and name in garbage:
                return garbage[name]
            if template.startswith("/scim/"):
                return self.ids["scim_" + name]
            if template.startswith("/admin/"):
                return self.ids["admin_" + name]
            return self.ids[name]

        return re.sub(r"\{([^}]+)\}", value, template).encode("ascii")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[World]:
    directory = tmp_path_factory.mktemp("sweep")
    # on both: text PostgreSQL cannot hold (NUL) fails only there
    url = database_url_on(request.param, request, directory, sqlite_template)
    settings = settings_factory_for(url, directory)(
        issuer="https://idp.test",
        trust_proxy_headers=True,  # X-Forwarded-For is read, so its garbage is too
        email_link_limit_per_ip=1_000_000,
        login_free_failures_per_ip=1_000_000,
        sms_limit_per_ip=1_000_000,
    )
    with in_process(settings, outbox=directory / "mail") as app:
        yield _populate(app)


def _populate(app: InProcessApp) -> World:
    served = app.served
    # people: an agent with an advanced SSO session, a signer whose session waits for review
    people = served.tenant(f"sweep-people-{secrets.token_hex(4)}")
    agent = served.user(people, "agent@example.com", given_name="Ana", family_name="Agent")
    signer = served.user(people, "signer@example.com", given_name="Sara", family_name="Signer")
    agents.make_agents(served, people.id, agent)
    session = agents.reviewed_session(served, signer)
    sso = agents.session_cookie(served, agent)
    client = served.client_app(people, redirect_uris=["https://rp.example/cb"])
    assert client.client_secret is not None

    def invite(tx: Any) -> str:
        inv, secret = invitations.create(
            tx,
            tenant_id=people.id,
            email="new@example.com",
            acr="urn:eid:loa:advanced",
            ttl=3600,
            phone_number="+38640123456",
        )
        invitations.open_link(tx, token=secret, browser=BROWSER, client_ip=None)
        return inv.id

    invitation_id = served.write(invite)
    # machines: SCIM and the admin API act in a tenant of their own, on its own rows
    machines = served.tenant(f"sweep-machines-{secrets.token_hex(4)}")
    member = served.user(machines, "member@example.com")
    group = served.write(
        lambda tx: groups.create(tx, tenant_id=machines.id, display_name="Team", members=[member.id])
    )
    scim = served.write(lambda tx: scim_tokens.create(tx, tenant_id=machines.id, name="sweep"))
    spare = served.write(lambda tx: scim_tokens.create(tx, tenant_id=machines.id, name="spare"))
    victim = served.client_app(machines, name="Victim", redirect_uris=["https://rp.example/cb"])
    machine_invitation, _ = served.write(
        lambda tx: invitations.create(
            tx, tenant_id=machines.id, email="m@example.com", acr="urn:eid:loa:basic", ttl=3600
        )
    )
    admin = served.client_app(
        machines, name="Admin", grant_types=["client_credentials"], scopes=["admin", "admin:platform"]
    )
    assert admin.client_secret is not None
    granted = app.request(
        RawRequest(
            "POST",
            b"/token",
            headers=[
                (b"content-type", b"application/x-www-form-urlencoded"),
                (b"authorization", _basic(admin.client.client_id, admin.client_secret)),
            ],
            body=b"grant_type=client_credentials&scope=admin+admin%3Aplatform",
        )
    )
    assert granted.status == 200, granted.body
    ids = {
        "session_id": session.id,
        "invitation_id": invitation_id,
        "name": "face",
        "path": "css/idp.css",
        "scim_id": member.id,
        "scim_rest": "Unknown/thing",
        "admin_tenant_id": machines.id,
        "admin_client_id": victim.client.client_id,
        "admin_token_id": spare.token.id,
        "admin_user_id": member.id,
        "admin_group_id": group.id,
        "admin_invitation_id": machine_invitation.id,
    }
    return World(
        app=app,
        ids=ids,
        cookie=f"{BROWSER_COOKIE}={BROWSER}; {sessions.COOKIE_NAME}={sso}; {LANGUAGE_COOKIE}=en",
        csrf=csrf_token(served.settings.secret_key, BROWSER),
        scim_token=scim.secret,
        admin_token=json.loads(granted.body)["access_token"],
        client_basic=_basic(client.client.client_id, client.client_secret).decode(),
    )


def _basic(user: str, password: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


# -- the cases -----------------------------------------------------------------------------------


def base_request(world: World, endpoint: Endpoint, method: str) -> RawRequest:
    """A request to ``endpoint`` as its usual caller sends it, credentials included."""
    headers: list[tuple[bytes, bytes]] = [
        (b"host", b"idp.test"),
        (b"user-agent", b"hostile-sweep"),
        (b"cookie", world.cookie.encode()),
    ]
    family = endpoint.family
    if family == "page" or family == "media":
        headers.append((b"accept", b"text/html,application/xhtml+xml,*/*;q=0.8"))
    else:
        headers.append((b"accept", b"application/json"))
    if family == "scim":
        headers.append((b"authorization", f"Bearer {world.scim_token}".encode()))
    elif family == "admin":
        headers.append((b"authorization", f"Bearer {world.admin_token}".encode()))
    elif endpoint.path in {"/token", "/introspect", "/revoke"}:
        headers.append((b"authorization", world.client_basic.encode()))
    elif family == "page_json":
        headers.append((b"x-csrf-token", world.csrf.encode()))
    body = b""
    if method in BODY_METHODS:  # what the route reads, so that header cases get past the body checks
        if family in ("scim", "admin", "page_json"):
            headers.append((b"content-type", JSON))
            body = b"{}"
        else:
            headers.append((b"content-type", FORM))
            body = _form(world, [("grant_type", "client_credentials"), ("token", "x"), ("email", "a@b.c")])
    return RawRequest(method, world.fill(endpoint.path), headers=headers, body=body)


Case = Callable[[World, Endpoint, RawRequest], RawRequest | None]
CASES: dict[str, Case] = {}


def case(name: str) -> Callable[[Case], Case]:
    def register(fn: Case) -> Case:
        CASES[name] = fn
        return fn

    return register


def _query(pairs: list[tuple[str, str]]) -> bytes:
    return "&".join(f"{k}={v}" for k, v in pairs).encode("latin-1")


def _with_header(request: RawRequest, name: bytes, value: bytes) -> RawRequest:
    kept = [(k, v) for k, v in request.headers if k != name]
    return replace(request, headers=[*kept, (name, value)])


def _body(request: RawRequest, content_type: bytes | None, body: bytes) -> RawRequest | None:
    if request.method not in BODY_METHODS:
        return None
    if content_type is None:
        request = replace(request, headers=[(k, v) for k, v in request.headers if k != b"content-type"])
    else:
        request = _with_header(request, b"content-type", content_type)
    return replace(request, body=body)


for _name, _text in {
    "query-nul": _query([(n, "%00") for n in NAMES]),
    "query-invalid-percent": b"%ff%fe=%ff%fe&x=%&%zz=%g&" + _query([(n, "%ff%fe") for n in NAMES]),
    "query-lone-percent": b"%",
    "query-raw-non-utf8": b"\xff\xfe=\xfa&" + _query([(n, "\xe9\xff") for n in NAMES]),
    "query-repeated": _query([(n, v) for n in NAMES for v in ("1", "two")]),
    "query-10kB-values": _query([(n, "a" * 10_000) for n in NAMES]),
    "query-many": _query([(f"x{i}", "y") for i in range(2_000)]),
    "query-numbers": _query([(n, v) for n in NAMES for v in ("-1",)])
    + b"&startIndex=99999999999999999999999&count=1e309&max_age=-0&limit=NaN",
    "query-markup": _query([(n, "%22%3E%3Cscript%3E%0D%0AX-Injected:%201%E2%80%AE") for n in NAMES]),
    "query-empty-names": b"=&==&&=x&;",
    "query-scim-parameters": b"sortBy=%00&sortOrder=sideways&attributes=,,,&excludedAttributes=%00"
    + b"&count=x&startIndex=-5",
}.items():

    def _make(text: bytes) -> Case:
        return lambda world, endpoint, request: replace(request, query=text)

    case(_name)(_make(_text))


PATH_GARBAGE = {
    "nul": "%00",
    "invalid-utf8": "%ff%fe",
    "lone-percent": "%",
    "traversal": "..%2F..%2F..%2Fetc%2Fpasswd",
    "10kB": "a" * 10_000,
    "markup": "%3Cscript%3E%22'",
    "unicode": "%E2%80%AE%F0%9F%98%80",
    "sql": "'%20OR%201=1--",
    "negative": "-1",
    "uuid-unknown": "00000000-0000-4000-8000-000000000000",
}

for _name, _value in PATH_GARBAGE.items():

    def _make_path(value: str) -> Case:
        def fill(world: World, endpoint: Endpoint, request: RawRequest) -> RawRequest | None:
            names = re.findall(r"\{([^}:]+)", endpoint.path)
            if not names:
                return None
            return replace(request, path=world.fill(endpoint.path, dict.fromkeys(names, value)))

        return fill

    case(f"path-{_name}")(_make_path(_value))


def _form(world: World, pairs: list[tuple[str, str]]) -> bytes:
    return _query([("csrf_token", world.csrf), *pairs])


FORM = b"application/x-www-form-urlencoded"
JSON = b"application/json"


@case("form-wrong-content-type")
def _(world: World, endpoint: Endpoint, request: RawRequest) -> RawRequest | None:
    return _body(request, b"text/plain", _form(world, [(n, "x") for n in NAMES]))


@case("form-no-content-type")
def _(world: World, endpoint: Endpoint, request: RawRequest) -> RawRequest | None:
    return _body(request, None, _form(world, [(n, "x") for n in NAMES]))


@case("form-non-utf8")
def _(world: World, endpoint: Endpoint, request: RawRequest) -> RawRequest | None:
    return _body(request, FORM, _form(world, [(n, "\xe9\xff\xfe") for n in NAMES]))


@case("form-invalid-percent")
def _(world: World, endpoint: Endpoint, request: RawRequest) -> RawRequest | None:
    return _body(request, FORM, _form(world, [(n, "%ff%fe%") for n in NAMES]) + b"&%=%&%zz")


@case("form-nul")
def _(world: World, endpoint: Endpoint, request: RawRequest) -> RawRequest | None:
    return _body(request, FORM, _form(world, [(n, "%00a%00") for n in NAMES]))


@case("form-repeated")
def _(world: World, endpoint: Endpoint, request: RawRequest) -> RawRequest | None:
    return _body(request, FORM, _form(world, [(n, v) for n in NAMES for v in ("1", "two")]))


@case("form-huge-field")
def _(world: World, endpoint: Endpoint, request: RawRequest) -> RawRequest | None:
    return _body(request, FORM, _form(world, [("email", "a" * 300_000), ("password", "p" * 300_000)]))


@case("form-many-fields")
def _(world: World, endpoint: Endpoint, request: RawRequest) -> RawRequest | None:
    return _body(request, FORM, _form(world, [(f"x{i}", "y") for i in range(5_000)]))


@case("form-wrong-values")
def _(world: World, endpoint: Endpoint, request: RawRequest) -> RawRequest | None:
    values = ("-1", "1e309", "99999999999999999999999", "yes", "", " ", "[]", "{}", "null")
    return _body(request, FORM, _form(world, [(n, values[i % len(values)]) for i, n in enumerate(NAMES)]))


@case("multipart-junk")
def _(world: World, endpoint: Endpoint, request: RawRequest) -> RawRequest | None:
    return _body(request, b"multipart/form-data; boundary=XyZ", b"--XyZ\r\njunk\xff\r\n--Xy")


@case("multipart-no-boundary")
def _(world: World, endpoint: Endpoint, request: RawRequest) -> RawRequest | None:
    return _body(request, b"multipart/form-data", b"--x\r\n\r\n")


@case("multipart-odd-parts")
def _(world: World, endpoint: Endpoint, request: RawRequest) -> RawRequest | None:
    b = b"--B\r\n"
    body = b"".join(
        [
            b + b'Content-Disposition: form-data; name="csrf_token"\r\n\r\n' + world.csrf.encode() + b"\r\n",
            b + b'Content-Disposition: form-data; name="email"; filename="\xff\xfe.txt"\r\n',
            b"Content-Type: application/octet-stream\r\n\r\n" + b"\x00\xff" * 1000 + b"\r\n",
            b + b'Content-Disposition: form-data; name="password"\r\n\r\n\xff\xfe\r\n',
            b + b"Content-Disposition: form-data\r\n\r\nno name\r\n",
            b"--B--\r\n",
        ]
    )
    return _body(request, b"multipart/form-data; boundary=B", body)


for _name, _raw in {
    "json-invalid": b'{"a": ',
    "json-empty": b"",
    "json-array": b"[1, 2, 3]",
    "json-scalar": b'"a string"',
    "json-null": b"null",
    "json-non-utf8": b'{"userName": "\xff\xfe", "sdp": "\xff"}',
    "json-deeply-nested-array": b"[" * 100_000 + b"]" * 100_000,
    "json-deeply-nested-object": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "json-huge-numbers": b'{"a": 1e999999, "count": -1e309, "startIndex": '
    + b"9" * 5_000
    + b', "value": '
    + b"1" * 5_000
    + b"}",
    "json-wrong-types": json.dumps(
        {
            n: v
            for n, v in zip(
                [*NAMES, "schemas", "Operations", "members", "emails", "name", "active", "Resources"],
                ([], {}, 1.5, None, True, -1, "", "x" * 1000) * 20,
                strict=False,
            )
        }
    ).encode(),
    "json-nul": json.dumps({n: "\x00" for n in [*NAMES, "schemas"]}).encode(),
    "json-huge-string": json.dumps({"userName": "u" * 300_000, "displayName": "d" * 300_000}).encode(),
    "json-scim-user-nul": json.dumps(
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "nul\x00user",
            "externalId": "\x00",
            "name": {"givenName": "A\x00", "familyName": "\ud800"},
            "emails": [{"value": "a\x00@example.com", "primary": True}],
            "phoneNumbers": [{"value": "+386\x00"}],
        }
    ).encode(),
    "json-scim-group-nul": json.dumps(
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "team\x00",
            "externalId": "\ud800",
            "members": [{"value": "\x00"}],
        }
    ).encode(),
    "json-scim-patch-nul": json.dumps(
        {
            "schemas": [PATCH_OP],
            "Operations": [
                {"op": "replace", "path": "displayName", "value": "\x00"},
                {"op": "replace", "path": "userName", "value": "\x00"},
                {"op": "add", "path": "members", "value": [{"value": "\x00"}]},
                {"op": "replace", "path": 'emails[value eq "\x00"].value', "value": "x@example.com"},
            ],
        }
    ).encode(),
    "json-scim-patch": json.dumps(
        {
            "schemas": [PATCH_OP],
            "Operations": [
                {"op": "bogus"},
                {"op": "replace", "path": 'emails[type eq "work" and ((((', "value": {}},
                {"op": "add", "path": "members", "value": [{"value": None}, 5, "x"]},
                {"op": "remove"},
                {"op": "replace", "value": [1, 2]},
                {"op": "replace", "path": "name.givenName.x.y.z", "value": {"a": {"b": []}}},
                {"op": "add", "path": "urn:nothing:here:attr", "value": 1e308},
            ],
        }
    ).encode(),
    "json-scim-bulk": json.dumps(
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "failOnErrors": -1,
            "Operations": [
                {"method": "POST", "path": "/Users", "bulkId": None, "data": []},
                {"method": "PATCH", "path": "/Users/bulkId:nope", "data": {"Operations": "x"}},
                {"method": "DELETE", "path": "/../../admin"},
                {"method": "DELETE", "path": "/Users"},
                {"method": "PUT", "path": "/Users/\x00", "data": {}},
                {"method": 5},
                "x",
            ],
        }
    ).encode(),
    "json-scim-search": json.dumps(
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": "userName eq " + "(" * 500,
            "startIndex": "x",
            "count": 10**30,
            "attributes": [[], {}, 5],
            "sortBy": {"a": 1},
        }
    ).encode(),
}.items():

    def _make_json(raw: bytes) -> Case:
        return lambda world, endpoint, request: _body(request, JSON, raw)

    case(_name)(_make_json(_raw))


@case("json-scim-content-type-with-charset")
def _(world: World, endpoint: Endpoint, request: RawRequest) -> RawRequest | None:
    body = '{"userName": "é"}'.encode("utf-16")
    return _body(request, b"application/scim+json; charset=utf-16", body)


SCIM_FILTERS = [
    "userName eq",
    "(" * 1000,
    'userName eq "a" and ' * 500 + 'userName eq "a"',
    "emails[value sw %ff]",
    'meta.lastModified gt "not a date"',
    "members[value eq 5]",
    'name.givenName.x eq "a"',
    "userName eq 1e999999",
    'userName co "%00"',
    'emails[value eq "%00"]',
    'members.value eq "%00"',
    'externalId eq "%ED%A0%80"',
]

for _i, _filter in enumerate(SCIM_FILTERS):

    def _make_filter(text: str) -> Case:
        def fill(world: World, endpoint: Endpoint, request: RawRequest) -> RawRequest | None:
            if endpoint.family != "scim":
                return None
            query = "filter=" + text.replace("&", "%26").replace(" ", "%20")
            return replace(request, query=query.encode())

        return fill

    case(f"scim-filter-{_i}")(_make_filter(_filter))


def _header_case(name: str, header: bytes, *values: bytes) -> None:
    for i, value in enumerate(values):

        def _make(v: bytes) -> Case:
            return lambda world, endpoint, request: _with_header(request, header, v)

        case(f"{name}-{i}")(_make(value))


_b64 = base64.b64encode
_header_case(
    "authorization",
    b"authorization",
    b"Basic %%%not-base64%%%",
    b"Basic " + _b64(b"\xff\xfe:\xfa\xfb"),
    b"Basic " + _b64(b"no-colon-here"),
    b"Basic " + _b64(b":") + b"=====",
    b"Basic",
    b"Bearer",
    b"Bearer \xff\xfe junk junk",
    b"Bearer " + b"a" * 10_000,
    b"bearer  ",
    b"Negotiate abc",
    b"Basic " + _b64(b"%ff%fe:%00"),
)
_header_case(
    "cookie",
    b"cookie",
    f"{BROWSER_COOKIE}=\xff\xfe; {sessions.COOKIE_NAME}=junk; {LANGUAGE_COOKIE}=../../etc".encode("latin-1"),
    f'{BROWSER_COOKIE}="{"b" * 500}"; {sessions.COOKIE_NAME}={"x" * 5000}; ;;; ==; a'.encode(),
    f"{BROWSER_COOKIE}=; {sessions.COOKIE_NAME}=; {LANGUAGE_COOKIE}=".encode(),
    f"{LANGUAGE_COOKIE}=zz-Latn-XX-x-private; {LANGUAGE_COOKIE}=\x00".encode(),
)
_header_case(
    "accept-language",
    b"accept-language",
    b"*;q=abc, ;;, en-;q=2, \xff\xfe, x-" + b"a" * 1000,
    b",".join([b"xx-YY;q=0.%d" % i for i in range(1000)]),
    b"en;q=NaN, sl;q=1e309, hr;q=-1",
)
_header_case("accept", b"accept", b"*/*;q=\xff", b"text/html;q=0, application/json;q=2" + b"," * 1000)
_header_case(
    "forwarded",
    b"x-forwarded-for",
    b"not-an-ip, 1.2.3.4",
    b"\xff\xfe",
    b"999.999.999.999",
    b"::ffff:1.2.3.4%eth0",
    b", , ," * 1000,
)
_header_case("forwarded-proto", b"x-forwarded-proto", b"gopher", b"\xff")
_header_case("forwarded-host", b"x-forwarded-host", b"evil.example", b"[")
_header_case("host", b"host", b"evil.example:99999", b"[", b"\xff\xfe", b"")
_header_case(
    "content-type",
    b"content-type",
    b"application/x-www-form-urlencoded; charset=utf-16",
    b"application/json; charset=\xff",
    b";;;",
    b"multipart/form-data; boundary=" + b"b" * 5_000,
)
_header_case("csrf-header", b"x-csrf-token", b"\xff\xfe", b"x" * 10_000, b"")


# -- what an answer must look like -----------------------------------------------------------------


def problems(endpoint: Endpoint, request: RawRequest, reply: Reply) -> list[str]:
    found = []
    if reply.exception:
        found.append(f"an exception escaped the app:\n{reply.exception}")
    if reply.status >= 500 or reply.status < 100:
        found.append(f"status {reply.status}: {reply.body[:300]!r}")
    elif reply.status >= 400 and request.method != "HEAD":
        found.extend(format_problems(endpoint.family, request, reply))
    return found


def _json(reply: Reply) -> Any:
    try:
        return json.loads(reply.body)
    except ValueError:
        return None


def format_problems(family: str, request: RawRequest, reply: Reply) -> list[str]:
    status, ctype, body = reply.status, reply.content_type, _json(reply)
    accepts_html = any(k == b"accept" and b"text/html" in v for k, v in request.headers)
    if family == "page_json" and accepts_html and ctype == "text/html":
        return []  # the router's 405 for a browser; page scripts ask for JSON
    if family in ("oauth", "page_json"):
        if (
            ctype != "application/json"
            or not isinstance(body, dict)
            or not isinstance(body.get("error"), str)
        ):
            return [f"{status} is not an OAuth error: {ctype} {reply.body[:300]!r}"]
    elif family == "scim":
        ok = (
            ctype == "application/scim+json"
            and isinstance(body, dict)
            and body.get("schemas") == [SCIM_ERROR]
            and body.get("status") == str(status)
        )
        if not ok:
            return [f"{status} is not a SCIM Error: {ctype} {reply.body[:300]!r}"]
    elif family == "admin":
        ok = ctype == "application/problem+json" and isinstance(body, dict) and body.get("status") == status
        if not ok:
            return [f"{status} is not a problem: {ctype} {reply.body[:300]!r}"]
    elif family == "page" and accepts_html and ctype != "text/html":
        return [f"{status} is not a page: {ctype} {reply.body[:300]!r}"]
    return []


# -- the sweep -------------------------------------------------------------------------------------

_METHOD_ORDER = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]  # DELETE last: it removes rows
SWEPT = [
    pytest.param(e, m, id=f"{m} {e.path}")
    for e in ENDPOINTS
    for m in sorted(e.methods, key=_METHOD_ORDER.index)
]


@pytest.mark.parametrize(("endpoint", "method"), SWEPT)
def test_every_case_on_every_route(world: World, endpoint: Endpoint, method: str) -> None:
    base = base_request(world, endpoint, method)
    failures = []
    for name, make in CASES.items():
        request = make(world, endpoint, base)
        if request is None:
            continue
        started = time.monotonic()
        reply = world.app.request(request)
        elapsed = time.monotonic() - started
        found = problems(endpoint, request, reply)
        if elapsed > 10:
            found.append(f"took {elapsed:.1f} s")
        failures.extend(f"[{name}] {p}" for p in found)
    assert not failures, f"{method} {endpoint.path}:\n" + "\n".join(failures)


def _not_allowed(endpoint: Endpoint) -> str:
    return next(m for m in ("PATCH", "PUT", "DELETE", "POST", "GET", "OPTIONS") if m not in endpoint.methods)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.path)
@pytest.mark.parametrize("accept", ["text/html", "application/json"])
def test_a_method_not_allowed(world: World, endpoint: Endpoint, accept: str) -> None:
    method = _not_allowed(endpoint)
    request = _with_header(base_request(world, endpoint, method), b"accept", accept.encode())
    reply = world.app.request(request)
    assert not problems(endpoint, request, reply), (method, problems(endpoint, request, reply))
    # a catch-all route (SCIM's) may take the method and refuse the request otherwise
    assert 400 <= reply.status < 500, (method, reply.status, reply.body[:300])


def test_the_sweep_sees_every_kind_of_route() -> None:
    paths = {e.path for e in ENDPOINTS}
    # the router's, a mount's, and DirectRoutes' (which serve POST /token past the router)
    assert {"/authorize", "/scim/v2/Users/{id}", "/token", "/static/{path:path}"} <= paths
    assert {e.family for e in ENDPOINTS} == {"oauth", "scim", "admin", "page_json", "ops", "media", "page"}
    assert len(CASES) > 80
