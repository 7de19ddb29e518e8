"""Translated server-rendered pages and mails, language negotiation and the language switcher.

Templates and catalogues live in the top-level ``templates`` package. Catalogues are read from the
``.po`` files at start-up and compiled in memory, so no ``.mo`` build step is needed. English is the
source language: its catalogue may leave every ``msgstr`` empty.

Languages are named by BCP 47 tags (``sl``, ``en``, ``hr``, ``sr-Latn``) everywhere the browser sees
them; a catalogue lives in the folder of its Babel locale id (``templates/locale/sr_Latn``, see
``idp.language_tags``). A new language starts with
``pybabel init -i templates/locale/messages.pot -d templates/locale -l <babel id>``.

Maintainers refresh the catalogues from the repository root with::

    pybabel extract -F babel.cfg -o templates/locale/messages.pot --add-comments=Translators: .
    pybabel update -i templates/locale/messages.pot -d templates/locale
"""

from __future__ import annotations

import functools
import gettext as gettext_module
import io
import re
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from urllib.parse import urlsplit

import jinja2
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from jinja2.nodes import EvalContext
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from idp.language_tags import babel_locale, language_tag

LANGUAGE_COOKIE = "idp_lang"
LANGUAGE_COOKIE_MAX_AGE = 365 * 24 * 3600
SOURCE_LANGUAGE = "en"
PRODUCT_NAME = "eID"
DEFAULT_PRIMARY_COLOR = "#1d4ed8"


def N_(message: str) -> str:  # noqa: N802 - the gettext convention that pybabel extract knows
    """Mark ``message`` for extraction without translating it (translate later with ``Pages.gettext``)."""
    return message


SUBJECT_LOGIN_LINK = N_("Your sign-in link")
SUBJECT_LOGIN_LINK_FOR_CLIENT = N_("Your sign-in link for %(client_name)s")
SUBJECT_PASSWORD_RESET = N_("Reset your password")
SUBJECT_INVITATION = N_("%(name)s invites you to create your eID")
# Translators: an SMS; keep it short (one SMS is 160 GSM-7 or 70 UCS-2 characters)
SMS_LOGIN_CODE = N_("%(code)s is your %(name)s sign-in code. Do not share it with anyone.")
# Translators: an SMS; keep it short
SMS_PHONE_CODE = N_("%(code)s is your %(name)s code to confirm this phone number.")
# Translators: an SMS; keep it short
SMS_RESET_CODE = N_("%(code)s is your %(name)s code to reset your password. Do not share it with anyone.")
# Translators: an SMS; keep it short
SMS_VIDEOID_CODE = N_("%(code)s is your %(name)s video identification code. Do not share it with anyone.")

_ENDONYMS = {
    "sl": "Slovenščina",
    "en": "English",
    "de": "Deutsch",
    "it": "Italiano",
    "hr": "Hrvatski",
    "sr-Latn": "Srpski (latinica)",
    "sr-Cyrl": "Српски (ћирилица)",
    "bs": "Bosanski",
    "hu": "Magyar",
    "fr": "Français",
    "es": "Español",
    "cs": "Čeština",
    "sk": "Slovenčina",
    "pl": "Polski",
    "mk": "Македонски",
}

