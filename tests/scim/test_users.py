"""Users: CRUD, uniqueness, ETags, tenant isolation and what active=false and DELETE do to an eID."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from idp import audit, eids, secrets, sessions
from idp.storage import tables
from tests.scim.conftest import CORE_USER, ENTERPRISE, Scim, assert_error


def test_create_read_replace_delete(scim: Scim) -> None:
    created = scim.user(
        "Barbara.Jensen@example.com",
        externalId="ext-1",
        name={"givenName": "Barbara", "familyName": "Jensen", "formatted": "Ms. Barbara Jensen"},
        emails=[
            {"value": "bjensen@example.com", "type": "work", "primary": True},
            {"value": "babs@home.example", "type": "home"},
        ],
        phoneNumbers=[{"value": "+386 40 123 456", "type": "mobile"}],
        title="Tour Guide",
        **{ENTERPRISE: {"employeeNumber": "701984", "department": "Tours", "manager": {"value": "m-1"}}},
    )
    uid = created["id"]
    assert created["schemas"] == [CORE_USER, ENTERPRISE]
    assert created["meta"]["location"] == f"{scim.base}/Users/{uid}"
    assert created["active"] is True
    # the eID holds what maps to its attributes
    person = scim.app.run(scim.app.state.db.read(lambda conn: eids.get(conn, uid)))
    assert person.tenant_id == scim.tenant.id
    assert person.username == "Barbara.Jensen@example.com"
    assert person.value("email") == "bjensen@example.com"
    assert person.value("given_name") == "Barbara"
    assert person.value("phone_number") == "+38640123456"

    got = scim.http.get(f"/Users/{uid}")
    assert got.status_code == 200
    assert got.headers["etag"] == created["meta"]["version"]
    body = got.json()
    assert body[ENTERPRISE]["department"] == "Tours"
    assert body["emails"][1] == {"value": "babs@home.example", "type": "home"}

    replaced = scim.http.put(
        f"/Users/{uid}",
        json={"schemas": [CORE_USER], "userName": "bjensen@example.com", "name": {"givenName": "Babs"}},
    )
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert body["name"] == {"givenName": "Babs"}
    assert "emails" not in body and "title" not in body and ENTERPRISE not in body
    person = scim.app.run(scim.app.state.db.read(lambda conn: eids.get(conn, uid)))
    assert person.value("email") is None and person.value("family_name") is None

    assert scim.http.delete(f"/Users/{uid}").status_code == 204
    assert_error(scim.http.get(f"/Users/{uid}"), 404)
    assert_error(scim.http.delete(f"/Users/{uid}"), 404)


def test_username_is_unique_without_regard_to_case(scim: Scim) -> None:
    scim.user("ana.novak")
    response = scim.http.post("/Users", json={"schemas": [CORE_USER], "userName": "ANA.NOVAK"})
    assert_error(response, 409, "uniqueness")
    other = scim.user("someone.else")
    response = scim.http.put(f"/Users/{other['id']}", json={"schemas": [CORE_USER], "userName": "Ana.Novak"})
    assert_error(response, 409, "uniqueness")


def test_etags(scim: Scim) -> None:
    user = scim.user("etag.user")
    uid, version = user["id"], user["meta"]["version"]
    assert scim.http.get(f"/Users/{uid}", headers={"If-None-Match": version}).status_code == 304
    stale = 'W/"0.0"'
    patch = [{"op": "replace", "path": "title", "value": "x"}]
    assert_error(scim.patch(f"/Users/{uid}", patch, headers={"If-Match": stale}), 412)
    ok = scim.patch(f"/Users/{uid}", patch, headers={"If-Match": version})
    assert ok.status_code == 200
    assert ok.headers["etag"] != version
    assert scim.http.get(f"/Users/{uid}", headers={"If-None-Match": version}).status_code == 200
    assert_error(scim.http.delete(f"/Users/{uid}", headers={"If-Match": version}), 412)
    assert scim.http.delete(f"/Users/{uid}", headers={"If-Match": ok.headers["etag"]}).status_code == 204


def test_other_tenants_cannot_see_or_touch(scim: Scim) -> None:
    user = scim.user("mine@example.com")
    group = scim.group("Mine", [user["id"]])
    with scim.other_tenant_client() as other:
        assert_error(other.get(f"/Users/{user['id']}"), 404)
        assert_error(other.delete(f"/Users/{user['id']}"), 404)
        assert_error(other.get(f"/Groups/{group['id']}"), 404)
        body = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": False}],
        }
        assert_error(other.patch(f"/Users/{user['id']}", json=body), 404)
        assert other.get("/Users").json()["totalResults"] == 0
        found = other.get("/Users", params={"filter": 'userName eq "mine@example.com"'}).json()
        assert found["totalResults"] == 0
        # a group of the other tenant cannot take this tenant's user as a member
        response = other.post(
            "/Groups",
            json={
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "x",
                "members": [{"value": user["id"]}],
            },
        )
        assert_error(response, 400, "invalidValue")
    assert scim.http.get(f"/Users/{user['id']}").json()["active"] is True


def _session_and_token(scim: Scim, eid_id: str, username: str) -> tuple[str, str]:
    client = scim.app.client_app(scim.tenant, redirect_uris=["https://rp.example/cb"]).client

    def unit(tx: object) -> tuple[str, str]:
        issued = sessions.authenticate(
            tx,  # type: ignore[arg-type]
            previous=None,
            tenant_id=scim.tenant.id,
            eid_id=eid_id,
            username=username,
            acr="urn:eid:loa:basic",
            amr=["email"],
            ttl=3600,
            client_ip=None,
            method="email_link",
        )
        digest = secrets.token_key(secrets.new_token())
        tx.conn.execute(  # type: ignore[attr-defined]
            tables.tokens.insert().values(
                digest=digest,
                kind="access",
                grant_id=str(uuid.uuid4()),
                client_id=client.client_id,
                tenant_id=scim.tenant.id,
                eid_id=eid_id,
                sid=issued.session.sid,
                scope="openid",
                issued_at=tx.now,
                expires_at=tx.now + 3600,  # type: ignore[attr-defined]
            )
        )
        return issued.session.sid, digest

    return scim.app.write(unit)


def test_deactivation_suspends_ends_sessions_and_revokes_tokens_at_once(scim: Scim) -> None:
    user = scim.user("leaver@example.com")
    sid, digest = _session_and_token(scim, user["id"], "leaver@example.com")
    response = scim.patch(f"/Users/{user['id']}", [{"op": "Replace", "path": "active", "value": "False"}])
    assert response.status_code == 200 and response.json()["active"] is False

    def state(conn: object) -> tuple[str, object, object]:
        c = conn.execute  # type: ignore[attr-defined]
        status = c(select(tables.eids.c.status).where(tables.eids.c.id == user["id"])).scalar_one()
        ended = c(select(tables.sso_sessions.c.ended_at).where(tables.sso_sessions.c.sid == sid)).scalar_one()
        revoked = c(select(tables.tokens.c.revoked_at).where(tables.tokens.c.digest == digest)).scalar_one()
        return status, ended, revoked

    status, ended, revoked = scim.app.run(scim.app.state.db.read(state))
    assert status == "suspended" and ended is not None and revoked is not None
    # Okta's shape re-enables
    response = scim.patch(f"/Users/{user['id']}", [{"op": "replace", "value": {"active": True}}])
    assert response.json()["active"] is True
    assert scim.app.run(scim.app.state.db.read(state))[0] == "active"


def test_delete_erases_personal_data_and_keeps_a_pseudonymous_trail(scim: Scim) -> None:
    user = scim.user(
        "erase.me@example.com",
        name={"givenName": "Erika", "familyName": "Mustermann"},
        emails=[{"value": "erase.me@example.com", "type": "work", "primary": True}],
        title="Secret Title",
    )
    uid = user["id"]
    _session_and_token(scim, uid, "erase.me@example.com")
    assert scim.http.delete(f"/Users/{uid}").status_code == 204

    def leftovers(conn: object) -> dict[str, int]:
        c = conn.execute  # type: ignore[attr-defined]
        counts = {}
        for table, column in (
            (tables.eids, tables.eids.c.id),
            (tables.eid_attributes, tables.eid_attributes.c.eid_id),
            (tables.scim_users, tables.scim_users.c.eid_id),
            (tables.scim_values, tables.scim_values.c.owner_id),
            (tables.sso_sessions, tables.sso_sessions.c.eid_id),
            (tables.tokens, tables.tokens.c.eid_id),
        ):
            counts[table.name] = len(c(select(column).where(column == uid)).all())
        return counts

    assert set(scim.app.run(scim.app.state.db.read(leftovers)).values()) == {0}
    trail = scim.app.run(
        scim.app.state.db.read(
            lambda conn: (
                conn.execute(select(tables.audit_events).where(tables.audit_events.c.eid_id == uid))
                .mappings()
                .all()
            )
        )
    )
    assert "eid.erased" in [e["event_type"] for e in trail]
    # what provisioning wrote names no one; login events keep the username the audit contract
    # requires (the hash chain cannot be edited afterwards)
    written = [dict(e) for e in trail if not e["event_type"].startswith("session.")]
    assert {e["event_type"] for e in written} >= {"eid.created", "scim.user_created", "eid.erased"}
    text = repr(written)
    for personal in ("erase.me", "Erika", "Mustermann", "Secret Title"):
        assert personal not in text
    assert scim.app.run(scim.app.state.db.read(audit.verify)).events > 0
