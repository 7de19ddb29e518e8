"""What the account page (templates/account.html) shows a person, in words they read."""

from __future__ import annotations

import html
import re

import pytest

from idp.web.account_routes import event_label
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


@pytest.mark.parametrize(
    ("language", "email", "phone", "created"),
    [
        (
            "en",
            "Details confirmed or changed: Email address",
            "Details confirmed or changed: Mobile number",
            "eID created",
        ),
        (
            "sl",
            "Podatki potrjeni ali spremenjeni: E-poštni naslov",
            "Podatki potrjeni ali spremenjeni: Številka mobilnega telefona",
            "eID ustvarjen",
        ),
    ],
)
def test_each_detail_confirmed_is_named(
    pages: Pages, language: str, email: str, phone: str, created: str
) -> None:
    """An invitation to an eID that signs in by email link alone confirms its address and its
    number, one event each: the list said 'Details confirmed or changed' twice over."""
    events = [
        (
            {
                "occurred_at": "2026-01-02T03:04:05Z",
                "event_type": event_type,
                "client_ip": None,
                "success": True,
                "details": {"attributes": [name]},
            },
            event_label(event_type),
        )
        for event_type, name in (
            ("eid.attributes_verified", "email"),
            ("eid.attributes_verified", "phone_number"),
            ("eid.created", "email"),  # the attributes it was made with are not a detail changed
        )
    ]
    text = visible_text(render(pages, "account.html", language, events=events))
    assert f"{email} " in text and f"{phone} " in text
    assert f"{created} " in text and f"{created}:" not in text


def test_a_notice_by_sms_that_failed_says_so() -> None:
    """A failed text to a replaced number is not a failed mail: the person looks in different places."""
    failed = "security_notice.delivery_failed"
    assert event_label(failed, {"channel": "sms"}) == "Security notice by SMS could not be delivered"
    assert event_label(failed, {"notice": "phone_changed"}) == "Security notice could not be delivered"
    assert event_label(failed) == "Security notice could not be delivered"
