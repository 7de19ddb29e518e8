"""SSO login tokens through the served app: a portal's signed JWT becomes an SSO session at the
level the tenant trusts the portal for, then the authorization request continues; every bad
token is a clear error page, never a 500. On SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey

from idp import clients
from levels_of_assurance.ladder import URN, Level
from otp import totp
from tests.oidc.conftest import Party, PartyFactory, audit_events, redirect_query
from tests.oidc.test_advanced_login import PHONE, enrol, follow, post_form
from tests.oidc.test_advanced_login import SECRET as PASSWORD
from tests.support.flows import query_of
from tests.support.server import SECRET

KEY = ECKey.generate_key("P-256", parameters={"kid": "portal-1"})
OTHER_KEY = ECKey.generate_key("P-256", parameters={"kid": "portal-1"})
PUBLIC_JWKS = {"keys": [KEY.as_dict(private=False)]}


def portal(party: PartyFactory, level: Level = Level.BASIC, **kwargs: Any) -> Party:
    """A relying party that is also a portal: signs login tokens with KEY (or HS256 with its secret)."""
    kwargs.setdefault("jwks", PUBLIC_JWKS)
    return party(
        login_token_acr=URN[level],
        auth_method=clients.AuthMethod.SECRET_BASIC,
        seal_key=SECRET,
        **kwargs,
    )


def mint(p: Party, *, key: Any = KEY, alg: str = "ES256", **overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": p.client_id,
        "aud": p.served.issuer,
        "sub": p.email,
        "iat": now,
        "exp": now + 120,
        "jti": secrets.token_urlsafe(12),
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    header = {"alg": alg, **({"kid": "portal-1"} if alg.startswith(("ES", "RS")) else {})}
    return jwt.encode(header, claims, key, algorithms=[alg])


def present(p: Party, token: str, **form: str) -> httpx.Response:
    return p.rp.browser.post("/login/token", data={"login_token": token, **form})


def to_code(p: Party, token: str, **authorize: str) -> tuple[dict[str, str], str, dict[str, str]]:
    """/authorize → the login page's request id → the login token → back at the RP with a code."""
    params, verifier = p.rp.authorize_params(**authorize)
    started = p.rp.start(params)
    assert started.status_code == 303, started.text
    request_id = query_of(started.headers["location"])["request_id"]
    done = present(p, token, request_id=request_id)
    assert done.status_code == 303, done.text
    return params, verifier, redirect_query(done)  # the code comes back in the answer to the token


def test_login_token_gives_a_basic_session_and_a_code(party: PartyFactory) -> None:
    p = portal(party)
    params, verifier, callback = to_code(p, mint(p))
    assert callback["state"] == params["state"]
    tokens = p.rp.exchange(callback["code"], verifier).json()
    claims = p.rp.verify_id_token(tokens["id_token"], nonce=params["nonce"])
    assert claims["acr"] == URN[Level.BASIC]
    assert claims["amr"] == ["fed"]
    assert claims["sub"] == p.eid.id if p.eid else False
    # the SSO session serves the next request without a login
    again = p.authorize_again()
    assert again.status_code == 302 and "code=" in again.headers["location"]
    kinds = [e["event_type"] for e in audit_events(p.served) if e["eid_id"] == (p.eid.id if p.eid else "")]
    assert "login.factor_proven" in kinds and "session.authenticated" in kinds


def test_advanced_portal_reaches_advanced(party: PartyFactory) -> None:
    p = portal(party, Level.ADVANCED)
    params, verifier, callback = to_code(p, mint(p), acr_values=URN[Level.ADVANCED])
    tokens = p.rp.exchange(callback["code"], verifier).json()
    assert p.rp.verify_id_token(tokens["id_token"], nonce=params["nonce"])["acr"] == URN[Level.ADVANCED]


def test_basic_portal_cannot_give_advanced(party: PartyFactory) -> None:
    """The login token identifies the person; the missing factors are still asked for (step-up)."""
    p = portal(party)
    params, _verifier = p.rp.authorize_params(acr_values=URN[Level.ADVANCED])
    request_id = query_of(p.rp.start(params).headers["location"])["request_id"]
    done = present(p, mint(p), request_id=request_id)
    assert done.status_code == 303
    assert done.headers["location"].startswith("/login?request_id="), done.headers["location"]


