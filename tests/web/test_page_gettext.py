"""The remembered translations (``idp/web/page_gettext.py``): the same pages as jinja2.ext's gettext."""

from __future__ import annotations

from tests.support.pages import LANGUAGES, PAGES, VARIANTS, all_pages, render


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
            assert render(pages, name, language, **context) == expected, (language, name)
            assert render(pages, name, language, **context) == expected, (language, name)
