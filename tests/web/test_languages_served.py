"""The four page languages through the served app: negotiation, the switcher, discovery, mail."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from typing import Any

from idp import invitations
from idp.web.i18n import LANGUAGE_COOKIE
from idp.web.invitation_mail import send_invitation
from tests.support.server import ServedApp

INDEX = {
    "sl": "ponudnik identitete za elektronsko podpisovanje",
    "en": "identity provider for electronic signing",
    "hr": "pružatelj identiteta za elektroničko potpisivanje",
    "sr-Latn": "provajder identiteta za elektronsko potpisivanje",
}


def test_accept_language_picks_the_page_language(served: ServedApp) -> None:
    cases = [
        ("sr-Latn-RS,sr;q=0.9,en;q=0.5", "sr-Latn"),
        ("sr", "sr-Latn"),
        ("hr-HR,hr;q=0.9", "hr"),
        ("en-GB", "en"),
        ("bs-BA", "sl"),
        (None, "sl"),
    ]
    with served.client() as browser:
        for header, language in cases:
            page = browser.get("/", headers={"Accept-Language": header} if header else {})
            assert page.status_code == 200
            assert f'<html lang="{language}">' in page.text, header
            assert INDEX[language] in page.text, header
            assert page.text.count("<option ") == 4


def test_the_switcher_remembers_serbian(served: ServedApp) -> None:
    with served.client(headers={"Accept-Language": "en"}) as browser:
        response = browser.get("/language", params={"lang": "sr_Latn", "next": "/"})
        assert response.status_code == 303 and response.headers["location"] == "/"
        assert browser.cookies.get(LANGUAGE_COOKIE) == "sr-Latn"
        page = browser.get("/")
        assert '<html lang="sr-Latn">' in page.text
        assert '<option value="sr-Latn" lang="sr-Latn" selected>Srpski (latinica)</option>' in page.text


def test_discovery_lists_the_languages_as_bcp47_tags(served: ServedApp) -> None:
    with served.client() as client:
        metadata = client.get("/.well-known/openid-configuration").json()
    assert metadata["ui_locales_supported"] == ["sl", "en", "hr", "sr-Latn"]


def test_invitation_mail_in_the_invitees_language(served: ServedApp) -> None:
    tenant = served.tenant(branding={"name": "Acme"})
    for number, (stored, subject) in enumerate(
        [
            ("sr", "Acme vas poziva da napravite svoj eID"),
            ("sr_Latn", "Acme vas poziva da napravite svoj eID"),
            ("hr-HR", "Acme vas poziva da izradite svoj eID"),
            ("bs", "Acme vas vabi, da ustvarite svoj eID"),
        ]
    ):
        address = f"person{number}@example.com"

        def unit(tx: Any, address: str = address, stored: str = stored) -> tuple[invitations.Invitation, str]:
            return invitations.create(
                tx,
                tenant_id=tenant.id,
                email=address,
                acr="urn:eid:loa:basic",
                ttl=3 * 86400,
                language=stored,
            )

        invitation, token = served.write(unit)
        state = served.state
        served.run(
            send_invitation(
                settings=state.settings,
                pages=state.pages,
                mailer=state.mailer,
                invitation=invitation,
                token=token,
                tenant=tenant,
            )
        )
        mail = _mail_to(served, address)
        assert mail["Subject"] == subject, stored
        text = mail.get_body(("plain",))
        assert text is not None
        assert ("3 dana" in text.get_content()) == stored.startswith(("sr", "hr")), stored


def _mail_to(served: ServedApp, address: str) -> EmailMessage:
    for path in served.outbox.glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        if message["To"] == address:
            return message
    raise AssertionError(f"no mail to {address}")
