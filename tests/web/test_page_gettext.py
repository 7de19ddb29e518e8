"""The gettext pages call (``idp/web/page_gettext.py``): the same pages as jinja2.ext's gettext,
but for the no-break space that keeps a one-letter word off the end of a line."""

from __future__ import annotations

import re

import pytest

from idp.web.i18n import SMS_LOGIN_CODE, SUBJECT_LOGIN_LINK_FOR_CLIENT
from idp.web.page_gettext import NO_BREAK_SPACE, glue_one_letter_words
from tests.support.pages import LANGUAGES, PAGES, VARIANTS, all_pages, as_read, render


def test_pages_translate_as_jinja2s_own_gettext() -> None:
    # Pages remembers the translations of messages without variables; every page and variant in
    # every language renders as with jinja2.ext's gettext, the second time too (from memory)
    pages, jinja_pages = all_pages(), all_pages()
    for environment, translations in zip(
        jinja_pages._environments.values(), jinja_pages._translations.values(), strict=True
    ):
        environment.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    contexts = [(name, {}) for name in PAGES] + list(VARIANTS)
    for language in LANGUAGES:
        for name, context in contexts:
            expected = render(jinja_pages, name, language, **context)
            assert as_read(render(pages, name, language, **context)) == expected, (language, name)
            assert as_read(render(pages, name, language, **context)) == expected, (language, name)


@pytest.mark.parametrize(
    ("text", "glued"),
    [
        ("Prijava v storitev", "Prijava v~storitev"),
        ("z geslom in s kodo", "z~geslom in s~kodo"),
        ("(v redu) in „k njej“", "(v~redu) in „k~njej“"),
        ("Slažem se i nastavljam", "Slažem se i~nastavljam"),
        ("Koda velja 5 minut.", "Koda velja 5 minut."),  # a digit is not a word
        ("na koncu v", "na koncu v"),  # nothing after it to keep it with
        ('<strong class="a b">v času</strong> a', '<strong class="a b">v~času</strong> a'),
    ],
)
def test_one_letter_words_are_glued_to_the_next(text: str, glued: str) -> None:
    assert glue_one_letter_words(text) == glued.replace("~", NO_BREAK_SPACE)


def test_only_the_pages_of_languages_that_ask_for_it_are_glued() -> None:
    pages = all_pages()
    slovenian = render(pages, "error.html", "sl", status=400, title_key="csrf")
    assert re.search(rf"\b[vzskoai]{NO_BREAK_SPACE}\w", slovenian)
    assert NO_BREAK_SPACE not in render(pages, "error.html", "en", status=400, title_key="csrf")
    # a plain-text mail and an SMS stay as they are: a no-break space would make an SMS UCS-2
    mail = render(pages, "emails/login_link.txt", "sl")
    assert NO_BREAK_SPACE not in mail
    assert " odprite to povezavo v " in mail
    assert NO_BREAK_SPACE not in pages.gettext("sl", SMS_LOGIN_CODE, code="123456", name="Acme")
    subject = pages.gettext("sl", SUBJECT_LOGIN_LINK_FOR_CLIENT, client_name="Portal")
    assert subject == "Vaša povezava za prijavo v storitev Portal"
