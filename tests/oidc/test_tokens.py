"""The token endpoint beyond the code: refresh rotation (RFC 6749 §6, RFC 9700 §4.14), revocation
(RFC 7009), introspection (RFC 7662), client_credentials (RFC 6749 §4.4) and client authentication
(RFC 6749 §2.3, OIDC Core §9 private_key_jwt)."""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from sqlalchemy import update

from idp.clients import AuthMethod, ClientType
from idp.storage import tables
from idp.storage.database import Tx
from tests.oidc.conftest import Party, PartyFactory, race, race_raw
from tests.support.server import ServedApp

INACTIVE = {"active": False}


def _error(response: Any, status: int, error: str) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert body["error"] == error, body
    assert response.headers["cache-control"] == "no-store"
    return str(body.get("error_description") or "")


# -- refresh tokens ------------------------------------------------------------------------------


def test_refresh_rotates_and_the_old_token_is_then_refused(party: PartyFactory) -> None:
    p = party()
    first = p.tokens()
    second = p.refresh(first["refresh_token"])
    assert second.status_code == 200, second.text
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    assert rotated["access_token"] != first["access_token"]
    assert "id_token" not in rotated or rotated["id_token"]
    third = p.refresh(rotated["refresh_token"])
    assert third.status_code == 200, third.text
    assert third.json()["refresh_token"] not in (first["refresh_token"], rotated["refresh_token"])
    # the newest access token works and carries the login's authentication
    info = p.introspect(third.json()["access_token"]).json()
    assert info["active"] is True
    assert info["acr"] == "urn:eid:loa:basic"

    description = _error(p.refresh(first["refresh_token"]), 400, "invalid_grant")
    assert "already used" in description


def test_reusing_a_rotated_refresh_token_revokes_the_whole_family(party: PartyFactory) -> None:
    p = party()
    first = p.tokens()
    newest = p.refresh(first["refresh_token"]).json()
    assert p.userinfo(newest["access_token"]).status_code == 200

    _error(p.refresh(first["refresh_token"]), 400, "invalid_grant")  # stolen and replayed

    # RFC 9700 §4.14.2: the legitimate holder's newest tokens die too
    _error(p.refresh(newest["refresh_token"]), 400, "invalid_grant")
    assert p.userinfo(newest["access_token"]).status_code == 401
    assert p.userinfo(first["access_token"]).status_code == 401
    assert p.introspect(newest["refresh_token"]).json() == INACTIVE
    assert p.introspect(newest["access_token"]).json() == INACTIVE


def test_a_refresh_token_raced_by_two_requests_leaves_nothing_alive(party: PartyFactory) -> None:
    """Two simultaneous uses of one refresh token are a reuse: the family dies, winner included."""
    p = party()
    tokens = p.tokens()
    refresh = tokens["refresh_token"]
    for _ in range(10):
        results = race(p, grant_type="refresh_token", refresh_token=refresh)
        assert sorted(r.status_code for r in results) in ([200, 400], [400, 400])
        winners = [r.json() for r in results if r.status_code == 200]
        for body in winners:
            assert p.userinfo(body["access_token"]).status_code == 401, "the reuse left a token alive"
            _error(p.refresh(body["refresh_token"]), 400, "invalid_grant")
        tokens = p.tokens(prompt="none")  # a new family for the next round
        refresh = tokens["refresh_token"]


def test_a_refresh_token_of_one_client_is_invalid_grant_for_another(party: PartyFactory) -> None:
    a = party()
    b = party(tenant=a.tenant, email=None)
    tokens = a.tokens()
    _error(b.refresh(tokens["refresh_token"]), 400, "invalid_grant")
    # nothing happened to the family: its client can still use it
    assert a.refresh(tokens["refresh_token"]).status_code == 200


