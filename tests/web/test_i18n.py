"""Pages, language negotiation and the language switcher (``idp/web/i18n.py``).

The catalogues themselves are checked in ``test_catalogues.py``, a tenant's branding in
``test_branding.py`` and the remembered translations in ``test_page_gettext.py``.
"""

from __future__ import annotations

import html
import re

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from idp.language_tags import babel_locale, language_tag
from idp.web.i18n import (
    LANGUAGE_COOKIE,
    SUBJECT_INVITATION,
    SUBJECT_LOGIN_LINK,
    SUBJECT_LOGIN_LINK_FOR_CLIENT,
    Pages,
    language_names,
    set_language,
)
from idp.web.safe_urls import safe_next
from tests.support.pages import LANGUAGES, PAGES, TEMPLATES_DIR, VARIANTS, all_pages, as_read, render

HOSTILE = '<script>alert("x")</script>'


@pytest.fixture(scope="module")
def pages() -> Pages:
    return all_pages()


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
        (None, "*", "sl"),
        (None, None, "sl"),
        # Croatian and Serbian (Latin script)
        (None, "hr", "hr"),
        (None, "hr-HR,hr;q=0.9,en-US;q=0.8,en;q=0.7", "hr"),
        (None, "HR-hr", "hr"),
        (None, "sr-Latn", "sr-Latn"),
        (None, "sr-Latn-RS", "sr-Latn"),
        (None, "sr-latn-me", "sr-Latn"),
        (None, "sr", "sr-Latn"),  # basic filtering: the range "sr" matches the tag sr-Latn
        (None, "sr-RS,sr;q=0.9", "sr-Latn"),
        (None, "sr-Cyrl-RS", "sr-Latn"),  # no Cyrillic catalogue: Latin script beats another language
        (None, "de-AT, sr;q=0.8, en;q=0.5", "sr-Latn"),
        (None, "en;q=0.5, sr-Latn-RS", "sr-Latn"),
        (None, "sr;q=0.4, hr;q=0.6", "hr"),
        (None, "bs", "sl"),  # Bosnian is not offered
        (None, "bs-BA, hr;q=0.5", "hr"),
        (None, "sh", "sl"),
        (None, "s", "sl"),
        (None, "srp", "sl"),
        (None, "sr-", "sl"),
        ("sr-Latn", "en", "sr-Latn"),
        ("sr_Latn", "en", "sr-Latn"),
        ("SR-LATN", None, "sr-Latn"),
        ("hr", "sl", "hr"),
        ("sr", "en", "en"),  # a cookie is an exact choice; "sr" was never offered as one
        ("sr-Cyrl", None, "sl"),
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


@pytest.mark.parametrize(
    ("cookie", "ui_locales", "accept_language", "expected"),
    [
        (None, "hr", "en", "hr"),  # the relying app's hint beats the browser's header
        (None, "de hr sl", "en", "hr"),  # its first offered tag, in its order
        (None, "sr-RS en", "sl", "sr-Latn"),
        (None, "hr-HR", None, "hr"),
        ("en", "hr", "sl", "en"),  # the person's own choice beats both
        (None, "de fr", "hr", "hr"),  # nothing offered in the hint: the header decides
        (None, "* hr", "en", "hr"),  # a wildcard is no language
        (None, "", "hr", "hr"),
        (None, None, "hr", "hr"),
        (None, "\x00 <script> ;q=1", "hr", "hr"),
        (None, "x-" * 3000, "hr", "hr"),
        (None, " ".join(["de"] * 999) + " hr", "en", "en"),  # only the first tags are read
    ],
)
def test_negotiate_with_ui_locales(
    pages: Pages, cookie: str | None, ui_locales: str | None, accept_language: str | None, expected: str
) -> None:
    assert pages.negotiate(cookie=cookie, accept_language=accept_language, ui_locales=ui_locales) == expected


def test_negotiate_default_language() -> None:
    pages = Pages(languages=["sl", "en"], default_language="en")
    assert pages.negotiate(cookie=None, accept_language="de-AT") == "en"
    assert pages.negotiate(cookie=None, accept_language="sl") == "sl"
    assert pages.negotiate(cookie=None, accept_language="hr-HR") == "en"  # only what is offered
    assert pages.negotiate(cookie="sr-Latn", accept_language="sr") == "en"


