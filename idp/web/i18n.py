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

import gettext as gettext_module
import io
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import resources

import jinja2
from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from idp.language_tags import babel_locale, language_tag
from idp.web.branding import brand_colors, brand_style, clean_branding
from idp.web.page_gettext import one_full_stop, page_gettext, page_ngettext
from idp.web.safe_urls import safe_next, safe_url

LANGUAGE_COOKIE = "idp_lang"
LANGUAGE_COOKIE_MAX_AGE = 365 * 24 * 3600
SOURCE_LANGUAGE = "en"
# languages whose typography keeps a one-letter word off the end of a line (idp.web.page_gettext)
ONE_LETTER_WORDS_GLUED = frozenset({"sl", "hr", "sr", "bs", "cs", "sk", "pl"})


def utc_minute(at: float | None = None) -> str:
    """A moment as pages and messages write it when they cannot know the reader's time zone."""
    moment = datetime.now(UTC) if at is None else datetime.fromtimestamp(at, UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def N_(message: str) -> str:  # noqa: N802 - the gettext convention that pybabel extract knows
    """Mark ``message`` for extraction without translating it (translate later with ``Pages.gettext``)."""
    return message


SUBJECT_LOGIN_LINK = N_("Your sign-in link")
SUBJECT_LOGIN_LINK_FOR_CLIENT = N_("Your sign-in link for %(client_name)s")
SUBJECT_PASSWORD_RESET = N_("Reset your password")
SUBJECT_INVITATION = N_("%(name)s invites you to create your eID")
SUBJECT_INVITATION_EXISTING = N_("%(name)s invites you to use your eID")
# Translators: an SMS; keep it short (one SMS is 160 GSM-7 or 70 UCS-2 characters)
SMS_LOGIN_CODE = N_("%(code)s is your %(name)s sign-in code. Do not share it with anyone.")
# Translators: an SMS; keep it short
SMS_PHONE_CODE = N_("%(code)s is your %(name)s code to confirm this phone number.")
# Translators: an SMS; keep it short
SMS_RESET_CODE = N_("%(code)s is your %(name)s code to reset your password. Do not share it with anyone.")
# Translators: an SMS; keep it short
SMS_VIDEOID_CODE = N_("%(code)s is your %(name)s video identification code. Do not share it with anyone.")
# Translators: an SMS to the mobile number that was just replaced (a security notice). %(name)s
# has at most 20 characters and %(when)s is like "2025-01-31 10:15 UTC": keep it within 160
# characters. Letters such as č, š, ž, ć, đ are fine but make it a UCS-2 SMS (70 characters a
# part); avoid them only where another spelling is natural.
SMS_PHONE_CHANGED = N_(
    "The mobile number of your %(name)s eID was changed on %(when)s. "
    "Not you? Block the eID on your account page and tell your administrator."
)

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
        "account_change": False,
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
        "proves_password": False,
        "reason": None,
        "email": "",
        "account_path": None,
    },
    "onboarding.html": {
        "replaced": False,
        "error": None,
        "retry_after": None,
        "attempts_left": None,
        "challenge_id": None,
        "detail": None,
        "phone": None,
        "enrolment": None,
        "codes": None,
        "codes_for": "",
        "codes_made": "",
        "recovery_set": "",
        "step_number": 1,
        "step_count": 1,
    },
    "emails/invitation.txt": {"given_name": None, "existing": False},
    "emails/invitation.html": {"given_name": None, "existing": False},
    "login_code.html": {
        "account_change": False,
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
    "account.html": {"done": None, "phone": None, "events": []},
    "account_signin.html": {"unknown": False},
    "account_change.html": {
        "resend_phone": None,
        "replaced": False,
        "error": None,
        "retry_after": None,
        "attempts_left": None,
        "challenge_id": None,
        "to": None,
        "phone_value": "",
        "has_app": False,
        "enrolment": None,
        "codes": None,
        "codes_for": "",
        "codes_made": "",
        "recovery_set": "",
        "left": 0,
        "passkeys": [],
        "options_json": "{}",
        "passkey_challenge": "",
        "passkey": None,
        "added_on": None,
        "last_used_on": None,
        "only_way": False,
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
        "has_password": True,
        "sign_in_url": None,
    },
    "emails/security_notice.txt": {"ip": None, "phone": None, "passkey": None},
    "emails/security_notice.html": {"ip": None, "phone": None, "passkey": None},
    "emails/password_reset.txt": {"ip": None, "requested_at": None},
    "emails/password_reset.html": {"ip": None, "requested_at": None},
    "emails/login_link.txt": {"client_name": None, "ip": None, "requested_at": None},
    "emails/login_link.html": {"client_name": None, "ip": None, "requested_at": None},
}

_LANGUAGE_TAG = re.compile(r"^(?:[a-z]{1,8}(?:-[a-z0-9]{1,8})*|\*)$")
_QVALUE = re.compile(r"^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$")
_MAX_ACCEPT_LANGUAGE = 1024
_MAX_LANGUAGE_RANGES = 32