def test_an_access_token_is_no_refresh_token(party: PartyFactory) -> None:
    p = party()
    tokens = p.tokens()
    _error(p.refresh(tokens["access_token"]), 400, "invalid_grant")
    _error(p.refresh("made-up"), 400, "invalid_grant")
    _error(p.rp.token(grant_type="refresh_token"), 400, "invalid_request")


def test_an_expired_refresh_token_is_refused(party: PartyFactory, served: ServedApp) -> None:
    p = party()
    tokens = p.tokens()
    _expire_tokens(served, p)
    _error(p.refresh(tokens["refresh_token"]), 400, "invalid_grant")


@pytest.mark.parametrize("status", ["suspended", "blocked", "pending"])
def test_a_refresh_token_of_an_eid_no_longer_active_is_refused(
    party: PartyFactory, served: ServedApp, status: str
) -> None:
    # the status changed without its tokens being revoked (eids.set_status revokes them too): the
    # token endpoint still checks the eID it loads with the token
    p = party()
    tokens = p.tokens()
    assert p.eid is not None
    eid_id = p.eid.id
    served.write(
        lambda tx: tx.conn.execute(
            update(tables.eids).where(tables.eids.c.id == eid_id).values(status=status)
        )
    )
    description = _error(p.refresh(tokens["refresh_token"]), 400, "invalid_grant")
    assert "not active" in description
    assert p.introspect(tokens["access_token"]).json() == INACTIVE
    assert p.introspect(tokens["refresh_token"]).json() == INACTIVE
    served.write(
        lambda tx: tx.conn.execute(
            update(tables.eids).where(tables.eids.c.id == eid_id).values(status="active")
        )
    )
    # the refused request did not spend the token
    assert p.refresh(tokens["refresh_token"]).status_code == 200


def test_refresh_can_narrow_but_not_widen_the_scope(party: PartyFactory) -> None:
    p = party()
    tokens = p.tokens(scope="openid email")
    narrowed = p.rp.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"], scope="openid")
    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["scope"] == "openid"
    wider = p.rp.token(
        grant_type="refresh_token", refresh_token=narrowed.json()["refresh_token"], scope="openid profile"
    )
    _error(wider, 400, "invalid_scope")


def _expire_tokens(served: ServedApp, p: Party) -> None:
    def unit(tx: Tx) -> None:
        t = tables.tokens.c
        tx.conn.execute(update(tables.tokens).where(t.client_id == p.client_id).values(expires_at=tx.now - 1))

    served.write(unit)


# -- revocation (RFC 7009) -----------------------------------------------------------------------


def test_revoking_a_refresh_token_revokes_its_access_tokens(party: PartyFactory) -> None:
    p = party()
    tokens = p.tokens()
    response = p.post("/revoke", token=tokens["refresh_token"], token_type_hint="refresh_token")
    assert response.status_code == 200, response.text
    assert p.userinfo(tokens["access_token"]).status_code == 401
    _error(p.refresh(tokens["refresh_token"]), 400, "invalid_grant")
    assert p.introspect(tokens["access_token"]).json() == INACTIVE


def test_revoking_an_access_token_leaves_the_refresh_token(party: PartyFactory) -> None:
    p = party()
    tokens = p.tokens()
    assert p.post("/revoke", token=tokens["access_token"]).status_code == 200
    assert p.userinfo(tokens["access_token"]).status_code == 401
    assert p.refresh(tokens["refresh_token"]).status_code == 200


def test_revoking_an_unknown_token_is_200(party: PartyFactory) -> None:
    p = party(email=None)
    response = p.post("/revoke", token="never-issued")
    assert response.status_code == 200
    # a token of another client is refused (RFC 7009 §2.1) and left alone
    owner = party()
    tokens = owner.tokens()
    _error(p.post("/revoke", token=tokens["access_token"]), 400, "invalid_grant")
    assert owner.userinfo(tokens["access_token"]).status_code == 200


