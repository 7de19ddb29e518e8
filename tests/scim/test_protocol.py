"""Authentication, Bulk, discovery and hostile input: always a SCIM Error, never a 500."""

from __future__ import annotations

import json

import httpx
import pytest

from idp.cli import main
from idp.scim import tokens
from tests.scim.conftest import CORE_GROUP, CORE_USER, Scim, assert_error

BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


def test_bearer_tokens(scim: Scim) -> None:
    anonymous = httpx.Client(base_url=scim.base, verify=scim.app.ssl_context())
    with anonymous:
        for headers in (
            {},
            {"Authorization": "Bearer nope"},
            {"Authorization": "Basic dXNlcjpwYXNz"},
            {"Authorization": "Bearer " + "scim_" + "x" * 500},
        ):
            response = anonymous.get("/Users", headers=headers)
            assert_error(response, 401)
            assert response.headers["www-authenticate"].startswith("Bearer")
        new = scim.app.write(lambda tx: tokens.create(tx, tenant_id=scim.tenant.id, name="temp"))
        auth = {"Authorization": f"Bearer {new.secret}"}
        assert anonymous.get("/Users", headers=auth).status_code == 200
        scim.app.write(lambda tx: tokens.revoke(tx, token_id=new.token.id))
        assert_error(anonymous.get("/Users", headers=auth), 401)
    listed = scim.app.run(
        scim.app.state.db.read(lambda conn: tokens.list_for(conn, tenant_id=scim.tenant.id))
    )
    assert [t.revoked_at is not None for t in listed] == [False, True]


