"""Step-up driven by a resource server (RFC 9470), with ``examples/resource_server.py``."""

from __future__ import annotations

import re
import time

import httpx

from examples.resource_server import build
from otp import totp
from tests.oidc.conftest import Party, PartyFactory, redirect_query
from tests.oidc.test_advanced_login import SECRET, advanced_party, follow, post_form


def _resource_server(p: Party) -> httpx.Client:
    def introspect(token: str) -> dict[str, object]:
        answer: dict[str, object] = p.introspect(token).json()
        return answer

    return httpx.Client(transport=_asgi(build(introspect)), base_url="https://rs.example")


def _asgi(app: object) -> httpx.BaseTransport:
    """The ASGI app behind a synchronous client, on a loop of its own."""
    import asyncio

    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]

    class Sync(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            async def call() -> httpx.Response:
                response = await transport.handle_async_request(request)
                body = await response.aread()
                return httpx.Response(response.status_code, headers=response.headers, content=body)

            return asyncio.run(call())

    return Sync()


def test_a_resource_server_asks_for_step_up_and_the_client_gets_it(party: PartyFactory) -> None:
    p, app_secret = advanced_party(party)
    assert app_secret is not None
    rs = _resource_server(p)
    basic = p.tokens()  # the person signed in with an email link: basic
    refused = rs.get("/documents/7/sign", headers={"Authorization": f"Bearer {basic['access_token']}"})
    assert refused.status_code == 401
    challenge = refused.headers["WWW-Authenticate"]
    assert 'error="insufficient_user_authentication"' in challenge
    acr_values = re.search(r'acr_values="([^"]+)"', challenge)
    max_age = re.search(r'max_age="(\d+)"', challenge)
    assert acr_values and max_age

    # the client sends the person back with what the resource server asked for
    params, verifier = p.rp.authorize_params(acr_values=acr_values.group(1), max_age=max_age.group(1))
    started = p.rp.start(params)
    page = p.rp.browser.get(started.headers["location"])
    assert "Enter your password" in page.text  # known from the session: only the missing factors
    code_page = follow(p, post_form(p, page, "/login/password", password=SECRET))
    done = post_form(
        p, code_page, "/login/code", method="totp", code=totp.code_at(secret=app_secret, for_time=time.time())
    )
    code = redirect_query(done, p.rp.redirect_uri)["code"]
    stepped_up = p.rp.exchange(code, verifier).json()

    signed = rs.get("/documents/7/sign", headers={"Authorization": f"Bearer {stepped_up['access_token']}"})
    assert signed.status_code == 200, signed.text
    assert signed.json()["document"] == "7"
