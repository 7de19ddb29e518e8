"""The authorization code flow with PKCE (RFC 6749 §4.1, RFC 7636, OIDC Core §3.1, RFC 9207)."""

from __future__ import annotations

import base64
import hashlib
import time

from sqlalchemy import update

from idp.clients import ClientType
from idp.storage import tables
from idp.storage.database import Tx
from tests.oidc.conftest import (
    REDIRECT_URI,
    PartyFactory,
    audit_events,
    outbox_names,
    race,
    redirect_query,
    verify_audit,
)
from tests.support.flows import pkce_pair
from tests.support.server import ServedApp


def _half_hash(value: str) -> str:
    digest = hashlib.sha256(value.encode()).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


def test_code_flow_issues_a_verified_id_token(party: PartyFactory, served: ServedApp) -> None:
    p = party(attributes={"given_name": "Ana", "family_name": "Novak"})
    before = time.time()
    done = p.login()
    assert done.callback["state"] == done.params["state"]
    assert done.callback["iss"] == served.issuer  # RFC 9207 §2
    response = p.rp.exchange(done.callback["code"], done.verifier)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == served.settings.access_token_ttl
    assert set(body["scope"].split()) == {"openid", "profile", "email"}
    assert body["refresh_token"]
    claims = p.rp.verify_id_token(body["id_token"], nonce=done.params["nonce"])
    assert p.eid is not None
    assert claims["sub"] == p.eid.id
    assert claims["aud"] == [p.client_id]
    assert before - 2 <= claims["auth_time"] <= time.time() + 2
    assert claims["acr"] == "urn:eid:loa:basic"
    assert claims["amr"] == ["email"]
    assert claims["sid"]
    assert claims["at_hash"] == _half_hash(body["access_token"])  # OIDC Core §3.1.3.6


def test_the_id_token_can_be_signed_with_es256(party: PartyFactory) -> None:
    p = party(id_token_alg="ES256")
    body = p.tokens()
    claims = p.rp.verify_id_token(body["id_token"], nonce=body["_nonce"])
    header = base64.urlsafe_b64decode(body["id_token"].split(".")[0] + "==")
    assert b'"ES256"' in header
    assert claims["at_hash"] == _half_hash(body["access_token"])


def test_userinfo_releases_claims_by_scope(party: PartyFactory) -> None:
    p = party(attributes={"given_name": "Ana", "family_name": "Novak", "phone_number": "+38640123456"})
    everything = p.tokens(scope="openid profile email phone")
    info = p.userinfo(everything["access_token"])
    assert info.status_code == 200, info.text
    claims = info.json()
    assert p.eid is not None
    assert claims["sub"] == p.eid.id
    assert claims["given_name"] == "Ana"
    assert claims["family_name"] == "Novak"
    assert claims["name"] == "Ana Novak"
    assert claims["email"] == "ana@example.com"
    assert claims["email_verified"] is True  # the email link just proved it
    assert claims["phone_number"] == "+38640123456"
    assert claims["phone_number_verified"] is False

    only_openid = p.tokens(scope="openid")
    assert p.userinfo(only_openid["access_token"]).json() == {"sub": p.eid.id}

    profile_only = p.userinfo(p.tokens(scope="openid profile")["access_token"]).json()
    assert profile_only["given_name"] == "Ana"
    assert "email" not in profile_only
    assert "email_verified" not in profile_only
    assert "phone_number" not in profile_only


def test_userinfo_without_a_token_or_with_a_bad_one_is_401(party: PartyFactory) -> None:
    p = party()
    missing = p.rp.backend.get("/userinfo")
    assert missing.status_code == 401
    assert missing.json()["error"] == "invalid_token"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    unknown = p.userinfo("not-a-token")
    assert unknown.status_code == 401
    assert unknown.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in unknown.headers["www-authenticate"]


def test_scopes_the_client_may_not_use_are_dropped(party: PartyFactory) -> None:
    p = party(scopes=["openid", "email"])
    body = p.tokens(scope="openid profile email phone")
    assert set(body["scope"].split()) == {"openid", "email"}
    claims = p.userinfo(body["access_token"]).json()
    assert "email" in claims
    assert "given_name" not in claims


def test_a_wrong_code_verifier_is_invalid_grant(party: PartyFactory) -> None:
    p = party()
    done = p.login()
    wrong, _ = pkce_pair()
    response = p.rp.exchange(done.callback["code"], wrong)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert "challenge" in response.json()["error_description"].lower()