def test_languages_are_bcp47_tags() -> None:
    pages = Pages(languages=["sl", "sr_Latn", "HR"], default_language="sr_latn")
    assert pages.languages == ("sl", "sr-Latn", "hr")
    assert pages.default_language == "sr-Latn"
    assert pages.supported("sr_LATN") == "sr-Latn"
    assert pages.supported("sr") is None
    assert pages.supported("") is None
    assert pages.supported(None) is None


@pytest.mark.parametrize(
    ("value", "tag", "locale"),
    [
        ("sl", "sl", "sl"),
        ("sr_Latn", "sr-Latn", "sr_Latn"),
        ("sr-latn-rs", "sr-Latn-RS", "sr_Latn_RS"),
        ("HR_hr", "hr-HR", "hr_HR"),
        ("es-419", "es-419", "es_419"),
    ],
)
def test_language_tag_and_babel_locale(value: str, tag: str, locale: str) -> None:
    assert language_tag(value) == tag
    assert babel_locale(value) == locale


@pytest.mark.parametrize(
    "value", ["", "s", "sr-", "sr--Latn", "sr-Latn-RS-x-private", "../etc", "sl/../en", "😀"]
)
def test_language_tag_refuses_other_values(value: str) -> None:
    with pytest.raises(ValueError, match="language tag"):
        language_tag(value)


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
    assert names["hr"] == "Hrvatski"
    assert names["sr-Latn"] == "Srpski (latinica)"
    assert set(LANGUAGES) <= set(names)


# --- rendering ---------------------------------------------------------------------------------


def test_every_template_is_covered() -> None:
    found = {
        path.relative_to(TEMPLATES_DIR).as_posix()
        for pattern in ("*.html", "emails/*")
        for path in TEMPLATES_DIR.glob(pattern)
        if not path.name.startswith("_")  # partials, rendered inside the pages that include them
    }
    assert found == set(PAGES)
    assert all(set(expected) == set(LANGUAGES) for _, expected in PAGES.values())


@pytest.mark.parametrize("name", sorted(PAGES))
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_template_renders(pages: Pages, name: str, language: str) -> None:
    text = as_read(render(pages, name, language))
    expected = PAGES[name][1]
    assert expected[language] in text
    for other, string in expected.items():
        if other != language and string not in expected[language]:
            assert string not in text, other
    if name.endswith(".html"):
        assert f'<html lang="{language}">' in text
    assert "%(" not in text
    assert as_read(render(pages, name, language)) == text  # a pure function of its inputs


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
        (
            "invite.html",
            {
                "step": "existing",
                "email": HOSTILE,
                "tenant_name": HOSTILE,
                "client_name": HOSTILE,
                "invitation": {"return_url": "/" + HOSTILE},
            },
        ),
        (
            "invite.html",
            {"step": "welcome", "tenant_name": HOSTILE, "client_name": HOSTILE, "token": HOSTILE},
        ),
        ("onboarding.html", {"phone": HOSTILE}),
        ("onboarding.html", {"step": "factor", "phone": HOSTILE}),
        (
            "login_code.html",
            {"method": "sms", "phone": HOSTILE, "request_id": HOSTILE, "challenge_id": HOSTILE},
        ),
        ("emails/invitation.html", {"tenant_name": HOSTILE, "given_name": HOSTILE}),
        (
            "account.html",
            {
                "person": {
                    "attributes": {"email": {"value": HOSTILE, "verified_at": 1, "verified_method": HOSTILE}}
                },
                "phone": HOSTILE,
                "enrolled": {
                    "password": True,
                    "app": False,
                    "recovery_codes_left": 0,
                    "passkeys": [{"name": HOSTILE}],
                    "locked": False,
                },
                "events": [
                    (
                        {
                            "occurred_at": HOSTILE,
                            "event_type": HOSTILE,
                            "client_ip": HOSTILE,
                            "success": False,
                        },
                        "Other event",
                    )
                ],
            },
        ),
        (
            "account_change.html",
            {
                "step": "passkeys",
                "passkeys": [{"name": HOSTILE, "credential_id": HOSTILE, "backup_eligible": True}],
                "passkey_challenge": HOSTILE,
            },
        ),
        ("account_change.html", {"step": "phone", "challenge_id": HOSTILE, "to": HOSTILE}),
        ("account_change.html", {"step": "phone", "phone_value": HOSTILE, "error": "invalid_phone"}),
        ("reset.html", {"step": "sent", "email": HOSTILE}),
        (
            "reset.html",
            {"step": "request", "email": HOSTILE, "request_id": HOSTILE, "error": "invalid_email"},
        ),
        (
            "reset.html",
            {"step": "code", "method": "sms", "phone": HOSTILE, "token": HOSTILE, "methods": ["sms"]},
        ),
        ("emails/password_reset.html", {"ip": HOSTILE, "requested_at": HOSTILE}),
        ("videoid_offer.html", {"client_name": HOSTILE, "email": HOSTILE, "request_id": HOSTILE}),
        ("videoid_start.html", {"request_id": HOSTILE, "error": HOSTILE}),
        ("videoid.html", {"session_id": HOSTILE, "ice_servers": HOSTILE}),
        (
            "videoid_result.html",
            {"outcome": HOSTILE, "reasons": [HOSTILE], "next_url": "/" + HOSTILE, "returning": False},
        ),
    ],
)
@pytest.mark.parametrize("language", LANGUAGES)
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
    text = as_read(render(pages, "link_invalid.html", "sl", reason=reason, request_id="r 1&x"))
    assert expected in text
    assert 'href="/login?request_id=r+1%26x"' in text


