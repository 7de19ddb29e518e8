"""PATCH in the shapes Microsoft Entra ID and Okta send (bodies as their SCIM docs show them)."""

from __future__ import annotations

from tests.scim.conftest import CORE_GROUP, CORE_USER, ENTERPRISE, PATCH_OP, Scim, assert_error


def test_entra_create_user_and_pathless_replace(scim: Scim) -> None:
    # Entra ID's "Create User" request
    body = {
        "schemas": [CORE_USER, ENTERPRISE],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
        "active": True,
        "emails": [
            {
                "primary": True,
                "type": "work",
                "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com",
            }
        ],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": [],
    }
    created = scim.http.post("/Users", json=body)
    assert created.status_code == 201, created.text
    uid = created.json()["id"]
    # Entra ID's path-less replace with dotted and URN-prefixed keys, booleans as strings
    response = scim.patch(
        f"/Users/{uid}",
        [
            {
                "op": "Replace",
                "value": {
                    "displayName": "Ryan Leenay",
                    "name.givenName": "Ryan",
                    "name.familyName": "Leenay",
                    f"{ENTERPRISE}:department": "Sales",
                    "active": "False",
                },
            },
            {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": "manager-id-1"},
            {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "ryan@contoso.example"},
            {"op": "Add", "path": 'phoneNumbers[type eq "mobile"].value', "value": "+1 555 0100 123"},
        ],
    )
    assert response.status_code == 200, response.text
    user = response.json()
    assert user["displayName"] == "Ryan Leenay"
    assert user["name"] == {"formatted": "givenName familyName", "familyName": "Leenay", "givenName": "Ryan"}
    assert user[ENTERPRISE] == {"department": "Sales", "manager": {"value": "manager-id-1"}}
    assert user["active"] is False
    assert user["emails"] == [{"primary": True, "type": "work", "value": "ryan@contoso.example"}]
    assert user["phoneNumbers"] == [{"type": "mobile", "value": "+1 555 0100 123"}]
    # Entra ID's single-attribute shapes
    response = scim.patch(f"/Users/{uid}", [{"op": "Replace", "path": "active", "value": "True"}])
    assert response.json()["active"] is True
    response = scim.patch(f"/Users/{uid}", [{"op": "Remove", "path": f"{ENTERPRISE}:manager"}])
    assert response.json()[ENTERPRISE] == {"department": "Sales"}
    # Entra ID's "get user by query"
    found = scim.http.get("/Users", params={"filter": f'userName eq "{body["userName"]}"'}).json()
    assert found["totalResults"] == 1
    found = scim.http.get("/Users", params={"filter": 'userName eq "non-existent user"'}).json()
    assert found == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 0,
        "startIndex": 1,
        "itemsPerPage": 0,
        "Resources": [],
    }


def test_entra_group_member_shapes(scim: Scim) -> None:
    a, b, c = (scim.user(n)["id"] for n in ("m.a", "m.b", "m.c"))
    created = scim.http.post(
        "/Groups",
        json={
            "schemas": [CORE_GROUP],
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "displayName",
            "meta": {"resourceType": "Group"},
        },
    )
    assert created.status_code == 201
    gid = created.json()["id"]
    response = scim.patch(
        f"/Groups/{gid}",
        [{"op": "Add", "path": "members", "value": [{"value": a}, {"value": b}, {"value": c}]}],
    )
    assert sorted(m["value"] for m in response.json()["members"]) == sorted([a, b, c])
    # removal with a value-filter path
    response = scim.patch(f"/Groups/{gid}", [{"op": "Remove", "path": f'members[value eq "{a}"]'}])
    assert sorted(m["value"] for m in response.json()["members"]) == sorted([b, c])
    # removal with a path-less value list
    response = scim.patch(f"/Groups/{gid}", [{"op": "Remove", "path": "members", "value": [{"value": b}]}])
    assert [m["value"] for m in response.json()["members"]] == [c]
    response = scim.patch(
        f"/Groups/{gid}",
        [
            {
                "op": "Replace",
                "path": "displayName",
                "value": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName",
            }
        ],
    )
    assert response.json()["displayName"].endswith("updatedDisplayName")
    # Entra ID asks for a group without members, then by filter on a member
    response = scim.http.get(f"/Groups/{gid}", params={"excludedAttributes": "members"})
    assert "members" not in response.json()
    found = scim.http.get(
        "/Groups", params={"filter": f'id eq "{gid}" and members eq "{c}"', "excludedAttributes": "members"}
    )
    assert found.json()["totalResults"] == 1


