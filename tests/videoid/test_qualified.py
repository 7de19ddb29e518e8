"""The qualified level: a relying app asks for it, the person signs in at the advanced level, is
offered video identification, is proofed, and the app receives acr qualified and verified_claims."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx

from oidc.verified_claims import TRUST_FRAMEWORK
from otp import totp
from tests.oidc.conftest import parties, redirect_query
from tests.oidc.test_advanced_login import PHONE, enrol, follow, password_step, post_form, start
from tests.support.server import ServedApp
from tests.support.videoid_client import identify, last_sms, start_session
from tests.support.webcam import Performer

QUALIFIED, HIGH = "urn:eid:loa:qualified", "http://eidas.europa.eu/LoA/high"
SCOPES = ["openid", "profile", "email", "phone", "verified_claims"]


async def test_a_proofed_eid_reaches_the_qualified_level(videoid_app: ServedApp, performer_dir: Path) -> None:
    with parties(videoid_app) as make:
        p = make(
            scopes=SCOPES, attributes={"phone_number": PHONE, "given_name": "Ana", "family_name": "Novak"}
        )
        assert p.eid is not None
        secret = enrol(videoid_app, p.eid)
        assert secret is not None
        page, params, verifier = start(p, acr_values=HIGH, scope=" ".join(SCOPES))
        code_page = password_step(p, page)
        code = totp.code_at(secret=secret, for_time=time.time())
        offer = follow(p, post_form(p, code_page, "/login/code", method="totp", code=code))
        # advanced is reached, qualified needs the identity proofed: video identification is offered
        assert offer.status_code == 200 and "Start video identification" in offer.text, offer.text[:2000]
        request_id = redirect_id(offer.text)
        assert f"/videoid/start?request_id={request_id}" in offer.text

        async with httpx.AsyncClient(
            base_url=videoid_app.issuer,
            verify=videoid_app.ssl_context(),
            cookies=p.rp.browser.cookies,
            headers={"Accept-Language": "sl"},
        ) as browser:
            session_id, csrf = await start_session(browser, request_id=request_id)
            run = await identify(
                videoid_app, browser, Performer(performer_dir), session_id=session_id, csrf=csrf
            )
            assert run.final["status"] == "approved", run.final
            result = await browser.get(run.final["result_url"])
        # this browser asks for Slovenian: the result page and the code's SMS are in Slovenian
        assert "Vaša identiteta je potrjena" in result.text
        sms = last_sms(videoid_app, phone=PHONE)
        slovenian = r"\d{6} je koda za video identifikacijo pri .+\. Kode ne delite z nikomer\."
        assert re.fullmatch(slovenian, sms), sms
        assert f'href="/login?request_id={request_id}"' in result.text

        # back in the login: the level is reached now, the authorization request resumes
        resumed = p.rp.browser.get(f"/login?request_id={request_id}")
        callback = redirect_query(resumed)
        tokens = p.rp.exchange(callback["code"], verifier).json()
        claims = p.rp.verify_id_token(tokens["id_token"], nonce=params["nonce"])
        assert claims["acr"] == HIGH  # spelled as asked
        verified = claims["verified_claims"]
        assert verified["verification"]["trust_framework"] == TRUST_FRAMEWORK
        assert verified["verification"]["verification_process"] == session_id
        evidence = verified["verification"]["evidence"][0]
        assert evidence["type"] == "document"
        assert {c["check_method"] for c in evidence["check_details"]} == {"vpiruv", "bvr"}
        assert evidence["document_details"] == {
            "type": "passport",
            "document_number": "PA1234567",
            "issuer": {"country_code": "UTO"},
            "date_of_expiry": "2031-09-30",
        }
        assert verified["claims"] == {
            "given_name": "Ana",
            "family_name": "Novak",
            "birthdate": "1985-03-14",
            "nationalities": ["UTO"],
        }
        userinfo = p.userinfo(tokens["access_token"]).json()
        assert userinfo["verified_claims"] == verified

        # a later request for qualified is satisfied by the session at once (proofed eID)
        again, again_verifier = p.rp.authorize_params(
            acr_values=QUALIFIED, prompt="none", scope="openid profile"
        )
        later = redirect_query(p.rp.start(again))
        later_tokens = p.rp.exchange(later["code"], again_verifier).json()
        later_claims = p.rp.verify_id_token(later_tokens["id_token"], nonce=again["nonce"])
        assert later_claims["acr"] == QUALIFIED
        assert "verified_claims" not in later_claims  # not asked for: the scope was not requested


def redirect_id(html: str) -> str:
    marker = "request_id="
    start = html.index("/videoid/start?" + marker) + len("/videoid/start?" + marker)
    end = html.index('"', start)
    return html[start:end]
