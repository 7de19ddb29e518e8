"""Filters (RFC 7644 §3.4.2.2) translated to SQL, pagination, sorting and attribute selection."""

from __future__ import annotations

from typing import Any

import pytest

from idp.scim import filter_syntax as fs
from idp.scim.errors import InvalidFilterError
from tests.scim.conftest import ENTERPRISE, Scim, assert_error


def test_and_binds_tighter_than_or() -> None:
    tree = fs.parse("a eq 1 or b eq 2 and c eq 3")
    assert isinstance(tree, fs.Or) and isinstance(tree.right, fs.And)
    tree = fs.parse("(a eq 1 or b eq 2) and c eq 3")
    assert isinstance(tree, fs.And) and isinstance(tree.left, fs.Or)
    assert fs.parse("x eq 42") == fs.Compare(fs.AttrRef(None, "x", None), "eq", 42)
    assert fs.parse(r'x eq "a\"b"') == fs.Compare(fs.AttrRef(None, "x", None), "eq", 'a"b')


@pytest.mark.parametrize(
    "text",
    ["", "userName", "userName eq", 'userName regex "x"', 'userName eq "x" or', "(a eq 1", 'a eq "x'],
)
def test_malformed_filters_are_refused(text: str) -> None:
    with pytest.raises(InvalidFilterError):
        fs.parse(text)


@pytest.fixture
def people(scim: Scim) -> dict[str, str]:
    rows = [
        ("bjensen", "Barbara", "Jensen", "bjensen@example.com", "work", "Tour Guide", "Tours", True),
        ("jsmith", "John", "Smith", "john@smith.example", "home", "Engineer", "R&D", True),
        ("ajones", "Alice", "Jones", "alice@example.com", "work", None, "R&D", False),
        ("zed_50%", "Zed", "Zulu", "zed@z.example", "other", "Intern", None, True),
    ]
    ids = {}
    for user_name, given, family, email, kind, title, dept, active in rows:
        extra: dict[str, Any] = {
            "name": {"givenName": given, "familyName": family},
            "emails": [{"value": email, "type": kind, "primary": True}],
            "active": active,
        }
        if title:
            extra["title"] = title
        if dept:
            extra[ENTERPRISE] = {"department": dept}
        ids[user_name] = scim.user(user_name, **extra)["id"]
    return ids


def _names(scim: Scim, text: str, **params: Any) -> list[str]:
    response = scim.http.get("/Users", params={"filter": text, **params})
    assert response.status_code == 200, response.text
    return sorted(r["userName"] for r in response.json()["Resources"])


def test_every_operator(scim: Scim, people: dict[str, str]) -> None:
    cases = {
        'userName eq "BJENSEN"': ["bjensen"],
        'userName ne "bjensen"': ["ajones", "jsmith", "zed_50%"],
        'userName co "en"': ["bjensen"],
        'userName sw "J"': ["jsmith"],
        'userName ew "s"': ["ajones"],
        'userName co "50%"': ["zed_50%"],  # LIKE wildcards are literal
        'userName co "_"': ["zed_50%"],
        "title pr": ["bjensen", "jsmith", "zed_50%"],
        'title gt "F"': ["bjensen", "zed_50%"],
        'title ge "Intern"': ["bjensen", "zed_50%"],
        'title lt "Intern"': ["jsmith"],
        'title le "intern"': ["jsmith", "zed_50%"],
        "active eq false": ["ajones"],
        "active eq true and title pr": ["bjensen", "jsmith", "zed_50%"],
        'name.familyName eq "jones" or name.givenName sw "ba"': ["ajones", "bjensen"],
        'not (userName eq "bjensen")': ["ajones", "jsmith", "zed_50%"],
        'userName eq "x" or userName eq "jsmith" and title eq "Engineer"': ["jsmith"],
        '(userName eq "bjensen" or userName eq "jsmith") and title eq "Engineer"': ["jsmith"],
        'emails[type eq "work" and value co "@example.com"]': ["ajones", "bjensen"],
        'emails[type eq "work"] and not (emails.value ew ".com")': [],
        'emails.value ew "example"': ["jsmith", "zed_50%"],
        f'{ENTERPRISE}:department eq "r&d"': ["ajones", "jsmith"],
        f"{ENTERPRISE}:department pr": ["ajones", "bjensen", "jsmith"],
        'urn:ietf:params:scim:schemas:core:2.0:User:userName eq "ajones"': ["ajones"],
        'meta.created gt "2000-01-01T00:00:00Z"': ["ajones", "bjensen", "jsmith", "zed_50%"],
        'meta.lastModified lt "2000-01-01T00:00:00Z"': [],
        "title eq null": ["ajones"],
        f'id eq "{people["jsmith"]}"': ["jsmith"],
    }
    for text, expected in cases.items():
        assert _names(scim, text) == expected, text


