"""Groups become roles: the `groups` claim in userinfo (and ID tokens) when the scope asks for it."""

from __future__ import annotations

import uuid

from idp import eids, secrets
from idp.storage import tables
from oidc.claims import claims_for
from tests.scim.conftest import Scim


def test_claims_for_releases_groups_only_by_scope() -> None:
    person = eids.EID("e1", "t1", "ana", "active")
    assert "groups" not in claims_for(person, "openid profile", groups=["Admins"])
    assert claims_for(person, "openid groups", groups=["Admins", "Signers"])["groups"] == [
        "Admins",
        "Signers",
    ]
    assert claims_for(person, "openid groups")["groups"] == []


def _access_token(scim: Scim, eid_id: str, scope: str) -> str:
    client = scim.app.client_app(scim.tenant, redirect_uris=["https://rp.example/cb"]).client
    value = secrets.new_secret()

    def unit(tx: object) -> None:
        tx.conn.execute(  # type: ignore[attr-defined]
            tables.tokens.insert().values(
                digest=secrets.digest(value),
                kind="access",
                grant_id=str(uuid.uuid4()),
                client_id=client.client_id,
                tenant_id=scim.tenant.id,
                eid_id=eid_id,
                scope=scope,
                issued_at=tx.now,
                expires_at=tx.now + 600,  # type: ignore[attr-defined]
            )
        )

    scim.app.write(unit)
    return value


def test_userinfo_carries_provisioned_groups(scim: Scim) -> None:
    user = scim.user("role.holder@example.com")
    scim.group("Signers", [user["id"]])
    scim.group("Admins", [user["id"]])
    scim.group("Others")
    with scim.app.client() as http:
        token = _access_token(scim, user["id"], "openid groups")
        info = http.get("/userinfo", headers={"Authorization": f"Bearer {token}"}).json()
        assert info["groups"] == ["Admins", "Signers"]
        token = _access_token(scim, user["id"], "openid")
        assert "groups" not in http.get("/userinfo", headers={"Authorization": f"Bearer {token}"}).json()
        discovery = http.get("/.well-known/openid-configuration").json()
        assert "groups" in discovery["scopes_supported"] and "groups" in discovery["claims_supported"]