def utc_instant(value: object) -> datetime | None:
    """A template filter: a moment as an aware UTC datetime to the whole second, for the ``<time>``
    of ``templates/_moment.html``, which ``static/local-time.js`` shows in the reader's time zone.
    ``value`` is an ISO 8601 text (the audit trail's ``2026-11-22T07:44:26.123456Z``; one without
    an offset is UTC, as the trail and the database keep every moment) or a POSIX timestamp (an
    attribute's ``verified_at``). ``None`` for anything else: the page shows that as it is."""
    moment: datetime
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        except (OverflowError, ValueError):
            return None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            moment = datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    else:
        return None
    # HTML's datetime attribute takes at most three digits of a second; the page shows minutes
    return moment.replace(microsecond=0)


def country_name_filter(language: str) -> Callable[[object], str]:
    """A template filter: an ISO 3166-1 alpha-2 code as ``language`` names the country (CLDR,
    through Babel: ``SI`` → "Slovenija" in Slovenian); anything else as it is."""
    territories: Mapping[str, str]
    try:
        territories = Locale.parse(babel_locale(language)).territories
    except (UnknownLocaleError, ValueError):  # a language CLDR does not know: the codes as they are
        territories = {}

    def country_name(code: object) -> str:
        text = str(code)
        return str(territories.get(text.upper(), text)) if len(text) == 2 and text.isalpha() else text

    return country_name


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
            code: _environment(loader, translations, language=code)
            for code, translations in self._translations.items()
        }

    def supported(self, code: str | None) -> str | None:
        """The offered language that ``code`` names (any case, ``-`` or ``_``), or ``None``."""
        if not code:
            return None
        return self._by_lower.get(code.strip().replace("_", "-").lower())

    def negotiate(
        self, *, cookie: str | None, accept_language: str | None, ui_locales: str | None = None
    ) -> str:
        """Pick the page language: a supported cookie value (the person's own choice), else the
        first match of a relying app's OIDC ``ui_locales`` (OIDC Core §3.1.2.1: BCP 47 tags,
        space-separated, in order of preference), else the best Accept-Language match.

        Accept-Language is matched as RFC 4647 section 3.4 lookup over the ranges of RFC 9110
        section 12.5.4 in q-value order (``sl-SI`` and ``hr-HR`` find ``sl`` and ``hr``). Where a
        range, or one of its truncations, names no offered tag exactly, an offered tag it is a prefix
        of matches as in basic filtering (RFC 4647 section 3.3.1): ``sr`` and ``sr-RS`` find
        ``sr-Latn``. Anything unusable gives the default.
        """
        found = self.supported(cookie)
        if found:
            return found
        for tag in _hinted_tags(ui_locales or ""):
            found = self._lookup(tag)
            if found:
                return found
        for tag in _accepted_ranges(accept_language or ""):
            if tag == "*":
                return self.default_language
            found = self._lookup(tag)
            if found:
                return found
        return self.default_language

    def _lookup(self, tag: str) -> str | None:
        """The offered language for a lower-case tag or range, by lookup then prefix (above)."""
        parts = tag.split("-")
        while parts:
            prefix = "-".join(parts)
            found = self._by_lower.get(prefix) or next(
                (code for lower, code in self._by_lower.items() if lower.startswith(prefix + "-")), None
            )
            if found:
                return found
            parts.pop()
        return None

    def render(self, name: str, *, language: str, **context: object) -> str:
        """Render template ``name`` in ``language`` (the default one if unsupported).

        The common keys ``languages``, ``csrf_token``, ``current_path`` and ``branding`` are filled in
        when missing; ``branding`` is cleaned (:mod:`idp.web.branding`: a bad colour or logo URL is
        dropped).
        """
        language = self.supported(language) or self.default_language
        values: dict[str, object] = {**_PAGE_DEFAULTS.get(name, {}), **context}
        values["language"] = language
        values.setdefault("languages", list(self.languages))
        values.setdefault("csrf_token", "")
        values.setdefault("current_path", "/")
        values.setdefault("replace_url", None)
        branding = clean_branding(values.get("branding"))
        values["branding"] = branding
        values["brand_style"] = brand_style(branding["primary_color"])
        values["brand_colors"] = brand_colors(branding["primary_color"])
        return self._environments[language].get_template(name).render(values)

    def gettext(self, language: str, message: str, **variables: object) -> str:
        """Translate ``message`` (e.g. a mail subject) and fill in ``%(name)s`` placeholders."""
        translations = self._translations[self.supported(language) or self.default_language]
        return one_full_stop(translations.gettext(message), variables) % variables


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


def _hinted_tags(value: str) -> list[str]:
    """The tags of a ``ui_locales`` value, in its order; malformed ones and ``*`` dropped."""
    tags = value[:_MAX_ACCEPT_LANGUAGE].lower().split()[:_MAX_LANGUAGE_RANGES]
    return [tag for tag in tags if tag != "*" and _LANGUAGE_TAG.match(tag)]


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
    loader: jinja2.BaseLoader, translations: gettext_module.NullTranslations, *, language: str
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
    glue = language.partition("-")[0] in ONE_LETTER_WORDS_GLUED
    environment.globals["gettext"] = page_gettext(translations, glue=glue)
    environment.globals["ngettext"] = page_ngettext(translations, glue=glue)
    environment.globals["language_names"] = language_names()
    environment.filters["safe_url"] = safe_url
    environment.filters["country_name"] = country_name_filter(language)
    environment.filters["utc_instant"] = utc_instant
    return environment
