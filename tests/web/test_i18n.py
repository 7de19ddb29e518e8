"""Pages, catalogues, language negotiation and the language switcher (``idp/web/i18n.py``)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from starlette.applications import Starlette
from starlette.routing import Route

from idp.web.i18n import (
    LANGUAGE_COOKIE,
    SUBJECT_LOGIN_LINK,
    SUBJECT_LOGIN_LINK_FOR_CLIENT,
    Pages,
    brand_colors,
    language_names,
    safe_next,
    set_language,
)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
LOCALE = TEMPLATES / "locale"
HOSTILE = '<script>alert("x")</script>'
PLACEHOLDER = re.compile(r"%\((\w+)\)s")

# Minimal page-specific context of every template, and a Slovenian string each must show.
PAGES: dict[str, tuple[dict[str, object], str]] = {
    "base.html": ({}, "Preskoči na vsebino"),
    "index.html": ({}, "ponudnik identitete za elektronsko podpisovanje"),
    "login_email.html": ({}, "Pošlji mi povezavo za prijavo"),
    "email_sent.html": ({"email": "ana@example.com", "minutes": 15}, "Povezava velja 15 minut."),
    "email_link_confirm.html": ({"token": "t", "email": "a***@example.com"}, "Nadaljujte prijavo kot"),
    "link_invalid.html": ({"reason": "expired"}, "Ta povezava za prijavo je potekla."),
    "logout_confirm.html": ({}, "Se želite odjaviti iz storitve eID?"),
    "logged_out.html": ({}, "Odjavljeni ste"),
    "error.html": ({"status": 404, "title_key": "not_found"}, "Strani ni mogoče najti"),
    "emails/login_link.txt": ({"link": "https://idp.test/l?t=1", "minutes": 2}, "Povezava velja 2 minuti"),
    "emails/login_link.html": ({"link": "https://idp.test/l?t=1", "minutes": 3}, "Povezava velja 3 minute"),
}


@pytest.fixture(scope="module")
def pages() -> Pages:
    return Pages(languages=["sl", "en"])


def render(pages: Pages, name: str, language: str, **context: object) -> str:
    common: dict[str, object] = {
        "languages": ["sl", "en"],
        "csrf_token": "csrf-value",
        "current_path": "/login?request_id=r1",
        "branding": {},
    }
    return pages.render(name, language=language, **{**common, **PAGES[name][0], **context})


# --- negotiation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cookie", "accept_language", "expected"),
    [
        ("en", "sl-SI,sl;q=0.9", "en"),
        ("EN", None, "en"),
        ("de", "en", "en"),
        (None, "sl-SI,sl;q=0.9,en;q=0.8", "sl"),
        (None, "en-GB,en;q=0.9,sl;q=0.8", "en"),
        (None, "en;q=0.2, sl;q=0.9", "sl"),
        (None, "de, en;q=0.5", "en"),
        (None, "sl;q=0, en", "en"),
        (None, "de", "sl"),
        (None, "hr", "sl"),
        (None, "sr-Latn-RS", "sl"),
        (None, "*", "sl"),
        (None, None, "sl"),
    ],
)
def test_negotiate(pages: Pages, cookie: str | None, accept_language: str | None, expected: str) -> None:
    assert pages.negotiate(cookie=cookie, accept_language=accept_language) == expected


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        ";;;,,,",
        "q=1",
        "en;q=1.5",
        "en;q=abc",
        "en;q=nan",
        "\x00\xff\u200b",
        "😀-😀",
        "a" * 5000,
        ",".join(["x"] * 999),
    ],
)
def test_negotiate_garbage_gives_default(garbage: str) -> None:
    pages = Pages(languages=["sl", "en"], default_language="sl")
    assert pages.negotiate(cookie=garbage, accept_language=garbage) == "sl"


def test_negotiate_default_language() -> None:
    pages = Pages(languages=["sl", "en"], default_language="en")
    assert pages.negotiate(cookie=None, accept_language="de-AT") == "en"
    assert pages.negotiate(cookie=None, accept_language="sl") == "sl"


def test_pages_rejects_bad_configuration() -> None:
    with pytest.raises(ValueError, match="default_language"):
        Pages(languages=["sl", "en"], default_language="de")
    with pytest.raises(ValueError, match="catalogue"):
        Pages(languages=["sl", "xx"])
    with pytest.raises(ValueError, match="at least one"):
        Pages(languages=[])


def test_language_names_are_endonyms() -> None:
    names = language_names()
    assert names["sl"] == "Slovenščina"
    assert names["en"] == "English"


# --- rendering ---------------------------------------------------------------------------------


def test_every_template_is_covered() -> None:
    found = {
        path.relative_to(TEMPLATES).as_posix()
        for pattern in ("*.html", "emails/*")
        for path in TEMPLATES.glob(pattern)
    }
    assert found == set(PAGES)


@pytest.mark.parametrize("name", sorted(PAGES))
@pytest.mark.parametrize("language", ["sl", "en"])
def test_every_template_renders(pages: Pages, name: str, language: str) -> None:
    text = render(pages, name, language)
    expected_sl = PAGES[name][1]
    if language == "sl":
        assert expected_sl in text
    else:
        assert expected_sl not in text
    if name.endswith(".html"):
        assert f'<html lang="{language}">' in text
    assert "%(" not in text
    assert render(pages, name, language) == text  # a pure function of its inputs


def test_unsupported_language_renders_default(pages: Pages) -> None:
    assert '<html lang="sl">' in render(pages, "index.html", "de")


def test_missing_required_key_is_an_error(pages: Pages) -> None:
    with pytest.raises(Exception, match="token"):
        pages.render("email_link_confirm.html", language="sl", email="a***@example.com")


@pytest.mark.parametrize(
    ("name", "context"),
    [
        ("login_email.html", {"email": HOSTILE, "client_name": HOSTILE, "request_id": HOSTILE}),
        ("email_sent.html", {"email": HOSTILE, "request_id": HOSTILE}),
        ("email_link_confirm.html", {"email": HOSTILE, "client_name": HOSTILE, "token": HOSTILE}),
        (
            "logout_confirm.html",
            {"client_name": HOSTILE, "hidden": {"state": HOSTILE}, "cancel_url": HOSTILE},
        ),
        ("logged_out.html", {"client_name": HOSTILE, "return_url": "/" + HOSTILE}),
        ("error.html", {"detail": HOSTILE}),
        ("emails/login_link.html", {"client_name": HOSTILE, "ip": HOSTILE, "requested_at": HOSTILE}),
    ],
)
@pytest.mark.parametrize("language", ["sl", "en"])
def test_hostile_values_are_escaped(
    pages: Pages, name: str, context: dict[str, object], language: str
) -> None:
    text = render(pages, name, language, current_path=HOSTILE, csrf_token=HOSTILE, **context)
    assert "<script>" not in text
    assert "&lt;script&gt;" in text


def test_login_error_is_linked_to_the_input(pages: Pages) -> None:
    text = render(pages, "login_email.html", "sl", error="invalid_email", email="ana@")
    assert 'role="alert"' in text
    assert 'aria-describedby="email-error"' in text
    assert 'id="email-error"' in text
    assert "Vnesite veljaven e-poštni naslov" in text
    assert 'value="ana@"' in text


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("expired", "je potekla"),
        ("used", "že bila uporabljena"),
        ("unknown", "ne prepoznamo"),
        ("other_browser", "v drugem brskalniku"),
    ],
)
def test_link_invalid_reasons(pages: Pages, reason: str, expected: str) -> None:
    text = render(pages, "link_invalid.html", "sl", reason=reason, request_id="r 1&x")
    assert expected in text
    assert 'href="/login?request_id=r+1%26x"' in text


def test_language_switcher(pages: Pages) -> None:
    text = render(pages, "index.html", "en", current_path="/login?request_id=r1&x=1")
    assert '<form class="language-form" method="get" action="/language">' in text
    assert '<label for="language-select">Language</label>' in text
    assert '<option value="sl" lang="sl">Slovenščina</option>' in text
    assert '<option value="en" lang="en" selected>English</option>' in text
    assert '<input type="hidden" name="next" value="/login?request_id=r1&amp;x=1">' in text


def test_logout_keeps_hidden_fields_and_refuses_script_urls(pages: Pages) -> None:
    text = render(
        pages,
        "logout_confirm.html",
        "sl",
        hidden={"id_token_hint": "abc", "csrf_token": "forged"},
        cancel_url="javascript:alert(1)",
        client_name="Portal",
    )
    assert '<input type="hidden" name="id_token_hint" value="abc">' in text
    assert "forged" not in text
    assert "javascript:" not in text
    assert "Storitev Portal je zahtevala vašo odjavo." in text


def test_error_page_retry_after_and_detail(pages: Pages) -> None:
    text = render(
        pages,
        "error.html",
        "sl",
        status=429,
        title_key="too_many_requests",
        retry_after=61,
        detail="slow down",
    )
    assert "Napaka 429" in text
    assert "Poskusite znova čez 61 sekund." in text
    assert "slow down" in text
    assert "čez 5 minut." in render(pages, "error.html", "sl", title_key="too_many_requests", retry_after=300)


@pytest.mark.parametrize(
    ("title_key", "heading", "explanation"),
    [
        (
            "unregistered_redirect_uri",
            "Ne moremo vas vrniti v to aplikacijo",
            "samo na naslov, ki ga je aplikacija registrirala pri nas",
        ),
        ("unknown_client", "Neznana aplikacija", "pri nas ni registrirana"),
        ("request_expired", "Ta zahteva za prijavo ni več veljavna", "znova začnite prijavo"),
    ],
)
def test_error_page_says_why_we_stopped(pages: Pages, title_key: str, heading: str, explanation: str) -> None:
    text = render(pages, "error.html", "sl", status=400, title_key=title_key, detail="invalid_request: x")
    assert f"<h1>{heading}</h1>" in text
    assert explanation in text
    assert "Tehnične podrobnosti: <code>invalid_request: x</code>" in text


def test_link_invalid_without_request_sends_back_to_the_application(pages: Pages) -> None:
    text = render(pages, "link_invalid.html", "sl", reason="used", request_id=None)
    assert 'href="/login' not in text  # /login without a request is a dead end
    assert "vrnite v aplikacijo" in text


def test_branding(pages: Pages) -> None:
    branded = render(pages, "index.html", "en", branding={"name": "Acme", "primary_color": "#FFCC00"})
    assert 'style="--primary: #ffcc00; --on-primary: #000000;' in branded
    assert "<h1>Acme</h1>" in branded
    hostile = {"primary_color": "red; background: url(x)", "logo_url": "javascript:alert(1)"}
    plain = render(pages, "index.html", "en", branding=hostile)
    assert "<body>" in plain
    assert "javascript:" not in plain
    assert "<h1>eID</h1>" in plain
    logo = render(pages, "index.html", "en", branding={"logo_url": "https://cdn.example/l.svg"})
    assert '<img class="brand-logo" src="https://cdn.example/l.svg" alt="eID">' in logo


@pytest.mark.parametrize("color", ["#ffcc00", "#fff", "#777777", "#0b5fff", "#22c55e", "#000"])
def test_brand_colors_keep_aa_contrast(color: str) -> None:
    colors = brand_colors(color)
    assert _contrast(colors["primary"], colors["on_primary"]) >= 4.5
    assert _contrast(colors["accent"], "#ffffff") >= 4.5


def test_gettext_for_mail_subjects(pages: Pages) -> None:
    assert pages.gettext("sl", SUBJECT_LOGIN_LINK) == "Vaša povezava za prijavo"
    assert pages.gettext("en", SUBJECT_LOGIN_LINK) == "Your sign-in link"
    assert (
        pages.gettext("sl", SUBJECT_LOGIN_LINK_FOR_CLIENT, client_name="Portal")
        == "Vaša povezava za prijavo v storitev Portal"
    )
    assert pages.gettext("de", SUBJECT_LOGIN_LINK) == "Vaša povezava za prijavo"


# --- catalogues --------------------------------------------------------------------------------


def _catalog(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as po_file:
        return read_po(po_file, locale=locale)


def _ids(catalog: Catalog) -> set[tuple[object, str | None]]:
    return {(message.id, message.context) for message in catalog if message.id}


def _extracted() -> Catalog:
    """What ``pybabel extract -F babel.cfg .`` finds, limited to the folders babel.cfg maps."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)  # type: ignore[no-untyped-call]

    def directory_filter(path: str) -> bool:
        parts = Path(path).relative_to(ROOT).parts
        return parts[0] in {"templates", "idp"} and not parts[-1].startswith((".", "_"))

    catalog = Catalog()
    for filename, lineno, message, comments, context in extract_from_dir(
        str(ROOT), method_map, options_map, directory_filter=directory_filter
    ):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def test_catalogues_match_extraction() -> None:
    extracted = _ids(_extracted())
    assert SUBJECT_LOGIN_LINK in {message_id for message_id, _ in extracted}
    assert _ids(_catalog(LOCALE / "messages.pot")) == extracted, "run pybabel extract (see babel.cfg)"
    for language in ("sl", "en"):
        po = _catalog(LOCALE / language / "LC_MESSAGES" / "messages.po", language)
        assert _ids(po) == extracted, f"run pybabel update for {language} (see babel.cfg)"
        assert not po.obsolete


