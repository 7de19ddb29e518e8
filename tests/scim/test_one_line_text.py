"""Names, usernames and ids are one line of text through SCIM as through every other door: a line
break, tab, escape, DEL, line separator or bidi override in a User's or a Group's text is a 400
``invalidValue`` Error (RFC 7644 §3.12), and nothing is written."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from tests.scim.conftest import CORE_GROUP, CORE_USER, ENTERPRISE, Scim, assert_error
from tests.support.hostile import CONTROL_TEXT, admin_rows

BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
# a User's text attributes: how a body carries one, and the PATCH path that sets it
USER_TEXT: dict[str, tuple[Any, str]] = {
    "userName": (lambda v: {"userName": v}, "userName"),
    "name.givenName": (lambda v: {"name": {"givenName": v}}, "name.givenName"),
    "name.familyName": (lambda v: {"name": {"familyName": v}}, "name.familyName"),
    "displayName": (lambda v: {"displayName": v}, "displayName"),
    "externalId": (lambda v: {"externalId": v}, "externalId"),
    "title": (lambda v: {"title": v}, "title"),
    "emails.value": (lambda v: {"emails": [{"value": v, "type": "work"}]}, 'emails[type eq "work"].value'),
    "department": (lambda v: {ENTERPRISE: {"department": v}}, f"{ENTERPRISE}:department"),
}
GROUP_TEXT = ("displayName", "externalId")
INTERNATIONAL = {
    "name": {"givenName": "Šime", "familyName": "Đorđević", "formatted": "Šime Đorđević"},
    "displayName": "Kovač 山田 😀",
    "title": "Vodja službe",
}


def _user_body(user_name: str = "nina@example.com", **extra: Any) -> dict[str, Any]:
    return {"schemas": [CORE_USER, ENTERPRISE], "userName": user_name, **extra}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = (
            {**out[key], **value} if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def _refused(scim: Scim, cases: Iterator[tuple[str, httpx.Response]]) -> None:
    """Every case a 400 invalidValue Error that says why, and the tenant's rows and the audit
    trail as they were."""
    before = admin_rows(scim.app, scim.tenant.id)
    found = []
    for case, response in cases:
        try:
            body = assert_error(response, 400, "invalidValue")
            assert "must be one line of text without control characters" in body["detail"], body
        except AssertionError as exc:
            found.append(f"[{case}] {exc}")
    assert not found, "\n".join(found)
    after = admin_rows(scim.app, scim.tenant.id)
    assert {k: after[k] for k in before if before[k] != after[k]} == {}, "a refused request wrote"


def test_users_text_is_one_line(scim: Scim) -> None:
    user = scim.user("nina@example.com", name={"givenName": "Nina"}, emails=[{"value": "nina@example.com"}])
    uid = user["id"]

    def cases() -> Iterator[tuple[str, httpx.Response]]:
        for attr, (carried, path) in USER_TEXT.items():
            for case, bad in CONTROL_TEXT.items():
                body = _merge(_user_body("other@example.com"), carried(bad))
                yield f"POST {attr}={case}", scim.http.post("/Users", json=body)
                body = _merge(_user_body(), carried(bad))
                yield f"PUT {attr}={case}", scim.http.put(f"/Users/{uid}", json=body)
                op = {"op": "replace", "path": path, "value": bad}
                yield f"PATCH {path}={case}", scim.patch(f"/Users/{uid}", [op])
                op = {"op": "add", "value": carried(bad)}
                yield f"PATCH (no path) {attr}={case}", scim.patch(f"/Users/{uid}", [op])

    _refused(scim, cases())
    assert scim.http.get(f"/Users/{uid}").json()["meta"]["version"] == user["meta"]["version"]


def test_groups_text_is_one_line(scim: Scim) -> None:
    member = scim.user("nina@example.com")
    group = scim.group("Signers", [member["id"]])
    gid = group["id"]

    def cases() -> Iterator[tuple[str, httpx.Response]]:
        for attr in GROUP_TEXT:
            for case, bad in CONTROL_TEXT.items():
                body = {"schemas": [CORE_GROUP], "displayName": "Readers", attr: bad}
                yield f"POST {attr}={case}", scim.http.post("/Groups", json=body)
                body = {"schemas": [CORE_GROUP], "displayName": "Signers", attr: bad}
                yield f"PUT {attr}={case}", scim.http.put(f"/Groups/{gid}", json=body)
                op = {"op": "replace", "path": attr, "value": bad}
                yield f"PATCH {attr}={case}", scim.patch(f"/Groups/{gid}", [op])
                op = {"op": "replace", "value": {attr: bad}}
                yield f"PATCH (no path) {attr}={case}", scim.patch(f"/Groups/{gid}", [op])

    _refused(scim, cases())
    assert scim.http.get(f"/Groups/{gid}").json()["meta"]["version"] == group["meta"]["version"]


def test_bulk_reports_each_refusal(scim: Scim) -> None:
    before = admin_rows(scim.app, scim.tenant.id)
    body = {
        "schemas": [BULK],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "u", "data": _user_body(CONTROL_TEXT["CRLF"])},
            {
                "method": "POST",
                "path": "/Groups",
                "bulkId": "g",
                "data": {"schemas": [CORE_GROUP], "displayName": CONTROL_TEXT["bidi override"]},
            },
        ],
    }
    response = scim.http.post("/Bulk", json=body)
    assert response.status_code == 200, response.text
    for op in response.json()["Operations"]:
        assert op["status"] == "400", op
        assert op["response"]["scimType"] == "invalidValue", op
    assert admin_rows(scim.app, scim.tenant.id) == before


def test_international_text_and_a_multi_line_address_are_kept(scim: Scim) -> None:
    address = {"type": "work", "formatted": "Trg republike 3\n1000 Ljubljana\nSlovenija"}
    created = scim.user(
        "šime.đorđević@example.com",
        **INTERNATIONAL,
        addresses=[address],
        **{ENTERPRISE: {"department": "Računovodstvo"}},
    )
    assert created["name"]["familyName"] == "Đorđević" and created["displayName"] == "Kovač 山田 😀"
    assert created["addresses"] == [address]
    uid = created["id"]
    replaced = scim.http.put(
        f"/Users/{uid}", json=_user_body("山田.太郎@example.com", name={"givenName": "太郎"})
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["userName"] == "山田.太郎@example.com"
    patched = scim.patch(f"/Users/{uid}", [{"op": "replace", "path": "name.familyName", "value": "Kovač"}])
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == {"givenName": "太郎", "familyName": "Kovač"}
    group = scim.group("Podpisniki ✍️", [uid])
    assert group["displayName"] == "Podpisniki ✍️"
    renamed = scim.patch(
        f"/Groups/{group['id']}", [{"op": "replace", "path": "displayName", "value": "Šola"}]
    )
    assert renamed.status_code == 200 and renamed.json()["displayName"] == "Šola"