# Optional page-specific keys; anything else a template uses is required (StrictUndefined).
_PAGE_DEFAULTS: dict[str, dict[str, object]] = {
    "login_email.html": {
        "client_name": None,
        "request_id": None,
        "email": "",
        "error": None,
        "password_error": None,
        "retry_after": None,
        "offer_email_link": True,
        "passkey": None,
        "passkey_error": None,
    },
    "login_password.html": {
        "error": None,
        "retry_after": None,
        "password_error": None,
        "passkey": None,
        "passkey_error": None,
    },
    "login_unavailable.html": {"client_name": None},
    "invite.html": {
        "token": "",
        "invitation": None,
        "tenant_name": "",
        "client_name": None,
        "advanced": False,
        "reason": None,
        "email": "",
    },
    "onboarding.html": {
        "error": None,
        "retry_after": None,
        "attempts_left": None,
        "challenge_id": None,
        "detail": None,
        "phone": None,
        "enrolment": None,
        "codes": None,
        "step_number": 1,
        "step_count": 1,
    },
    "emails/invitation.txt": {"given_name": None},
    "emails/invitation.html": {"given_name": None},
    "login_code.html": {
        "client_name": None,
        "error": None,
        "retry_after": None,
        "attempts_left": None,
        "challenge_id": None,
        "phone": None,
        "recovery_left": 0,
        "detail": None,
    },
    "email_sent.html": {"request_id": None},
    "email_link_confirm.html": {"client_name": None},
    "link_invalid.html": {"request_id": None},
    "logout_confirm.html": {"client_name": None, "hidden": {}, "cancel_url": "/"},
    "logged_out.html": {"client_name": None, "return_url": None},
    "error.html": {"detail": None, "retry_after": None},
    "account.html": {"done": None, "phone": None, "events": [], "verified_on": {}},
    "account_signin.html": {"unknown": False},
    "account_change.html": {
        "error": None,
        "retry_after": None,
        "attempts_left": None,
        "challenge_id": None,
        "to": None,
        "phone_value": "",
        "has_app": False,
        "enrolment": None,
        "codes": None,
        "left": 0,
        "passkeys": [],
        "options_json": "{}",
        "passkey_challenge": "",
    },
    "reset.html": {
        "error": None,
        "retry_after": None,
        "attempts_left": None,
        "challenge_id": None,
        "email": "",
        "request_id": None,
        "token": "",
        "method": None,
        "methods": [],
        "phone": None,
        "minutes": 15,
    },
    "emails/password_reset.txt": {"ip": None, "requested_at": None},
    "emails/password_reset.html": {"ip": None, "requested_at": None},
    "emails/login_link.txt": {"client_name": None, "ip": None, "requested_at": None},
    "emails/login_link.html": {"client_name": None, "ip": None, "requested_at": None},
}

_LANGUAGE_TAG = re.compile(r"^(?:[a-z]{1,8}(?:-[a-z0-9]{1,8})*|\*)$")
_QVALUE = re.compile(r"^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$")
_HEX_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}){1,2}$")
_WHITE = (255, 255, 255)
_BLACK = (0, 0, 0)
_MAX_ACCEPT_LANGUAGE = 1024
_MAX_LANGUAGE_RANGES = 32


def language_names() -> dict[str, str]:
    """Endonyms (each language's name for itself) of the languages the switcher may offer."""
    return dict(_ENDONYMS)


class Pages:
    """Renders translated pages and mails."""

    def __init__(self, *, languages: Sequence[str], default_language: str | None = None) -> None:
        if not languages:
            raise ValueError("languages: expected at least one language code, got none")
        self.languages: tuple[str, ...] = tuple(language_tag(code) for code in languages)
        self.default_language: str = language_tag(default_language) if default_language else self.languages[0]
        if self.default_language not in self.languages:
            raise ValueError(
                f"default_language: expected one of {self.languages}, got {self.default_language!r}"
            )
        self._by_lower = {code.lower(): code for code in self.languages}
        loader = jinja2.PackageLoader("templates", ".")
        self._translations = {code: _load_translations(code) for code in self.languages}
        self._environments = {
            code: _environment(loader, translations) for code, translations in self._translations.items()
        }

    def supported(self, code: str | None) -> str | None:
        """The offered language that ``code`` names (any case, ``-`` or ``_``), or ``None``."""
        if not code:
            return None
        return self._by_lower.get(code.strip().replace("_", "-").lower())

    def negotiate(self, *, cookie: str | None, accept_language: str | None) -> str:
        """Pick the page language: a supported cookie value, else the best Accept-Language match.

        Accept-Language is matched as RFC 4647 section 3.4 lookup over the ranges of RFC 9110
        section 12.5.4 in q-value order (``sl-SI`` and ``hr-HR`` find ``sl`` and ``hr``). Where a
        range, or one of its truncations, names no offered tag exactly, an offered tag it is a prefix
        of matches as in basic filtering (RFC 4647 section 3.3.1): ``sr`` and ``sr-RS`` find
        ``sr-Latn``. Anything unusable gives the default.
        """
        found = self.supported(cookie)
        if found:
            return found
        for tag in _accepted_ranges(accept_language or ""):
            if tag == "*":
                return self.default_language
            parts = tag.split("-")
            while parts:
                prefix = "-".join(parts)
                found = self._by_lower.get(prefix) or next(
                    (code for lower, code in self._by_lower.items() if lower.startswith(prefix + "-")), None
                )
                if found:
                    return found
                parts.pop()
        return self.default_language

    def render(self, name: str, *, language: str, **context: object) -> str:
        """Render template ``name`` in ``language`` (the default one if unsupported).

        The common keys ``languages``, ``csrf_token``, ``current_path`` and ``branding`` are filled in
        when missing; ``branding`` is cleaned (a bad colour or logo URL is dropped).
        """
        language = self.supported(language) or self.default_language
        values: dict[str, object] = {**_PAGE_DEFAULTS.get(name, {}), **context}
        values["language"] = language
        values.setdefault("languages", list(self.languages))
        values.setdefault("csrf_token", "")
        values.setdefault("current_path", "/")
        branding = clean_branding(values.get("branding"))
        values["branding"] = branding
        values["brand_style"] = brand_style(branding["primary_color"])
        values["brand_colors"] = brand_colors(branding["primary_color"])
        return self._environments[language].get_template(name).render(values)

    def gettext(self, language: str, message: str, **variables: object) -> str:
        """Translate ``message`` (e.g. a mail subject) and fill in ``%(name)s`` placeholders."""
        translations = self._translations[self.supported(language) or self.default_language]
        return translations.gettext(message) % variables