def test_okta_shapes(scim: Scim) -> None:
    # Okta's "Create the user" request (its password is not stored: not in our schema); Okta's
    # example domain .local is a special-use name that email validation refuses, hence .example
    body = {
        "schemas": [CORE_USER],
        "userName": "test.user@okta.example",
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": True, "value": "test.user@okta.example", "type": "work"}],
        "displayName": "Test User",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": True,
    }
    created = scim.http.post("/Users", json=body)
    assert created.status_code == 201, created.text
    user = created.json()
    assert "password" not in user
    uid = user["id"]
    # Okta deactivates and reactivates with a path-less replace
    off = scim.patch(f"/Users/{uid}", [{"op": "replace", "value": {"active": False}}])
    assert off.json()["active"] is False
    # Okta's profile update is a PUT of the whole user
    put = dict(user, name={"givenName": "Another", "familyName": "User"}, active=True)
    replaced = scim.http.put(f"/Users/{uid}", json=put)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["name"] == {"givenName": "Another", "familyName": "User"}
    assert replaced.json()["active"] is True
    # Okta renames a group with its id in the value
    group = scim.group("Test SCIMv2")
    renamed = scim.patch(
        f"/Groups/{group['id']}",
        [{"op": "replace", "value": {"id": group["id"], "displayName": "Test SCIMv2 renamed"}}],
    )
    assert renamed.json()["displayName"] == "Test SCIMv2 renamed"
    # Okta's member add and remove
    added = scim.patch(
        f"/Groups/{group['id']}",
        [{"op": "add", "path": "members", "value": [{"value": uid, "display": "test.user@okta.example"}]}],
    )
    assert [m["value"] for m in added.json()["members"]] == [uid]
    removed = scim.patch(f"/Groups/{group['id']}", [{"op": "remove", "path": f'members[value eq "{uid}"]'}])
    assert "members" not in removed.json()


def test_rfc_patch_semantics(scim: Scim) -> None:
    user = scim.user("rfc", emails=[{"value": "a@x.example", "type": "work", "primary": True}])
    uid = user["id"]
    response = scim.patch(
        f"/Users/{uid}",
        [
            {
                "op": "add",
                "path": "emails",
                "value": [{"value": "b@x.example", "type": "home", "primary": True}],
            }
        ],
    )
    emails = response.json()["emails"]
    assert [e.get("primary") for e in emails] == [False, True]  # one primary (RFC 7643 §2.4)
    response = scim.patch(f"/Users/{uid}", [{"op": "remove", "path": 'emails[type eq "home"]'}])
    assert [e["value"] for e in response.json()["emails"]] == ["a@x.example"]
    response = scim.patch(
        f"/Users/{uid}",
        [{"op": "replace", "path": "title", "value": "Boss"}, {"op": "remove", "path": "title"}],
    )
    assert "title" not in response.json()
    assert_error(
        scim.patch(
            f"/Users/{uid}",
            [{"op": "replace", "path": 'addresses[type eq "work" or x pr].locality', "value": "x"}],
        ),
        400,
        "invalidPath",
    )
    assert_error(
        scim.patch(f"/Users/{uid}", [{"op": "replace", "path": "id", "value": "mine"}]), 400, "mutability"
    )
    assert_error(scim.patch(f"/Users/{uid}", [{"op": "remove"}]), 400, "noTarget")
    assert_error(scim.patch(f"/Users/{uid}", [{"op": "move", "path": "title"}]), 400, "invalidSyntax")
    assert_error(
        scim.patch(f"/Users/{uid}", [{"op": "add", "path": "nosuch", "value": 1}]), 400, "invalidPath"
    )
    assert_error(
        scim.patch(f"/Users/{uid}", [{"op": "replace", "path": "active", "value": "maybe"}]),
        400,
        "invalidValue",
    )
    bad = scim.http.patch(
        f"/Users/{uid}", json={"Operations": [{"op": "add", "path": "title", "value": "x"}]}
    )
    assert_error(bad, 400, "invalidSyntax")
    assert scim.http.get(f"/Users/{uid}").json()["emails"] == [
        {"value": "a@x.example", "type": "work", "primary": False}
    ]
    _ = PATCH_OP