def test_slovenian_is_complete() -> None:
    catalog = _catalog(LOCALE / "sl" / "LC_MESSAGES" / "messages.po", "sl")
    assert catalog.num_plurals == 4
    for message in catalog:
        if not message.id:
            continue
        assert not message.fuzzy, message.id
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        assert len(forms) == (catalog.num_plurals if message.pluralizable else 1), message.id
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        for form in forms:
            assert form, message.id
            assert set(PLACEHOLDER.findall(str(form))) == set(PLACEHOLDER.findall(str(ids[-1]))), message.id


def test_english_is_the_source() -> None:
    for message in _catalog(LOCALE / "en" / "LC_MESSAGES" / "messages.po", "en"):
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        if message.id:
            assert all(not string or string in ids for string in strings), message.id


# --- language switcher endpoint ----------------------------------------------------------------


@pytest.fixture
def client() -> httpx.AsyncClient:
    app = Starlette(routes=[Route("/language", set_language)])
    app.state.pages = Pages(languages=["sl", "en"])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://idp.test")


async def test_set_language_sets_cookie_and_redirects(client: httpx.AsyncClient) -> None:
    async with client:
        response = await client.get("/language", params={"lang": "en", "next": "/login?request_id=r1"})
    assert response.status_code == 303
    assert response.headers["location"] == "/login?request_id=r1"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{LANGUAGE_COOKIE}=en;")
    for attribute in ("HttpOnly", "Max-Age=31536000", "Path=/", "SameSite=lax", "Secure"):
        assert attribute in cookie
    assert client.cookies.get(LANGUAGE_COOKIE) == "en"


@pytest.mark.parametrize(
    "next_url",
    [
        "//evil.example",
        "https://evil.example/",
        "/\\evil.example",
        "\\\\evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
        "evil.example",
        "",
    ],
)
async def test_set_language_refuses_foreign_next(client: httpx.AsyncClient, next_url: str) -> None:
    async with client:
        response = await client.get("/language", params={"lang": "sl", "next": next_url})
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    assert safe_next(next_url) == "/"


async def test_set_language_ignores_unsupported_language(client: httpx.AsyncClient) -> None:
    async with client:
        response = await client.get("/language", params={"lang": "de", "next": "/logout"})
    assert response.status_code == 303
    assert response.headers["location"] == "/logout"
    assert "set-cookie" not in response.headers


def _contrast(first: str, second: str) -> float:
    def luminance(color: str) -> float:
        channels = [int(color.lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4)] if len(color) == 7 else []
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)
