"""Sign-in with a passkey through the served app: username-less, and at step-up for a known person."""

from __future__ import annotations

import html
import json
import re
import time
from urllib.parse import urlsplit

import httpx
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

from levels_of_assurance.authenticators import passkey
from tests.oidc.conftest import Party, PartyFactory, audit_events, redirect_query
from tests.oidc.test_advanced_login import ADVANCED, SECRET, post_form, start
from tests.support.flows import form_value
from tests.support.soft_authenticator import SoftPasskey


def register(p: Party) -> SoftPasskey:
    """A passkey for the party's person, registered as the account page would."""
    assert p.eid is not None
    person = p.eid
    rp_id, origin = urlsplit(p.served.issuer).hostname or "", p.served.issuer
    device = SoftPasskey()
    options, challenge_id = p.served.write(
        lambda tx: passkey.registration_options(tx, rp_id=rp_id, rp_name="eID", eid=person, now=time.time())
    )
    answer = device.register(options, origin)
    p.served.write(
        lambda tx: passkey.finish_registration(
            tx,
            challenge_id=challenge_id,
            credential_json=answer,
            expected_origin=origin,
            rp_id=rp_id,
            name="test key",
            now=time.time(),
        )
    )
    return device


def embedded_options(page: httpx.Response) -> str:
    found = re.search(r'<script type="application/json" id="passkey-options">(.*?)</script>', page.text, re.S)
    assert found, "no passkey options on the page"
    return html.unescape(found.group(1)) if "&quot;" in found.group(1) else found.group(1)


def answer(p: Party, page: httpx.Response, device: SoftPasskey, **overrides: str) -> httpx.Response:
    credential = device.authenticate(embedded_options(page), p.served.issuer)
    fields = {"challenge_id": form_value(page.text, "challenge_id"), "credential": credential, **overrides}
    return post_form(p, page, "/login/passkey", **fields)


def test_a_passkey_alone_signs_in_at_advanced_without_a_username(party: PartyFactory) -> None:
    p = party()
    device = register(p)
    page, params, verifier = start(p, acr_values=ADVANCED)
    assert 'data-passkey="get"' in page.text and "/static/passkey.js" in page.text
    done = answer(p, page, device)
    assert done.status_code == 303, done.text[:1500]
    code = redirect_query(done, p.rp.redirect_uri)["code"]
    claims = p.rp.verify_id_token(p.rp.exchange(code, verifier).json()["id_token"], nonce=params["nonce"])
    assert claims["acr"] == ADVANCED
    assert "hwk" in claims["amr"] or "swk" in claims["amr"]
    assert "mfa" in claims["amr"] and "pwd" not in claims["amr"]
    kinds = [e["event_type"] for e in audit_events(p.served) if e["tenant_id"] == p.tenant.id]
    assert "login.factor_proven" in kinds


def test_a_replayed_assertion_is_refused(party: PartyFactory) -> None:
    p = party()
    device = register(p)
    page, _, _ = start(p, acr_values=ADVANCED)
    credential = device.authenticate(embedded_options(page), p.served.issuer)
    fields = {"challenge_id": form_value(page.text, "challenge_id"), "credential": credential}
    assert post_form(p, page, "/login/passkey", **fields).status_code == 303
    page, _, _ = start(p, acr_values=ADVANCED, prompt="login")
    replay = post_form(p, page, "/login/passkey", **fields)  # the old challenge, used up
    assert replay.status_code == 401 and "could not sign you in" in replay.text


def forged(credential: str) -> str:
    """The same assertion with its signature spoiled: the verification refuses it."""
    body = json.loads(credential)
    signature = bytearray(base64url_to_bytes(body["response"]["signature"]))
    signature[-1] ^= 0x01
    body["response"]["signature"] = bytes_to_base64url(bytes(signature))
    return json.dumps(body)


def test_a_refused_assertion_spends_its_challenge(party: PartyFactory) -> None:
    p = party()
    device = register(p)
    page, _, _ = start(p, acr_values=ADVANCED)
    credential = device.authenticate(embedded_options(page), p.served.issuer)
    challenge_id = form_value(page.text, "challenge_id")
    refused = post_form(p, page, "/login/passkey", challenge_id=challenge_id, credential=forged(credential))
    assert refused.status_code == 401 and "could not sign you in" in refused.text
    assert form_value(refused.text, "challenge_id") != challenge_id  # the page offers a new one
    # WebAuthn §13.4.3: the challenge was used, even though that use failed
    late = post_form(p, page, "/login/passkey", challenge_id=challenge_id, credential=credential)
    assert late.status_code == 401 and "could not sign you in" in late.text
    reasons = [
        e["details"]["reason"]
        for e in audit_events(p.served)
        if e["tenant_id"] == p.tenant.id and e["event_type"] == "login.failed"
    ]
    assert reasons == ["invalid_response", "used_challenge"]
    again = answer(p, refused, device)  # the new challenge works
    assert again.status_code == 303, again.text[:1500]


def test_a_passkey_of_another_tenant_does_not_sign_in_here(party: PartyFactory) -> None:
    elsewhere = party()
    device = register(elsewhere)
    here = party()
    page, _, _ = start(here, acr_values=ADVANCED)
    refused = answer(here, page, device)
    assert refused.status_code == 401


def test_garbage_instead_of_a_credential_is_a_clear_refusal(party: PartyFactory) -> None:
    p = party()
    page, _, _ = start(p, acr_values=ADVANCED)
    for credential in ("", "{", '{"id": 1}', "x" * 70_000):
        refused = post_form(
            p,
            page,
            "/login/passkey",
            challenge_id=form_value(page.text, "challenge_id"),
            credential=credential,
        )
        assert refused.status_code in (400, 401), refused.status_code


def test_a_cancelled_ceremony_goes_back_to_the_sign_in_page(party: PartyFactory) -> None:
    p = party()
    page, _, _ = start(p, acr_values=ADVANCED)
    back = post_form(p, page, "/login/passkey", challenge_id="x", credential="", error="NotAllowedError")
    assert back.status_code == 303 and back.headers["location"].startswith("/login?")


def test_at_step_up_the_known_person_is_offered_their_passkey(party: PartyFactory) -> None:
    p = party()
    assert p.eid is not None
    p.served.set_password(p.eid, SECRET)
    device = register(p)
    basic = p.tokens()  # basic, by email link
    sid = p.rp.verify_id_token(basic["id_token"], nonce=basic["_nonce"])["sid"]
    page, params, verifier = start(p, acr_values=ADVANCED)
    assert "Enter your password" in page.text and 'data-passkey="get"' in page.text
    code = redirect_query(answer(p, page, device), p.rp.redirect_uri)["code"]
    claims = p.rp.verify_id_token(p.rp.exchange(code, verifier).json()["id_token"], nonce=params["nonce"])
    assert claims["acr"] == ADVANCED and claims["sid"] == sid