async def set_language(request: Request) -> Response:
    """``GET /language?lang=sr-Latn&next=/login``: remember the language in a cookie and go back.

    Only a same-site relative ``next`` is followed (no open redirect); an unsupported ``lang``
    redirects without touching the cookie. The cookie holds the canonical BCP 47 tag.
    """
    pages: Pages = request.app.state.pages
    lang = pages.supported(request.query_params.get("lang", "")[:64])
    response = RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    if lang:
        response.set_cookie(
            LANGUAGE_COOKIE,
            lang,
            max_age=LANGUAGE_COOKIE_MAX_AGE,
            path="/",
            secure=True,
            httponly=True,
            samesite="lax",
        )
    return response


def safe_next(value: str | None) -> str:
    """Return ``value`` if it is a path on this site (``/…``, not ``//…``), else ``/``."""
    if not value or len(value) > 2048 or not value.startswith("/") or value.startswith("//"):
        return "/"
    # Browsers strip tabs and newlines and read "\" as "/", so "/\t/evil" or "/\evil" leave the site.
    if "\\" in value or any(ord(char) < 0x21 or ord(char) == 0x7F for char in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def _text(value: object, limit: int) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    text = " ".join(value.split())
    return text[:limit] if text.isprintable() else None


def clean_branding(raw: object) -> dict[str, str | None]:
    """Keep the tenant's ``name``, ``logo_url`` (http(s) or a site path), ``#rgb``/``#rrggbb``
    colour, the paragraph its invitation mails carry (``invitation_text``) and the name its SMS
    give (``sms_name``, short: it counts against one SMS)."""
    source: Mapping[object, object] = raw if isinstance(raw, Mapping) else {}
    name = source.get("name")
    logo_url = source.get("logo_url")
    color = source.get("primary_color")
    return {
        "name": name.strip() if isinstance(name, str) and name.strip() else PRODUCT_NAME,
        "logo_url": logo_url if isinstance(logo_url, str) and _is_safe_url(logo_url) else None,
        "primary_color": color.lower() if isinstance(color, str) and _HEX_COLOR.match(color) else None,
        "invitation_text": _text(source.get("invitation_text"), 600),
        "sms_name": _text(source.get("sms_name"), 20),
    }


def sms_name(branding: object, fallback: str) -> str:
    """The name an SMS of this tenant signs with."""
    cleaned = clean_branding(branding)
    return cleaned["sms_name"] or (cleaned["name"] if cleaned["name"] != PRODUCT_NAME else None) or fallback


def brand_colors(primary_color: str | None) -> dict[str, str]:
    """The tenant colour (or the default) with text colours that keep WCAG AA contrast.

    ``on_primary`` is the text on a ``primary`` background; ``accent`` is ``primary`` darkened until
    it reads as text (links, focus rings) on white at 4.5:1 or more.
    """
    color = primary_color if primary_color and _HEX_COLOR.match(primary_color) else DEFAULT_PRIMARY_COLOR
    primary, on_primary, accent = _colors(color)
    return {"primary": primary, "on_primary": on_primary, "accent": accent}


@functools.lru_cache(maxsize=1024)
def _colors(color: str) -> tuple[str, str, str]:
    # a pure function of the colour, computed for every page otherwise: a few tenant colours
    rgb = _rgb(color)
    on_primary = "#ffffff" if _contrast(rgb, _WHITE) >= _contrast(rgb, _BLACK) else "#000000"
    accent = rgb
    while _contrast(accent, _WHITE) < 4.5:
        accent = (accent[0] * 85 // 100, accent[1] * 85 // 100, accent[2] * 85 // 100)
    return _hex(rgb), on_primary, _hex(accent)


def brand_style(primary_color: str | None) -> str:
    """The ``style`` attribute value that overrides the stylesheet's colours, or ``""`` for the default."""
    if primary_color is None or not _HEX_COLOR.match(primary_color):
        return ""
    colors = brand_colors(primary_color)
    return (
        f"--primary: {colors['primary']}; --on-primary: {colors['on_primary']}; --accent: {colors['accent']};"
    )


def _safe_url(value: object, fallback: str = "/") -> str:
    return value if isinstance(value, str) and _is_safe_url(value) else fallback


def _is_safe_url(value: str) -> bool:
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in value) or "\\" in value:
        return False
    if value.startswith("/"):
        return not value.startswith("//")
    parts = urlsplit(value)
    return parts.scheme in {"https", "http"} and bool(parts.netloc)


def _rgb(color: str) -> tuple[int, int, int]:
    digits = color[1:] if len(color) == 7 else "".join(char * 2 for char in color[1:])
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _contrast(first: tuple[int, int, int], second: tuple[int, int, int]) -> float:
    """WCAG 2.2 contrast ratio (https://www.w3.org/TR/WCAG22/#dfn-contrast-ratio)."""

    def luminance(rgb: tuple[int, int, int]) -> float:
        linear = [c / 255 / 12.92 if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def _accepted_ranges(header: str) -> list[str]:
    """Language ranges of an Accept-Language value, best first; q=0 and malformed items dropped."""
    ranked: list[tuple[float, int, str]] = []
    for index, item in enumerate(header[:_MAX_ACCEPT_LANGUAGE].split(",")[:_MAX_LANGUAGE_RANGES]):
        tag, _, params = item.partition(";")
        tag = tag.strip().lower()
        if not _LANGUAGE_TAG.match(tag):
            continue
        quality = 1.0
        for param in params.split(";") if params else ():
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                quality = float(value.strip()) if _QVALUE.match(value.strip()) else 0.0
        if quality > 0:
            ranked.append((-quality, index, tag))
    return [tag for _, _, tag in sorted(ranked)]


def _load_translations(language: str) -> gettext_module.NullTranslations:
    locale = babel_locale(language)
    path = resources.files("templates").joinpath("locale", locale, "LC_MESSAGES", "messages.po")
    if not path.is_file():
        if language == SOURCE_LANGUAGE:
            return gettext_module.NullTranslations()
        raise ValueError(
            f"language {language!r}: expected a catalogue at templates/locale/{locale}/…/messages.po"
        )
    with path.open("rb") as po_file:
        catalog = read_po(po_file, locale=locale)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)  # leaves out fuzzy and untranslated entries, like msgfmt
    compiled.seek(0)
    return gettext_module.GNUTranslations(compiled)


def _environment(
    loader: jinja2.BaseLoader, translations: gettext_module.NullTranslations
) -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=loader,
        autoescape=jinja2.select_autoescape(("html", "xml"), disabled_extensions=("txt",), default=True),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    environment.policies["ext.i18n.trimmed"] = True
    environment.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    environment.globals["gettext"] = _page_gettext(translations)
    environment.globals["language_names"] = language_names()
    environment.filters["safe_url"] = _safe_url
    return environment


_MAX_REMEMBERED = 4096


def _page_gettext(translations: gettext_module.NullTranslations) -> Callable[..., str]:
    """jinja2.ext's new-style ``gettext`` with the same results, remembering those of messages
    without variables: a page asks for a dozen of them each time, and a catalogue does not change
    while the process runs. (A bounded memory: templates may translate a variable's value.)"""
    translate = translations.gettext
    remembered: dict[tuple[str, bool], str] = {}

    @jinja2.pass_eval_context
    def gettext(eval_ctx: EvalContext, string: str, /, **variables: object) -> str:
        if not variables:
            key = (string, eval_ctx.autoescape)
            found = remembered.get(key)
            if found is not None:
                return found
        translated = translate(string)
        # always a format string, as in jinja2.ext: "%%" is "%" and a Markup escapes the variables
        result: str = (Markup(translated) if eval_ctx.autoescape else translated) % variables
        if not variables and len(remembered) < _MAX_REMEMBERED:
            remembered[key] = result
        return result

    return gettext