def test_revocation_needs_the_token_parameter(party: PartyFactory) -> None:
    p = party(email=None)
    description = _error(p.post("/revoke"), 400, "invalid_request")
    assert "token" in description


def test_revocation_with_a_wrong_secret_is_invalid_client(party: PartyFactory) -> None:
    p = party()
    tokens = p.tokens()
    response = p.rp.backend.post(
        "/revoke", data={"token": tokens["access_token"]}, auth=(p.client_id, "wrong")
    )
    _error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].lower().startswith("basic")
    assert p.userinfo(tokens["access_token"]).status_code == 200


def test_a_public_client_may_revoke_its_own_tokens(party: PartyFactory) -> None:
    p = party(client_type=ClientType.PUBLIC)
    tokens = p.tokens()
    assert p.post("/revoke", token=tokens["refresh_token"]).status_code == 200
    _error(p.refresh(tokens["refresh_token"]), 400, "invalid_grant")


# -- introspection (RFC 7662) --------------------------------------------------------------------


def test_introspection_of_an_active_token(party: PartyFactory, served: ServedApp) -> None:
    p = party()
    tokens = p.tokens()
    response = p.introspect(tokens["access_token"])
    assert response.status_code == 200, response.text
    info = response.json()
    assert p.eid is not None
    assert info["active"] is True
    assert set(info["scope"].split()) == {"openid", "profile", "email"}
    assert info["client_id"] == p.client_id
    assert info["sub"] == p.eid.id
    assert info["iss"] == served.issuer
    assert info["token_type"] == "Bearer"
    assert time.time() < info["exp"] <= time.time() + served.settings.access_token_ttl + 5
    assert info["username"] == "ana@example.com"
    refresh = p.introspect(tokens["refresh_token"]).json()
    assert refresh["active"] is True
    assert refresh["token_type"] == "refresh_token"


def test_introspection_of_revoked_expired_and_unknown_tokens(party: PartyFactory, served: ServedApp) -> None:
    p = party()
    revoked = p.tokens()
    assert p.post("/revoke", token=revoked["access_token"]).status_code == 200
    assert p.introspect(revoked["access_token"]).json() == INACTIVE
    assert p.introspect("never-issued").json() == INACTIVE
    expired = p.tokens()
    _expire_tokens(served, p)
    response = p.introspect(expired["access_token"])
    assert response.status_code == 200
    assert response.json() == INACTIVE
    assert p.introspect(expired["refresh_token"]).json() == INACTIVE


def test_introspection_by_a_client_of_another_tenant_is_inactive(party: PartyFactory) -> None:
    owner = party()
    stranger = party(email=None)
    tokens = owner.tokens()
    assert stranger.introspect(tokens["access_token"]).json() == INACTIVE
    # a resource server of the same tenant may introspect
    colleague = party(tenant=owner.tenant, email=None)
    assert colleague.introspect(tokens["access_token"]).json()["active"] is True


def test_introspection_needs_client_authentication(party: PartyFactory) -> None:
    p = party()
    tokens = p.tokens()
    anonymous = p.rp.backend.post("/introspect", data={"token": tokens["access_token"]})
    _error(anonymous, 401, "invalid_client")
    wrong = p.rp.backend.post("/introspect", data={"token": tokens["access_token"]}, auth=(p.client_id, "x"))
    _error(wrong, 401, "invalid_client")
    public = party(tenant=p.tenant, email=None, client_type=ClientType.PUBLIC)
    _error(public.introspect(tokens["access_token"]), 401, "invalid_client")


def test_introspection_needs_the_token_parameter(party: PartyFactory) -> None:
    p = party(email=None)
    _error(p.post("/introspect"), 400, "invalid_request")


# -- client_credentials (RFC 6749 §4.4) ----------------------------------------------------------


def _machine(party: PartyFactory, **kwargs: Any) -> Party:
    kwargs.setdefault("grant_types", ["client_credentials"])
    kwargs.setdefault("scopes", ["profile", "email"])
    return party(email=None, **kwargs)