def test_a_portal_does_not_vouch_for_changes_to_the_eid(party: PartyFactory) -> None:
    """An advanced portal's token serves the tenant's apps, but changing the password (or phone,
    passkeys, app) asks the person for their own password and code first."""
    p = portal(party, Level.ADVANCED, attributes={"phone_number": PHONE})
    assert p.eid is not None
    secret = enrol(p.served, p.eid)
    assert secret is not None
    to_code(p, mint(p), acr_values=URN[Level.ADVANCED])
    assert p.rp.browser.get("/account").status_code == 200  # the account itself can be seen
    step_up = p.rp.browser.get("/account/password")
    assert step_up.status_code == 303 and step_up.headers["location"].startswith("/login?")
    page = follow(p, step_up)
    assert "Enter your password" in page.text and 'name="email"' not in page.text
    code_page = follow(p, post_form(p, page, "/login/password", password=PASSWORD))
    code = totp.code_at(secret=secret, for_time=time.time())
    done = post_form(p, code_page, "/login/code", method="totp", code=code)
    assert done.status_code == 303 and done.headers["location"] == "/account/password"
    assert 'name="password_repeat"' in p.rp.browser.get("/account/password").text


def test_login_token_with_authorization_parameters(party: PartyFactory) -> None:
    p = portal(party)
    params, verifier = p.rp.authorize_params()
    response = p.rp.browser.get("/login/token", params={"login_token": mint(p), **params})
    assert response.status_code == 303
    assert response.headers["location"].startswith("/authorize?")
    callback = redirect_query(p.rp.browser.get(response.headers["location"]))
    assert p.rp.exchange(callback["code"], verifier).status_code == 200


def test_hs256_with_the_client_secret(party: PartyFactory) -> None:
    p = portal(party, jwks=None)
    secret = p.client.client_secret
    assert secret is not None
    token = mint(p, key=OctKey.import_key(secret.encode()), alg="HS256")
    _params, _verifier, callback = to_code(p, token)
    assert "code" in callback
    wrong = mint(p, key=OctKey.import_key(b"not the secret at all, 32 bytes!"), alg="HS256")
    assert_refused(present(p, wrong), "bad_signature")


def assert_refused(response: httpx.Response, code: str) -> None:
    assert response.status_code == 400, response.text
    assert f"login_token {code}" in response.text, response.text[-800:]


def test_replay_is_refused(party: PartyFactory) -> None:
    p = portal(party)
    token = mint(p)
    assert present(p, token).status_code == 303
    assert_refused(present(p, token), "replayed")
    refused = [e for e in audit_events(p.served) if e["event_type"] == "login_token.refused"]
    assert any(
        e["details"]["reason"] == "replayed" and e["details"]["client_id"] == p.client_id for e in refused
    )


def _header_token(header: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part({'iss': 'x'})}.c2ln"


def _none_token(p: Party) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {
        "iss": p.client_id,
        "aud": p.served.issuer,
        "sub": p.email,
        "iat": now,
        "exp": now + 60,
        "jti": "n",
    }
    return f"{part({'alg': 'none'})}.{part(claims)}."


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("expired", "expired"),
        ("future", "not_yet_valid"),
        ("wrong_aud", "wrong_audience"),
        ("unknown_iss", "unknown_issuer"),
        ("bad_signature", "bad_signature"),
        ("alg_none", "algorithm_not_allowed"),
        ("alg_hs512", "algorithm_not_allowed"),
        ("too_long", "lifetime_too_long"),
        ("no_jti", "missing_claim"),
        ("no_subject", "missing_claim"),
        ("not_a_jwt", "malformed"),
        ("garbage_json", "malformed"),
        ("unknown_user", "unknown_user"),
        ("numbers_as_strings", "missing_claim"),
    ],
)
def test_bad_tokens_are_clear_errors(party: PartyFactory, case: str, code: str) -> None:
    p = portal(party)
    now = int(time.time())
    token = {
        "expired": lambda: mint(p, iat=now - 400, exp=now - 200),
        "future": lambda: mint(p, iat=now + 600, exp=now + 700),
        "wrong_aud": lambda: mint(p, aud="https://elsewhere.example"),
        "unknown_iss": lambda: mint(p, iss="no-such-client"),
        "bad_signature": lambda: mint(p, key=OTHER_KEY),
        "alg_none": lambda: _none_token(p),
        "alg_hs512": lambda: mint(p, key=OctKey.import_key(b"k" * 64), alg="HS512"),
        "too_long": lambda: mint(p, exp=now + 3600),
        "no_jti": lambda: mint(p, jti=None),
        "no_subject": lambda: mint(p, sub=None),
        "not_a_jwt": lambda: "not-a-jwt",
        "garbage_json": lambda: "e30.bm90IGpzb24.c2ln",
        "unknown_user": lambda: mint(p, sub="nobody@example.com"),
        "numbers_as_strings": lambda: mint(p, iat=str(now), exp=str(now + 60)),
    }[case]()
    assert_refused(present(p, token), code)


def test_a_client_not_trusted_as_portal_is_refused(party: PartyFactory) -> None:
    p = party(jwks=PUBLIC_JWKS, auth_method=clients.AuthMethod.SECRET_BASIC)  # no login_token_acr
    assert_refused(present(p, mint(p)), "not_enabled")