@pytest.mark.parametrize(
    ("language", "name"),
    [("sl", "Slovenija"), ("en", "Slovenia"), ("hr", "Slovenija"), ("sr-Latn", "Slovenija")],
)
def test_a_country_is_named_in_the_page_language(pages: Pages, language: str, name: str) -> None:
    assert f"<dd>{name}</dd>" in render(pages, "onboarding.html", language, step="details")
    assert re.search(rf'<dd class="nowrap-anywhere">{name}\s*<span', render(pages, "account.html", language))


def test_a_country_code_the_locale_does_not_name_stays_as_it_is() -> None:
    from idp.web.i18n import country_name_filter

    named = country_name_filter("sl")
    assert (
        named("si") == "Slovenija"
        and named("SVN") == "SVN"
        and named("<b>") == "<b>"
        and named(None) == "None"
    )
    assert country_name_filter("qaa")("SI") == "SI"  # a language CLDR does not know


def test_language_switcher(pages: Pages) -> None:
    text = render(pages, "index.html", "en", current_path="/login?request_id=r1&x=1")
    assert '<form class="language-form" method="get" action="/language">' in text
    assert '<label for="language-select">Language</label>' in text
    assert '<input type="hidden" name="next" value="/login?request_id=r1&amp;x=1">' in text
    options = re.findall(r"<option [^>]*>[^<]*</option>", text)
    assert options == [
        '<option value="sl" lang="sl">Slovenščina</option>',
        '<option value="en" lang="en" selected>English</option>',
        '<option value="hr" lang="hr">Hrvatski</option>',
        '<option value="sr-Latn" lang="sr-Latn">Srpski (latinica)</option>',
    ]


@pytest.mark.parametrize(
    ("language", "label", "button"),
    [("sl", "Jezik", "Zamenjaj"), ("hr", "Jezik", "Promijeni"), ("sr-Latn", "Jezik", "Promeni")],
)
def test_language_switcher_in_each_language(pages: Pages, language: str, label: str, button: str) -> None:
    text = render(pages, "index.html", language)
    assert f'<label for="language-select">{label}</label>' in text
    assert f">{button}</button>" in text
    assert len(re.findall("<option ", text)) == 4
    assert f'<option value="{language}" lang="{language}" selected>' in text


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
    text = as_read(
        render(pages, "error.html", "sl", status=400, title_key=title_key, detail="invalid_request: x")
    )
    assert f"<h1>{heading}</h1>" in text
    assert explanation in text
    assert "Tehnične podrobnosti: <code>invalid_request: x</code>" in text


def test_link_invalid_without_request_sends_back_to_the_application(pages: Pages) -> None:
    text = as_read(render(pages, "link_invalid.html", "sl", reason="used", request_id=None))
    assert 'href="/login' not in text  # /login without a request is a dead end
    assert "vrnite v aplikacijo" in text