def test_client_credentials_with_client_secret_basic(party: PartyFactory) -> None:
    p = _machine(party)
    response = p.post("/token", grant_type="client_credentials", scope="profile phone")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == "profile"  # limited to the client's scopes
    assert "refresh_token" not in body
    assert "id_token" not in body
    info = p.introspect(body["access_token"]).json()
    assert info["active"] is True
    assert info["client_id"] == p.client_id
    assert "sub" not in info
    # a machine's token is no person's: userinfo refuses it
    assert p.userinfo(body["access_token"]).status_code == 401


def test_client_credentials_with_client_secret_post(party: PartyFactory) -> None:
    p = _machine(party, auth_method=AuthMethod.SECRET_POST)
    assert p.client.client_secret
    response = p.rp.backend.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_id": p.client_id,
            "client_secret": p.client.client_secret,
            "scope": "email",
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "email"
    # the registered method only: Basic is refused for a client_secret_post client
    basic = p.rp.backend.post(
        "/token", data={"grant_type": "client_credentials"}, auth=(p.client_id, p.client.client_secret)
    )
    _error(basic, 401, "invalid_client")


def test_client_credentials_for_a_client_without_the_grant_is_unauthorized_client(
    party: PartyFactory,
) -> None:
    p = party(email=None)  # authorization_code and refresh_token only
    description = _error(p.post("/token", grant_type="client_credentials"), 400, "unauthorized_client")
    assert "client_credentials" in description or "grant" in description.lower()


def test_client_credentials_with_a_wrong_secret_is_invalid_client(party: PartyFactory) -> None:
    p = _machine(party)
    response = p.rp.backend.post(
        "/token", data={"grant_type": "client_credentials"}, auth=(p.client_id, "no")
    )
    _error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic")
    unknown = p.rp.backend.post("/token", data={"grant_type": "client_credentials"}, auth=("nobody", "no"))
    _error(unknown, 401, "invalid_client")
    no_auth = p.rp.backend.post("/token", data={"grant_type": "client_credentials"})
    _error(no_auth, 401, "invalid_client")


# -- private_key_jwt (OIDC Core §9, RFC 7523 §2.2) -----------------------------------------------


@pytest.fixture
def signer() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "rp-key-1", "alg": "ES256", "use": "sig"})


def _assertion(key: ECKey, client_id: str, audience: str, *, jti: str | None = None, **claims: Any) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": jti or secrets.token_urlsafe(12),
        "iat": now,
        "exp": now + 120,
        **claims,
    }
    return jwt.encode({"alg": "ES256", "kid": str(key.kid)}, payload, key)


def _key_party(party: PartyFactory, key: ECKey) -> Party:
    jwks = KeySet([key]).as_dict(private=False)
    return _machine(party, auth_method=AuthMethod.PRIVATE_KEY_JWT, jwks=jwks)


def _post_assertion(p: Party, assertion: str, **data: str) -> Any:
    return p.rp.backend.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
            **data,
        },
    )


def test_private_key_jwt_authenticates_once_per_jti(
    party: PartyFactory, served: ServedApp, signer: ECKey
) -> None:
    p = _key_party(party, signer)
    assert p.client.client_secret is None
    assertion = _assertion(signer, p.client_id, served.issuer + "/token")
    response = _post_assertion(p, assertion, scope="profile")
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "profile"

    # RFC 6749 §5.2: 401 is required only when the client used the Authorization header
    description = _error(_post_assertion(p, assertion), 400, "invalid_client")
    assert "jwt id" in description.lower() or "jti" in description.lower()
    # the issuer itself is an accepted audience too
    assert _post_assertion(p, _assertion(signer, p.client_id, served.issuer)).status_code == 200


