"""An independent relying party: plain httpx and joserfc, nothing from the provider's code.

It follows what a browser does during an email-link login (forms, the mail, the link) and what
an RP backend does afterwards (code exchange with PKCE, ID token verification against the JWKS
named by discovery).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support.server import ServedApp


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def form_value(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    if match is None:
        raise AssertionError(f"no form field {name!r} in page")
    return match.group(1)


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@dataclass
class RelyingParty:
    served: ServedApp
    client_id: str
    client_secret: str | None
    redirect_uri: str
    browser: httpx.Client = field(init=False)
    backend: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.browser = self.served.client()
        self.backend = self.served.client()

    def close(self) -> None:
        self.browser.close()
        self.backend.close()

    def authorize_params(self, **extra: str) -> tuple[dict[str, str], str]:
        verifier, challenge = pkce_pair()
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": "openid profile email",
            "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        params.update(extra)
        return params, verifier

    def start(self, params: dict[str, str]) -> httpx.Response:
        return self.browser.get("/authorize", params=params)

    def email_login(self, params: dict[str, str], email: str) -> dict[str, str]:
        """From /authorize to the redirect back to the RP; returns the callback's query."""
        response = self.start(params)
        assert response.status_code == 303, response.text
        login = self.browser.get(response.headers["location"])
        assert login.status_code == 200, login.text
        before = len(self.served.mails())
        sent = self.browser.post(
            "/login/email",
            data={
                "csrf_token": form_value(login.text, "csrf_token"),
                "request_id": form_value(login.text, "request_id"),
                "email": email,
            },
            follow_redirects=True,  # POST, then 303 to the "check your email" page
        )
        assert sent.status_code == 200, sent.text
        link = self.link_from_mail(email, after=before)
        resume = self.open_link(link)
        assert resume.status_code == 303, resume.text
        back = self.browser.get(resume.headers["location"])
        assert back.status_code == 302, back.text
        location = back.headers["location"]
        assert location.startswith(self.redirect_uri), location
        return query_of(location)

    def link_from_mail(self, email: str, *, after: int = 0) -> str:
        mail = self.served.wait_for_mail(email, after=after)
        body = mail.get_body(("plain",))
        assert body is not None
        match = re.search(r"https://\S+/login/email/verify\?token=\S+", body.get_content())
        assert match, "no sign-in link in the mail"
        return match.group(0)

    def open_link(self, link: str) -> httpx.Response:
        page = self.browser.get(link)
        assert page.status_code == 200, page.text
        return self.browser.post(
            "/login/email/verify",
            data={"csrf_token": form_value(page.text, "csrf_token"), "token": form_value(page.text, "token")},
        )

    def token(self, **data: str) -> httpx.Response:
        auth = (self.client_id, self.client_secret) if self.client_secret else None
        if auth is None:
            data.setdefault("client_id", self.client_id)
        return self.backend.post("/token", data=data, auth=auth)

    def exchange(self, code: str, verifier: str) -> httpx.Response:
        return self.token(
            grant_type="authorization_code", code=code, redirect_uri=self.redirect_uri, code_verifier=verifier
        )

    def verify_id_token(self, id_token: str, *, nonce: str | None) -> dict[str, Any]:
        """OIDC Core §3.1.3.7, as an RP does it: keys from discovery's jwks_uri, then the claims."""
        discovery = self.backend.get("/.well-known/openid-configuration").json()
        assert discovery["issuer"] == self.served.issuer
        jwks = httpx.get(discovery["jwks_uri"], verify=self.served.ssl_context()).json()
        token = jwt.decode(id_token, KeySet.import_key_set(jwks), algorithms=["RS256", "ES256"])
        claims = dict(token.claims)
        assert claims["iss"] == self.served.issuer
        aud = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        assert self.client_id in aud
        assert claims["exp"] > time.time() - 5
        if nonce is not None:
            assert claims.get("nonce") == nonce
        return claims