def test_gettext_for_mail_subjects(pages: Pages) -> None:
    assert pages.gettext("sl", SUBJECT_LOGIN_LINK) == "Vaša povezava za prijavo"
    assert pages.gettext("en", SUBJECT_LOGIN_LINK) == "Your sign-in link"
    assert (
        pages.gettext("sl", SUBJECT_LOGIN_LINK_FOR_CLIENT, client_name="Portal")
        == "Vaša povezava za prijavo v storitev Portal"
    )
    assert pages.gettext("de", SUBJECT_LOGIN_LINK) == "Vaša povezava za prijavo"
    assert pages.gettext("hr", SUBJECT_LOGIN_LINK) == "Vaša poveznica za prijavu"
    assert pages.gettext("sr-Latn", SUBJECT_LOGIN_LINK) == "Vaš link za prijavu"
    assert (
        pages.gettext("sr_Latn", SUBJECT_INVITATION, name="Acme") == "Acme vas poziva da napravite svoj eID"
    )
    assert pages.gettext("hr", SUBJECT_INVITATION, name="Acme") == "Acme vas poziva da izradite svoj eID"


@pytest.mark.parametrize("language", ["sl", "en", "hr", "sr-Latn"])
def test_a_name_ending_with_a_full_stop_ends_its_sentence_once(pages: Pages, language: str) -> None:
    # companies' names often end with one ("d.o.o.", "d.d."); Slovenian puts the client's name
    # last in the sign-in mail's first sentence, English in the middle
    context = {
        "link": "https://idp.test/login/email/verify?token=t",
        "minutes": 15,
        "client_name": "Podpis d.o.o.",
        "ip": "192.0.2.7",
        "requested_at": "2026-12-07 10:00 UTC",
        "branding": {"name": "Banka d.d."},
        "languages": ["sl", "en"],
        "csrf_token": "",
        "current_path": "",
    }
    mail = pages.render("emails/login_link.txt", language=language, **context)
    html = pages.render("emails/login_link.html", language=language, **context)
    assert "Podpis d.o.o." in mail and "d.o.o.." not in mail and "d.o.o..<" not in html
    confirm = render(pages, "email_link_confirm.html", language=language, client_name="Podpis d.o.o.")
    assert "Podpis d.o.o." in confirm and "d.o.o.." not in confirm
    # the same in messages formatted outside templates (mail subjects, SMS)
    subject = pages.gettext(language, SUBJECT_LOGIN_LINK_FOR_CLIENT, client_name="Podpis d.o.o.")
    assert "Podpis d.o.o." in subject and ".." not in subject
    # a sentence whose name has no full stop keeps its own
    plain = render(pages, "email_link_confirm.html", language=language, client_name="Portal")
    assert "Portal." in plain


# --- language switcher endpoint ----------------------------------------------------------------


@pytest.fixture
def client() -> httpx.AsyncClient:
    app = Starlette(routes=[Route("/language", set_language)])
    app.state.pages = all_pages()
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


@pytest.mark.parametrize(("lang", "cookie"), [("sr-Latn", "sr-Latn"), ("sr_latn", "sr-Latn"), ("HR", "hr")])
async def test_set_language_stores_the_tag(client: httpx.AsyncClient, lang: str, cookie: str) -> None:
    async with client:
        response = await client.get("/language", params={"lang": lang, "next": "/login"})
    assert response.status_code == 303
    assert response.headers["set-cookie"].startswith(f"{LANGUAGE_COOKIE}={cookie};")


async def test_set_language_ignores_unsupported_language(client: httpx.AsyncClient) -> None:
    async with client:
        response = await client.get("/language", params={"lang": "de", "next": "/logout"})
    assert response.status_code == 303
    assert response.headers["location"] == "/logout"
    assert "set-cookie" not in response.headers


_TAGS = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.S)
# a sentence's full stop, then at once the next sentence: two translations or two strings joined
# where a template's whitespace control ate the space between them
_GLUED = re.compile(r"\w\w[.!?](?=[A-ZČŠŽĆĐ])")


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_two_sentences_run_together(pages: Pages, language: str) -> None:
    glued = []
    for name, context in [(name, {}) for name in PAGES] + list(VARIANTS):
        text = " ".join(html.unescape(_TAGS.sub(" ", render(pages, name, language, **context))).split())
        glued += [f"{name}: …{text[max(0, m.start() - 30) : m.end() + 30]}…" for m in _GLUED.finditer(text)]
    assert not glued, "\n".join(glued)