def test_a_missing_code_verifier_is_refused(party: PartyFactory) -> None:
    p = party()
    done = p.login()
    response = p.rp.token(
        grant_type="authorization_code", code=done.callback["code"], redirect_uri=REDIRECT_URI
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "code_verifier" in response.json()["error_description"]


def test_a_public_client_without_code_challenge_gets_an_error_redirect(
    party: PartyFactory, served: ServedApp
) -> None:
    p = party(client_type=ClientType.PUBLIC)
    params, _ = p.rp.authorize_params()
    del params["code_challenge"], params["code_challenge_method"]
    query = redirect_query(p.rp.start(params))
    assert query["error"] == "invalid_request"
    assert "PKCE" in query["error_description"]
    assert query["state"] == params["state"]
    assert query["iss"] == served.issuer  # RFC 9207 §2: error responses too
    assert "code" not in query


def test_code_challenge_method_plain_is_refused(party: PartyFactory, served: ServedApp) -> None:
    p = party()
    verifier, _ = pkce_pair()
    params, _ = p.rp.authorize_params(code_challenge=verifier, code_challenge_method="plain")
    query = redirect_query(p.rp.start(params))
    assert query["error"] == "invalid_request"
    assert "S256" in query["error_description"]
    assert query["iss"] == served.issuer
    # without a method, RFC 7636 §4.3 means plain: refused too
    params, _ = p.rp.authorize_params()
    del params["code_challenge_method"]
    query = redirect_query(p.rp.start(params))
    assert query["error"] == "invalid_request"
    assert "S256" in query["error_description"]


def test_a_public_client_completes_the_flow_and_may_refresh(party: PartyFactory) -> None:
    p = party(client_type=ClientType.PUBLIC)
    assert p.client.client_secret is None
    body = p.tokens()
    assert body["refresh_token"]
    p.rp.verify_id_token(body["id_token"], nonce=body["_nonce"])
    refreshed = p.refresh(body["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["refresh_token"] != body["refresh_token"]


def test_a_public_client_without_the_refresh_grant_gets_no_refresh_token(party: PartyFactory) -> None:
    p = party(client_type=ClientType.PUBLIC, grant_types=["authorization_code"])
    body = p.tokens()
    assert "refresh_token" not in body
    assert body["access_token"]


def test_a_replayed_code_is_refused_and_revokes_what_it_issued(party: PartyFactory) -> None:
    p = party()
    done = p.login()
    first = p.rp.exchange(done.callback["code"], done.verifier)
    assert first.status_code == 200, first.text
    tokens = first.json()
    assert p.userinfo(tokens["access_token"]).status_code == 200

    second = p.rp.exchange(done.callback["code"], done.verifier)
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"
    assert "already used" in second.json()["error_description"]

    # RFC 6749 §4.1.2 / RFC 9700 §4.5: what the code issued is revoked
    assert p.userinfo(tokens["access_token"]).status_code == 401
    assert p.introspect(tokens["access_token"]).json() == {"active": False}
    assert p.introspect(tokens["refresh_token"]).json() == {"active": False}
    refreshed = p.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"
    events = [e["event_type"] for e in audit_events(p.served)]
    assert "code.replayed" in events


def test_a_code_is_bound_to_its_client(party: PartyFactory) -> None:
    a = party()
    b = party(tenant=a.tenant, email=None)
    done = a.login()
    stolen = b.rp.exchange(done.callback["code"], done.verifier)
    assert stolen.status_code == 400
    assert stolen.json()["error"] == "invalid_grant"
    # the rightful client can still use it
    assert a.rp.exchange(done.callback["code"], done.verifier).status_code == 200


def test_redirect_uri_mismatch_at_authorize_is_not_redirected(party: PartyFactory) -> None:
    p = party()
    params, _ = p.rp.authorize_params(redirect_uri="https://evil.example/cb")
    response = p.rp.start(params)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert "invalid_request" in response.text
    assert "evil.example" not in response.headers.get("location", "")
    # a prefix or a different case of the registered URI is no match either (exact comparison)
    for near in (REDIRECT_URI + "/x", REDIRECT_URI.upper(), REDIRECT_URI + "?a=1"):
        params, _ = p.rp.authorize_params(redirect_uri=near)
        response = p.rp.start(params)
        assert response.status_code == 400, near
        assert "location" not in response.headers


def test_without_redirect_uri_and_several_registered_there_is_no_redirect(party: PartyFactory) -> None:
    p = party(redirect_uris=[REDIRECT_URI, "https://rp.example/other"])
    params, _ = p.rp.authorize_params()
    del params["redirect_uri"]
    response = p.rp.start(params)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "redirect_uri" in response.text


def test_a_different_redirect_uri_at_the_token_endpoint_is_invalid_grant(party: PartyFactory) -> None:
    other = "https://rp.example/other"
    p = party(redirect_uris=[REDIRECT_URI, other])
    done = p.login()
    response = p.rp.token(
        grant_type="authorization_code",
        code=done.callback["code"],
        redirect_uri=other,
        code_verifier=done.verifier,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert "redirect_uri" in response.json()["error_description"]


def test_an_unknown_client_gets_an_error_page(party: PartyFactory) -> None:
    p = party()
    params, _ = p.rp.authorize_params(client_id="no-such-client")
    response = p.rp.start(params)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "invalid_client" in response.text


def test_a_suspended_client_gets_an_error_page(party: PartyFactory, served: ServedApp) -> None:
    from idp import clients

    p = party()
    served.write(lambda tx: clients.set_active(tx, client_id=p.client_id, active=False))
    served.state.clients.invalidate([p.client_id])
    params, _ = p.rp.authorize_params()
    response = p.rp.start(params)
    assert response.status_code == 400
    assert "location" not in response.headers


def test_an_expired_code_is_invalid_grant(party: PartyFactory, served: ServedApp) -> None:
    p = party()
    done = p.login()

    def expire(tx: Tx) -> None:
        c = tables.authorization_codes.c
        tx.conn.execute(
            update(tables.authorization_codes).where(c.client_id == p.client_id).values(expires_at=tx.now - 1)
        )

    served.write(expire)
    response = p.rp.exchange(done.callback["code"], done.verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_an_unknown_code_is_invalid_grant(party: PartyFactory) -> None:
    p = party()
    verifier, _ = pkce_pair()
    response = p.rp.exchange("made-up-code", verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_the_discovery_document_names_the_endpoints(party: PartyFactory, served: ServedApp) -> None:
    p = party(email=None)
    doc = p.rp.backend.get("/.well-known/openid-configuration").json()
    assert doc["issuer"] == served.issuer
    assert doc["token_endpoint"] == served.issuer + "/token"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["authorization_response_iss_parameter_supported"] is True
    # qualified: an advanced login by an identity proofed by video identification
    assert doc["acr_values_supported"] == [
        "urn:eid:loa:basic",
        "urn:eid:loa:advanced",
        "urn:eid:loa:qualified",
        "http://eidas.europa.eu/LoA/low",
        "http://eidas.europa.eu/LoA/substantial",
        "http://eidas.europa.eu/LoA/high",
    ]
    assert "verified_claims" in doc["scopes_supported"] and doc["verified_claims_supported"] is True
    assert doc["evidence_supported"] == ["document"]


def test_a_full_login_leaves_a_verifiable_audit_trail(party: PartyFactory, served: ServedApp) -> None:
    p = party()
    p.tokens()
    assert p.eid is not None
    events = [e for e in audit_events(served) if e["tenant_id"] == p.tenant.id]
    by_type: dict[str, list[dict[str, object]]] = {}
    for event in events:
        by_type.setdefault(str(event["event_type"]), []).append(event)
    for kind in ("email_link.sent", "session.authenticated", "authorization.code_issued", "token.issued"):
        assert kind in by_type, f"no {kind} event in {sorted(by_type)}"
        (event,) = by_type[kind]
        assert event["tenant_id"] == p.tenant.id, kind
        assert event["eid_id"] == p.eid.id, kind
        assert event["success"] is True, kind
    assert by_type["authorization.code_issued"][0]["details"]["acr"] == "urn:eid:loa:basic"  # type: ignore[index]
    assert by_type["token.issued"][0]["details"]["client_id"] == p.client_id  # type: ignore[index]
    order = [str(e["event_type"]) for e in events]
    assert (
        order.index("email_link.sent")
        < order.index("session.authenticated")
        < order.index("authorization.code_issued")
        < order.index("token.issued")
    )
    report = verify_audit(served)
    assert report.events >= len(events)
    assert report.head_seq == report.events


# -- prompt and max_age (OIDC Core §3.1.2.1, §3.1.2.6) -------------------------------------------


def test_prompt_none_without_a_session_is_login_required(party: PartyFactory, served: ServedApp) -> None:
    p = party()
    params, _ = p.rp.authorize_params(prompt="none")
    query = redirect_query(p.rp.start(params))
    assert query["error"] == "login_required"
    assert "prompt=none" in query["error_description"]
    assert query["state"] == params["state"]
    assert query["iss"] == served.issuer
    assert "code" not in query


def test_prompt_none_with_a_session_issues_a_code_without_any_page(party: PartyFactory) -> None:
    p = party()
    first = p.tokens()
    first_claims = p.rp.verify_id_token(first["id_token"], nonce=first["_nonce"])
    seen = outbox_names(p.served)
    params, verifier = p.rp.authorize_params(prompt="none")
    response = p.rp.start(params)
    assert response.status_code == 302  # straight back to the client
    query = redirect_query(response)
    assert query["state"] == params["state"]
    exchanged = p.rp.exchange(query["code"], verifier)
    assert exchanged.status_code == 200, exchanged.text
    claims = p.rp.verify_id_token(exchanged.json()["id_token"], nonce=params["nonce"])
    assert claims["sid"] == first_claims["sid"]
    assert claims["auth_time"] == first_claims["auth_time"]  # no new authentication
    assert outbox_names(p.served) == seen


def test_prompt_login_with_a_session_goes_back_to_the_login_page(party: PartyFactory) -> None:
    p = party()
    first = p.tokens()
    auth_time = p.rp.verify_id_token(first["id_token"], nonce=first["_nonce"])["auth_time"]
    params, verifier = p.rp.authorize_params(prompt="login")
    response = p.rp.start(params)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?request_id=")
    # after logging in again, the code is issued with the new authentication
    query = redirect_query(p.sign_in(response))
    authentications = [
        e
        for e in audit_events(p.served)
        if e["event_type"] == "session.authenticated" and e["tenant_id"] == p.tenant.id
    ]
    assert len(authentications) == 2
    assert authentications[1]["details"]["sid"] == authentications[0]["details"]["sid"]  # the session goes on
    body = p.rp.exchange(query["code"], verifier).json()
    assert p.rp.verify_id_token(body["id_token"], nonce=params["nonce"])["auth_time"] >= auth_time


def test_max_age_zero_means_login_again(party: PartyFactory) -> None:
    p = party()
    p.tokens()
    response = p.authorize_again(max_age="0")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?request_id=")
    query = redirect_query(p.sign_in(response))
    assert "code" in query
    # a generous max_age is satisfied by the session
    generous = p.authorize_again(max_age="3600")
    assert generous.status_code == 302
    assert "code" in redirect_query(generous)
    # and silently, max_age=0 cannot be met
    silent = redirect_query(p.authorize_again(max_age="0", prompt="none"))
    assert silent["error"] == "login_required"


def test_a_session_of_one_tenant_does_not_serve_another(party: PartyFactory) -> None:
    a = party()
    a.tokens()
    b = party()  # its own tenant, the same address there
    b.rp.browser.cookies = a.rp.browser.cookies  # the same browser
    params, _ = b.rp.authorize_params(prompt="none")
    query = redirect_query(b.rp.start(params))
    assert query["error"] == "login_required"
    assert "other_tenant" in query["error_description"]
    response = b.authorize_again()
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?request_id=")


def test_a_code_raced_by_two_requests_issues_nothing_that_survives(party: PartyFactory) -> None:
    """Two simultaneous exchanges of one code: at most one wins, and the replay revokes it anyway."""
    p = party()
    for _ in range(10):
        done = p.login()
        results = race(
            p,
            grant_type="authorization_code",
            code=done.callback["code"],
            redirect_uri=REDIRECT_URI,
            code_verifier=done.verifier,
        )
        assert sorted(r.status_code for r in results) in ([200, 400], [400, 400])
        for r in results:
            if r.status_code == 400:
                assert r.json()["error"] == "invalid_grant"
            else:
                assert p.userinfo(r.json()["access_token"]).status_code == 401, (
                    "the replay left a token alive"
                )