def test_cli_creates_lists_and_revokes(
    tmp_path: object, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pathlib import Path

    from idp.storage import migrate

    directory = Path(str(tmp_path))
    url = f"sqlite+aiosqlite:///{directory / 'idp.db'}"
    migrate.upgrade(url)
    monkeypatch.setenv("IDP_DATABASE_URL", url)
    monkeypatch.setenv("IDP_VAR_DIR", str(directory / "var"))
    assert main(["tenant", "create", "--slug", "acme", "--name", "Acme", "--json"]) == 0
    capsys.readouterr()
    assert main(["scim-token", "create", "--tenant", "acme", "--name", "Entra ID", "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["token"].startswith("scim_") and created["name"] == "Entra ID"
    assert main(["scim-token", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [t["id"] for t in listed] == [created["id"]] and "token" not in listed[0]
    assert main(["scim-token", "revoke", created["id"], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["revoked_at"] is not None
    assert main(["scim-token", "revoke", "no-such-id", "--json"]) == 2
    assert main(["scim-token", "create", "--tenant", "nope", "--json"]) == 2


def test_bulk_with_bulk_ids_and_fail_on_errors(scim: Scim) -> None:
    body = {
        "schemas": [BULK],
        "Operations": [
            # the group refers to a user created later in the same request (RFC 7644 §3.7.2)
            {
                "method": "POST",
                "path": "/Groups",
                "bulkId": "g1",
                "data": {
                    "schemas": [CORE_GROUP],
                    "displayName": "Tour Guides",
                    "members": [{"type": "User", "value": "bulkId:u1"}],
                },
            },
            {
                "method": "POST",
                "path": "/Users",
                "bulkId": "u1",
                "data": {"schemas": [CORE_USER], "userName": "Alice"},
            },
            {
                "method": "POST",
                "path": "/Users",
                "bulkId": "u2",
                "data": {"schemas": [CORE_USER], "userName": "alice"},
            },
            {
                "method": "PATCH",
                "path": "/Users/bulkId:u1",
                "data": {
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "add", "path": "title", "value": "Guide"}],
                },
            },
            {"method": "DELETE", "path": "/Users/does-not-exist"},
        ],
    }
    response = scim.http.post("/Bulk", json=body)
    assert response.status_code == 200, response.text
    ops = response.json()["Operations"]
    assert [(o["method"], o["status"]) for o in ops] == [
        ("POST", "201"),
        ("POST", "201"),
        ("POST", "409"),
        ("PATCH", "200"),
        ("DELETE", "404"),
    ]
    assert ops[2]["response"]["scimType"] == "uniqueness"
    user_id = ops[1]["location"].rsplit("/", 1)[1]
    group = scim.http.get(ops[0]["location"]).json()
    assert [m["value"] for m in group["members"]] == [user_id]
    assert scim.http.get(f"/Users/{user_id}").json()["title"] == "Guide"

    stop = {
        "schemas": [BULK],
        "failOnErrors": 1,
        "Operations": [
            {
                "method": "POST",
                "path": "/Users",
                "bulkId": "a",
                "data": {"schemas": [CORE_USER], "userName": "alice"},
            },
            {
                "method": "POST",
                "path": "/Users",
                "bulkId": "b",
                "data": {"schemas": [CORE_USER], "userName": "bob"},
            },
        ],
    }
    ops = scim.http.post("/Bulk", json=stop).json()["Operations"]
    assert [o["status"] for o in ops] == ["409"]
    assert scim.http.get("/Users", params={"filter": 'userName eq "bob"'}).json()["totalResults"] == 0
    cycle = {
        "schemas": [BULK],
        "Operations": [
            {
                "method": "POST",
                "path": "/Groups",
                "bulkId": "x",
                "data": {"schemas": [CORE_GROUP], "displayName": "x", "members": [{"value": "bulkId:y"}]},
            },
            {
                "method": "POST",
                "path": "/Groups",
                "bulkId": "y",
                "data": {"schemas": [CORE_GROUP], "displayName": "y", "members": [{"value": "bulkId:x"}]},
            },
        ],
    }
    assert [o["status"] for o in scim.http.post("/Bulk", json=cycle).json()["Operations"]] == ["409", "409"]
    too_many = {
        "schemas": [BULK],
        "Operations": [{"method": "DELETE", "path": f"/Users/{i}"} for i in range(101)],
    }
    assert_error(scim.http.post("/Bulk", json=too_many), 400, "tooMany")
    assert_error(scim.http.post("/Bulk", json={"Operations": []}), 400, "invalidSyntax")


def test_discovery_tells_the_truth(scim: Scim) -> None:
    config = scim.http.get("/ServiceProviderConfig").json()
    assert config["patch"]["supported"] and config["bulk"]["supported"] and config["etag"]["supported"]
    assert config["filter"] == {"supported": True, "maxResults": 200}
    assert config["changePassword"]["supported"] is False
    schemas = {s["id"]: s for s in scim.http.get("/Schemas").json()["Resources"]}
    user_attributes = {a["name"] for a in schemas[CORE_USER]["attributes"]}
    assert "password" not in user_attributes and {"userName", "emails", "groups"} <= user_attributes
    types = scim.http.get("/ResourceTypes").json()["Resources"]
    assert [t["endpoint"] for t in types] == ["/Users", "/Groups"]
    assert scim.http.get("/ResourceTypes/User").json()["schema"] == CORE_USER
    assert_error(scim.http.get("/ResourceTypes/Printer"), 404)
    assert_error(scim.http.get("/Schemas/urn:nope"), 404)


HOSTILE_USER_BODIES = [
    b"{not json",
    b"[]",
    b'"a string"',
    json.dumps({"userName": "no-schemas"}).encode(),
    json.dumps({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "userName": "x"}).encode(),
    json.dumps({"schemas": [CORE_USER, "urn:evil"], "userName": "x"}).encode(),
    json.dumps({"schemas": [CORE_USER]}).encode(),
    json.dumps({"schemas": [CORE_USER], "userName": "x", "nosuch": 1}).encode(),
    json.dumps({"schemas": [CORE_USER], "userName": ["a", "b"]}).encode(),
    json.dumps({"schemas": [CORE_USER], "userName": "x", "emails": [{"value": "not-an-email"}]}).encode(),
    json.dumps({"schemas": [CORE_USER], "userName": "x", "emails": "x@y.example"}).encode(),
    json.dumps({"schemas": [CORE_USER], "userName": "x", "active": "perhaps"}).encode(),
    json.dumps({"schemas": [CORE_USER], "userName": "x", "name": "Bob"}).encode(),
    json.dumps({"schemas": [CORE_USER], "userName": "x" * 5000}).encode(),
    json.dumps(
        {"schemas": [CORE_USER], "userName": "x", "emails": [{"value": f"{i}@a.example"} for i in range(500)]}
    ).encode(),
    b"\xff\xfe\x00garbage",
]


@pytest.mark.parametrize("raw", HOSTILE_USER_BODIES)
def test_hostile_bodies_get_scim_errors(scim: Scim, raw: bytes) -> None:
    response = scim.http.post("/Users", content=raw)
    assert 400 <= response.status_code < 500, response.text
    assert_error(response, response.status_code)


def test_hostile_requests_get_scim_errors(scim: Scim) -> None:
    uid = scim.user("target")["id"]
    assert_error(
        scim.http.post("/Users", content=b"{}", headers={"Content-Type": "text/plain"}), 400, "invalidSyntax"
    )
    assert_error(scim.http.post("/Users", content=b" " * (1_048_577)), 413)
    assert_error(scim.http.patch(f"/Users/{uid}", content=b"null"), 400, "invalidSyntax")
    assert_error(scim.http.delete("/Users"), 405)
    assert_error(scim.http.get(f"/Users/{uid}/extra"), 404)
    # a PUT that names another id changes nothing but this resource (id is read-only)
    put = scim.http.put(f"/Users/{uid}", json={"schemas": [CORE_USER], "userName": "target", "id": "other"})
    assert put.status_code == 200 and put.json()["id"] == uid
    assert_error(scim.http.get("/Users", params={"attributes": 'emails[type eq "work"]'}), 400)
    assert scim.http.get(f"/Users/{uid}").status_code == 200