def test_unknown_user_created_when_the_tenant_says_so(party: PartyFactory) -> None:
    first = portal(party)
    first.served.write(
        lambda tx: __import__("idp.tenants", fromlist=["x"]).update_tenant(
            tx, tenant_id=first.tenant.id, login_token_unknown_users="create"
        )
    )
    token = mint(first, sub=None, email="new.person@example.com", given_name="New")
    params, verifier, callback = to_code(first, token)
    tokens = first.rp.exchange(callback["code"], verifier).json()
    claims = first.rp.verify_id_token(tokens["id_token"], nonce=params["nonce"])
    info = first.userinfo(tokens["access_token"]).json()
    assert info["email"] == "new.person@example.com" and claims["sub"] != (first.eid.id if first.eid else "")


def test_a_portal_cannot_sign_in_to_another_tenant(party: PartyFactory) -> None:
    p = portal(party)
    other = party()  # another tenant's relying party
    params, _ = other.rp.authorize_params()
    response = p.rp.browser.get("/login/token", params={"login_token": mint(p), **params})
    assert_refused(response, "other_tenant")


def test_suspended_person_is_refused(party: PartyFactory) -> None:
    p = portal(party)
    assert p.eid is not None
    eid_id = p.eid.id
    p.served.write(
        lambda tx: __import__("idp.eids", fromlist=["x"]).suspend(tx, eid_id=eid_id, reason="test")
    )
    assert_refused(present(p, mint(p)), "inactive_user")


# -- RFC 8693 token exchange at /token ------------------------------------------------------------

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"


def exchanging_portal(party: PartyFactory, level: Level = Level.BASIC, **kwargs: Any) -> Party:
    return portal(party, level, grant_types=["authorization_code", "refresh_token", EXCHANGE], **kwargs)


def exchange(p: Party, token: str, **extra: str) -> httpx.Response:
    form = {"grant_type": EXCHANGE, "subject_token": token, "subject_token_type": JWT_TYPE, **extra}
    return p.rp.token(**form)


def test_token_exchange_gives_an_access_token_for_the_person(party: PartyFactory) -> None:
    p = exchanging_portal(party, Level.ADVANCED)
    response = exchange(p, mint(p, aud=p.served.issuer + "/token"), scope="openid email")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert body["token_type"] == "Bearer" and "refresh_token" not in body
    assert body["scope"] == "openid email"
    info = p.userinfo(body["access_token"]).json()
    assert info["email"] == p.email
    introspected = p.introspect(body["access_token"]).json()
    assert introspected["active"] is True and introspected["acr"] == URN[Level.ADVANCED]
    assert p.eid is not None and introspected["sub"] == p.eid.id


def test_token_exchange_refuses_replay_and_bad_tokens(party: PartyFactory) -> None:
    p = exchanging_portal(party)
    token = mint(p)
    assert exchange(p, token).status_code == 200
    replayed = exchange(p, token)
    assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_grant"
    assert "used before" in replayed.json()["error_description"]
    bad = exchange(p, mint(p, key=OTHER_KEY))
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
    odd = exchange(p, _header_token({"alg": '\u00e9"\\'}))
    assert odd.status_code == 400 and odd.json()["error"] == "invalid_grant", odd.text
    wrong_type = exchange(p, mint(p), subject_token_type="urn:ietf:params:oauth:token-type:id_token")
    assert wrong_type.status_code == 400 and wrong_type.json()["error"] == "invalid_request"
    missing = p.rp.token(grant_type=EXCHANGE, subject_token_type=JWT_TYPE)
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    actor = exchange(p, mint(p), actor_token="x", actor_token_type=JWT_TYPE)
    assert actor.status_code == 400 and actor.json()["error"] == "invalid_request"


def test_token_exchange_only_for_the_clients_own_tokens(party: PartyFactory) -> None:
    p = exchanging_portal(party)
    other = exchanging_portal(party, tenant=p.tenant, email=None)
    foreign = exchange(other, mint(p))  # p's token, presented by another client of the tenant
    assert foreign.status_code == 400 and foreign.json()["error"] == "invalid_grant"
    plain = portal(party)  # a portal without the grant
    refused = exchange(plain, mint(plain))
    assert refused.status_code == 400 and refused.json()["error"] == "unauthorized_client"
    wrong_secret = p.rp.backend.post(
        "/token",
        data={"grant_type": EXCHANGE, "subject_token": mint(p), "subject_token_type": JWT_TYPE},
        auth=(p.client_id, "wrong"),
    )
    assert wrong_secret.status_code == 401 and wrong_secret.json()["error"] == "invalid_client"