def test_private_key_jwt_signed_with_another_key_is_invalid_client(
    party: PartyFactory, served: ServedApp, signer: ECKey
) -> None:
    p = _key_party(party, signer)
    intruder = ECKey.generate_key("P-256", parameters={"kid": str(signer.kid)})
    _error(
        _post_assertion(p, _assertion(intruder, p.client_id, served.issuer + "/token")), 400, "invalid_client"
    )


def test_private_key_jwt_with_wrong_claims_is_invalid_client(
    party: PartyFactory, served: ServedApp, signer: ECKey
) -> None:
    p = _key_party(party, signer)
    token_url = served.issuer + "/token"
    wrong_audience = _assertion(signer, p.client_id, "https://elsewhere.example/token")
    assert "aud" in _error(_post_assertion(p, wrong_audience), 400, "invalid_client")
    expired = _assertion(signer, p.client_id, token_url, exp=int(time.time()) - 600)
    assert "exp" in _error(_post_assertion(p, expired), 400, "invalid_client")
    other_issuer = _assertion(signer, p.client_id, token_url, iss="someone-else")
    _error(_post_assertion(p, other_issuer), 400, "invalid_client")
    # a secret is no substitute for the key
    _error(
        p.rp.backend.post("/token", data={"grant_type": "client_credentials"}, auth=(p.client_id, "x")),
        401,
        "invalid_client",
    )


def test_private_key_jwt_at_introspection_and_revocation(
    party: PartyFactory, served: ServedApp, signer: ECKey
) -> None:
    p = _key_party(party, signer)
    issued = _post_assertion(p, _assertion(signer, p.client_id, served.issuer + "/token")).json()
    base = {"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}
    once = _assertion(signer, p.client_id, served.issuer + "/introspect")
    info = p.rp.backend.post(
        "/introspect", data={**base, "client_assertion": once, "token": issued["access_token"]}
    )
    assert info.status_code == 200, info.text
    assert info.json()["active"] is True
    again = p.rp.backend.post(
        "/introspect", data={**base, "client_assertion": once, "token": issued["access_token"]}
    )
    _error(again, 400, "invalid_client")
    revoke = p.rp.backend.post(
        "/revoke",
        data={
            **base,
            "client_assertion": _assertion(signer, p.client_id, served.issuer + "/revoke"),
            "token": issued["access_token"],
        },
    )
    assert revoke.status_code == 200, revoke.text
    final = p.rp.backend.post(
        "/introspect",
        data={
            **base,
            "client_assertion": _assertion(signer, p.client_id, served.issuer),
            "token": issued["access_token"],
        },
    )
    assert final.json() == INACTIVE


def test_an_assertion_used_at_revocation_cannot_be_used_again(
    party: PartyFactory, served: ServedApp, signer: ECKey
) -> None:
    p = _key_party(party, signer)
    issued = _post_assertion(p, _assertion(signer, p.client_id, served.issuer + "/token")).json()
    base = {"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}
    once = _assertion(signer, p.client_id, served.issuer)
    revoked = p.rp.backend.post(
        "/revoke", data={**base, "client_assertion": once, "token": issued["access_token"]}
    )
    assert revoked.status_code == 200, revoked.text
    replayed = p.rp.backend.post("/introspect", data={**base, "client_assertion": once, "token": "x"})
    _error(replayed, 400, "invalid_client")
    _error(_post_assertion(p, once), 400, "invalid_client")


def test_one_assertion_raced_by_two_requests_authenticates_once(
    party: PartyFactory, served: ServedApp, signer: ECKey
) -> None:
    p = _key_party(party, signer)
    for _ in range(5):
        assertion = _assertion(signer, p.client_id, served.issuer + "/token")
        results = race_raw(
            p,
            "/token",
            grant_type="client_credentials",
            client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            client_assertion=assertion,
        )
        assert sorted(r.status_code for r in results) == [200, 400], [r.text for r in results]
        loser = next(r for r in results if r.status_code == 400)
        assert loser.json()["error"] == "invalid_client"
