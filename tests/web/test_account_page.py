"""What the account page (templates/account.html) shows a person, in words they read."""

from __future__ import annotations

import html
import re

import pytest

from idp.web.i18n import Pages
from tests.support.pages import PAGES, all_pages, render


@pytest.fixture(scope="module")
def pages() -> Pages:
    return all_pages()


def visible_text(page: str) -> str:
    """The page's text as a person reads it: no tags, whitespace collapsed as a browser does."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", body)))


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "2 passkeys: Laptop, Phone ·"),
        ("sl", "2 ključa za dostop: Laptop, Phone ·"),
        ("hr", "2 pristupna ključa: Laptop, Phone ·"),
    ],
)
def test_the_passkeys_names_are_apart_from_their_count(pages: Pages, language: str, expected: str) -> None:
    """The names ran into the count: '1 passkey(Laptop)', in Slovenian and Croatian
    '1 ključ za dostop (passkey)(Laptop)'."""
    enrolled = dict(PAGES["account.html"][0]["enrolled"])  # type: ignore[call-overload]
    assert [p["name"] for p in enrolled["passkeys"]] == ["Laptop", "Phone"]
    assert expected in visible_text(render(pages, "account.html", language))