def test_groups_filters(scim: Scim, people: dict[str, str]) -> None:
    group = scim.group("Guides", [people["bjensen"]])
    assert _names(scim, f'groups.value eq "{group["id"]}"') == ["bjensen"]
    assert _names(scim, 'groups[display eq "guides"]') == ["bjensen"]
    found = scim.http.get("/Groups", params={"filter": f'members[value eq "{people["bjensen"]}"]'}).json()
    assert [g["displayName"] for g in found["Resources"]] == ["Guides"]
    found = scim.http.get("/Groups", params={"filter": 'displayName eq "GUIDES"'}).json()
    assert found["totalResults"] == 1


@pytest.mark.parametrize(
    "text",
    [
        'userName regex "x"',
        'nosuch eq "x"',
        'name.nosuch eq "x"',
        "active gt true",
        'active eq "yes"',
        'meta.created gt "yesterday"',
        'userName eq "x" or 1=1; DROP TABLE eids; --',
        'userName eq "x") OR (1=1',
        'emails[nosuch eq "x"]',
    ],
)
def test_invalid_filters_are_400_invalid_filter(scim: Scim, text: str) -> None:
    assert_error(scim.http.get("/Users", params={"filter": text}), 400, "invalidFilter")


def test_injection_attempts_are_just_values(scim: Scim, people: dict[str, str]) -> None:
    assert _names(scim, "userName eq \"x' OR '1'='1\"") == []
    assert _names(scim, 'userName eq "\\" or userName pr or \\""') == []
    assert scim.http.get("/Users").json()["totalResults"] == 4


def test_pagination_is_stable_and_bounded(scim: Scim, people: dict[str, str]) -> None:
    seen = []
    for start in (1, 3, 5):
        page = scim.http.get("/Users", params={"startIndex": start, "count": 2}).json()
        assert page["totalResults"] == 4 and page["startIndex"] == start
        seen += [r["id"] for r in page["Resources"]]
    assert len(seen) == 4 and set(seen) == set(people.values())
    assert scim.http.get("/Users", params={"count": 0}).json() == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 4,
        "startIndex": 1,
        "itemsPerPage": 0,
        "Resources": [],
    }
    huge = scim.http.get("/Users", params={"count": 10**30, "startIndex": -5}).json()
    assert huge["itemsPerPage"] == 4 and huge["startIndex"] == 1
    assert scim.http.get("/Users", params={"startIndex": 10**30}).json()["Resources"] == []
    assert_error(scim.http.get("/Users", params={"count": "many"}), 400, "invalidValue")


def test_sorting(scim: Scim, people: dict[str, str]) -> None:
    def order(**params: Any) -> list[str]:
        return [r["userName"] for r in scim.http.get("/Users", params=params).json()["Resources"]]

    assert order(sortBy="userName") == ["ajones", "bjensen", "jsmith", "zed_50%"]
    assert order(sortBy="username", sortOrder="descending") == ["zed_50%", "jsmith", "bjensen", "ajones"]
    assert order(sortBy="name.familyName") == ["bjensen", "ajones", "jsmith", "zed_50%"]
    assert order(sortBy="title")[-1] == "ajones"  # no title: last
    assert_error(
        scim.http.get("/Users", params={"sortBy": "userName", "sortOrder": "up"}), 400, "invalidValue"
    )
    assert_error(scim.http.get("/Users", params={"sortBy": "nosuch"}), 400)


def test_attribute_selection_and_search(scim: Scim, people: dict[str, str]) -> None:
    uid = people["bjensen"]
    one = scim.http.get(f"/Users/{uid}", params={"attributes": "userName,emails.value"}).json()
    assert one == {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": uid,
        "userName": "bjensen",
        "emails": [{"value": "bjensen@example.com"}],
    }
    lean = scim.http.get(f"/Users/{uid}", params={"excludedAttributes": "emails,name"}).json()
    assert "emails" not in lean and "name" not in lean and lean["userName"] == "bjensen"
    search = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": 'name.givenName sw "b" or name.givenName sw "j"',
        "attributes": ["userName"],
        "sortBy": "userName",
        "startIndex": 1,
        "count": 10,
    }
    found = scim.http.post("/Users/.search", json=search).json()
    assert [r["userName"] for r in found["Resources"]] == ["bjensen", "jsmith"]
    assert set(found["Resources"][0]) == {"schemas", "id", "userName"}
    scim.group("Team")
    everything = scim.http.post(
        "/.search", json={"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}
    ).json()
    assert everything["totalResults"] == 5
    only_groups = scim.http.post(
        "/.search",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": 'displayName eq "Team"',
        },
    ).json()
    assert only_groups["totalResults"] == 1
    assert_error(scim.http.post("/Users/.search", json={"filter": "x pr"}), 400, "invalidSyntax")
