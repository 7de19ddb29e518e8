"""One hostile member at a time in the administration API's people: users (eIDs) and groups.

Creation and change of each (every member of the body, and every attribute inside ``attributes``),
the users' paging parameters, ids in paths, and the actions: suspend, enable, erase, delete, add and
remove a member. Every refusal is an RFC 9457 problem below 500 that changes none of the tenant's
rows nor the audit trail; afterwards a valid request still does what it says (the sweep and its
helpers: :mod:`tests.web.test_hostile_steps_admin`, :mod:`tests.support.hostile`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any

import httpx

from tests.admin.conftest import Admin
from tests.support.hostile import (
    NAME_TEXT,
    OPTIONAL,
    admin_rows,
    assert_paged,
    body_variants,
    content_types,
    id_requests,
    nested_variants,
    refused_without_change,
    requested,
    sent,
)
from tests.support.hostile import admins as admins  # this tenant's admin and another's
from tests.support.hostile import app as app  # the module's served app, per engine

ATTRIBUTES: dict[str, Any] = {
    "given_name": "Nina",
    "family_name": "Kovač",
    "email": "nina.k@example.com",
    "phone_number": "+38640123456",
    "country": "SI",
    "birthdate": "1990-04-01",
    "national_id": "1234567890123",
}
NEW_USER: dict[str, Any] = {"username": "nina.k", "attributes": ATTRIBUTES}
# per member, the cases that are valid input there (free text is a valid name; absent is allowed)
ATTRIBUTE_CASES: dict[str, Collection[str]] = {
    "given_name": {*NAME_TEXT, *OPTIONAL},
    "family_name": {*NAME_TEXT, *OPTIONAL},
    "email": OPTIONAL,  # the username is given
    "phone_number": OPTIONAL,
    "country": OPTIONAL,
    "birthdate": OPTIONAL,
    "national_id": {*NAME_TEXT, *OPTIONAL},
}
# in a change, every member may be left out and null removes an attribute
CHANGED_ATTRIBUTE_CASES = {name: {*cases, *OPTIONAL} for name, cases in ATTRIBUTE_CASES.items()}
CHANGE: dict[str, Any] = {
    "username": "nina.kovac",
    "attributes": {**ATTRIBUTES, "given_name": "Nineta", "email": "nineta@example.com"},
}
REASON: dict[str, Any] = {"reason": "suspected misuse"}
USER_CALLS = [
    ("GET", "", None),
    ("DELETE", "", None),
    ("PATCH", "", {"username": "renamed"}),
    ("POST", "/suspend", REASON),
    ("POST", "/enable", REASON),
]


def _user(a: Admin, username: str, email: str) -> str:
    made = a.post("/users", {"username": username, "attributes": {"email": email}})
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


# -- users --------------------------------------------------------------------------------------------


def test_create_user_one_member_at_a_time(admins: tuple[Admin, Admin]) -> None:
    a, other = admins
    _user(a, "taken", "taken@example.com")
    url = a.base + "/users"

    def cases() -> Iterator[tuple[str, httpx.Response]]:
        skip = {"username": {*NAME_TEXT, *OPTIONAL}}
        yield from sent(a, "POST", url, body_variants(NEW_USER, list(NEW_USER), skip, text_member="username"))
        yield from sent(
            a, "POST", url, nested_variants(NEW_USER, "attributes", ATTRIBUTE_CASES, text_member="given_name")
        )
        for case, value in {
            "username taken": "taken",
            "username taken in upper case": "TAKEN",
            "username too long": "n" * 321,
        }.items():
            yield case, a.http.post(url, json={**NEW_USER, "username": value})
        for case, attributes in {
            "email taken": {"email": "TAKEN@example.com"},
            "attribute not in the API": {"nationality": "SVN"},
            "email without domain": {"email": "nina@"},
            "email two at": {"email": "a@b@example.com"},
            "email header": {"email": "nina@example.com\r\nBcc: all@example.com"},
            "email dotless": {"email": "nina@localhost"},
            "phone with spaces": {"phone_number": "+386 40 123 456"},
            "phone without plus": {"phone_number": "0038640123456"},
            "country three letters": {"country": "SVN"},
            "birthdate no such day": {"birthdate": "1990-02-30"},
            "birthdate short month": {"birthdate": "1990-4-1"},
            "birthdate words": {"birthdate": "yesterday"},
            "birthdate with time": {"birthdate": "1990-04-01T00:00:00Z"},
            "national_id 501": {"national_id": "1" * 501},
        }.items():
            yield (
                case,
                a.http.post(
                    url, json={"username": "nina.k", "attributes": {"email": "n@x.example", **attributes}}
                ),
            )
        yield "no username nor email", a.http.post(url, json={"attributes": {"given_name": "Nina"}})
        yield from content_types(a, "POST", url, NEW_USER)

    refused_without_change(a, cases(), f"POST {url}")
    theirs = other.post("/users", NEW_USER)  # the same name in another tenant is no clash
    assert theirs.status_code == 201, theirs.text
    made = a.post("/users", NEW_USER)
    assert made.status_code == 201, made.text
    assert made.json()["attributes"] == ATTRIBUTES and made.json()["username"] == "nina.k"


def test_change_user_one_member_at_a_time(admins: tuple[Admin, Admin]) -> None:
    a, _ = admins
    mine = a.post("/users", NEW_USER).json()["id"]
    _user(a, "taken", "taken@example.com")
    url = f"{a.base}/users/{mine}"

    def cases() -> Iterator[tuple[str, httpx.Response]]:
        skip = {"username": {*NAME_TEXT, "missing"}, "attributes": OPTIONAL}
        yield from sent(a, "PATCH", url, body_variants(CHANGE, list(CHANGE), skip, text_member="username"))
        yield from sent(
            a,
            "PATCH",
            url,
            nested_variants(CHANGE, "attributes", CHANGED_ATTRIBUTE_CASES, text_member="given_name"),
        )
        yield "username taken", a.http.patch(url, json={"username": "Taken"})
        yield "email taken", a.http.patch(url, json={"attributes": {"email": "taken@EXAMPLE.com"}})
        yield "birthdate no such day", a.http.patch(url, json={"attributes": {"birthdate": "2001-02-29"}})
        yield "attribute not in the API", a.http.patch(url, json={"attributes": {"document_number": "X"}})
        yield from content_types(a, "PATCH", url, CHANGE)

    refused_without_change(a, cases(), f"PATCH {url}")
    changed = a.patch(
        f"/users/{mine}", {**CHANGE, "attributes": {"email": "nineta@example.com", "phone_number": None}}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["username"] == "nina.kovac"
    assert changed.json()["attributes"]["email"] == "nineta@example.com"
    assert "phone_number" not in changed.json()["attributes"]


def test_suspend_and_enable_one_member_at_a_time(admins: tuple[Admin, Admin]) -> None:
    a, _ = admins
    mine = a.post("/users", NEW_USER).json()["id"]
    skip = {"reason": {*NAME_TEXT, *OPTIONAL}}
    for action in ("suspend", "enable"):
        url = f"{a.base}/users/{mine}/{action}"
        cases = sent(a, "POST", url, body_variants(REASON, list(REASON), skip, text_member="reason"))
        refused_without_change(a, cases, f"POST {url}")
        refused_without_change(a, content_types(a, "POST", url, REASON), f"POST {url}")
    suspended = a.post(f"/users/{mine}/suspend", REASON)
    assert suspended.status_code == 200 and suspended.json()["status"] == "suspended", suspended.text
    enabled = a.post(f"/users/{mine}/enable", {})
    assert enabled.status_code == 200 and enabled.json()["status"] == "active", enabled.text


def test_list_users_hostile_query(admins: tuple[Admin, Admin]) -> None:
    a, _ = admins
    for i in range(3):
        _user(a, f"n{i}", f"n{i}@example.com")
    assert_paged(a, "/users", 3)


def test_user_ids_in_paths_and_actions(admins: tuple[Admin, Admin]) -> None:
    a, other = admins
    mine = a.post("/users", NEW_USER).json()["id"]
    theirs = other.post("/users", NEW_USER).json()["id"]
    their_rows = admin_rows(other.app, other.tenant.id)

    def cases() -> Iterator[tuple[str, httpx.Response]]:
        yield from id_requests(a, "/users", theirs, USER_CALLS)
        for method, path, body in USER_CALLS:
            yield (
                f"{method}{path} under another tenant",
                a.http.request(
                    method, f"/admin/v1/tenants/{other.tenant.id}/users/{theirs}{path}", json=body
                ),
            )
            yield (
                f"{method}{path} with the slug of another tenant",
                a.http.request(
                    method, f"/admin/v1/tenants/{other.tenant.slug}/users/{mine}{path}", json=body
                ),
            )
        yield "PUT a user", a.put(f"/users/{mine}", NEW_USER)
        yield "DELETE the list", a.delete("/users")
        yield "GET suspend", a.get(f"/users/{mine}/suspend")

    refused_without_change(a, cases(), "user ids")
    assert admin_rows(other.app, other.tenant.id) == their_rows, "another tenant's user changed"

    assert a.delete(f"/users/{mine}").status_code == 204
    refused_without_change(
        a, requested(a, {f"erased, {m}{p}": (m, f"/users/{mine}{p}", b) for m, p, b in USER_CALLS}), "erased"
    )
    assert a.post("/users", NEW_USER).status_code == 201  # the name is free again


# -- groups -------------------------------------------------------------------------------------------


def test_create_and_change_group_one_member_at_a_time(admins: tuple[Admin, Admin]) -> None:
    a, other = admins
    member, next_member = _user(a, "m1", "m1@example.com"), _user(a, "m2", "m2@example.com")
    theirs = _user(other, "t1", "t1@example.com")
    new = {"display_name": "Signers", "external_id": "ext-1", "members": [member]}
    change = {"display_name": "Approvers", "external_id": "ext-2", "members": [next_member]}
    made = a.post("/groups", new).json()["id"]
    url, group_url = a.base + "/groups", f"{a.base}/groups/{made}"

    def cases() -> Iterator[tuple[str, httpx.Response]]:
        create_skip = {
            "display_name": NAME_TEXT,
            "external_id": {*NAME_TEXT, *OPTIONAL},
            "members": {"missing"},
            "members[]": {"100 items"},  # the same member a hundred times is that member
        }
        yield from sent(
            a, "POST", url, body_variants(new, list(new), create_skip, text_member="display_name")
        )
        change_skip = {
            "display_name": {*NAME_TEXT, "missing"},
            "external_id": {*NAME_TEXT, *OPTIONAL},
            "members": OPTIONAL,
            "members[]": {"100 items"},
        }
        yield from sent(
            a,
            "PATCH",
            group_url,
            body_variants(change, list(change), change_skip, text_member="display_name"),
        )
        for method, target in (("POST", url), ("PATCH", group_url)):
            for case, value in {
                "member of another tenant": [theirs],
                "a member and one of another tenant": [member, theirs],
                "1001 members": [member] * 1001,
            }.items():
                yield f"{method} {case}", a.http.request(method, target, json={**new, "members": value})
            yield (
                f"{method} display_name 257",
                a.http.request(method, target, json={**new, "display_name": "g" * 257}),
            )
            yield (
                f"{method} external_id 321",
                a.http.request(method, target, json={**new, "external_id": "e" * 321}),
            )
            yield from content_types(a, method, target, new)
        yield "PATCH display_name null", a.http.patch(group_url, json={"display_name": None})

    refused_without_change(a, cases(), "groups")
    changed = a.patch(f"/groups/{made}", change)
    assert changed.status_code == 200, changed.text
    assert changed.json()["members"] == [next_member] and changed.json()["display_name"] == "Approvers"
    again = a.post("/groups", {**new, "members": [member, next_member]})
    assert again.status_code == 201 and sorted(again.json()["members"]) == sorted([member, next_member])


def test_group_ids_in_paths_and_membership(admins: tuple[Admin, Admin]) -> None:
    a, other = admins
    member, outsider = _user(a, "m1", "m1@example.com"), _user(a, "m2", "m2@example.com")
    their_member = _user(other, "t1", "t1@example.com")
    mine = a.post("/groups", {"display_name": "Signers", "members": [member]}).json()["id"]
    theirs = other.post("/groups", {"display_name": "Signers", "members": [their_member]}).json()["id"]
    their_rows = admin_rows(other.app, other.tenant.id)
    group_calls = [
        ("GET", "", None),
        ("DELETE", "", None),
        ("PATCH", "", {"display_name": "Renamed"}),
        ("PUT", f"/members/{member}", None),
        ("DELETE", f"/members/{member}", None),
    ]

    def cases() -> Iterator[tuple[str, httpx.Response]]:
        yield from id_requests(a, "/groups", theirs, group_calls)
        yield from id_requests(
            a, f"/groups/{mine}/members", their_member, [("PUT", "", None), ("DELETE", "", None)]
        )
        yield "DELETE a user not a member", a.delete(f"/groups/{mine}/members/{outsider}")
        for method in ("GET", "DELETE", "PATCH"):
            yield (
                f"{method} under another tenant",
                a.http.request(
                    method, f"/admin/v1/tenants/{other.tenant.id}/groups/{theirs}", json={"display_name": "X"}
                ),
            )
        yield (
            "PUT their member under another tenant",
            a.http.put(f"/admin/v1/tenants/{other.tenant.id}/groups/{theirs}/members/{member}"),
        )
        yield "PUT a group", a.put(f"/groups/{mine}", {"display_name": "X"})
        yield "POST a member", a.post(f"/groups/{mine}/members/{outsider}")
        yield "GET a member", a.get(f"/groups/{mine}/members/{member}")

    refused_without_change(a, cases(), "group ids")
    assert admin_rows(other.app, other.tenant.id) == their_rows, "another tenant's group changed"

    assert a.put(f"/groups/{mine}/members/{outsider}").status_code == 204
    assert a.delete(f"/groups/{mine}/members/{member}").status_code == 204
    assert a.get(f"/groups/{mine}").json()["members"] == [outsider]
    assert a.delete(f"/groups/{mine}").status_code == 204
    gone = {f"deleted, {m}{p}": (m, f"/groups/{mine}{p}", b) for m, p, b in group_calls}
    refused_without_change(a, requested(a, gone), "deleted group")
