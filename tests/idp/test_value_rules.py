"""The rules every entry point shares (idp.value_rules), and the domain functions that apply them
whoever calls: the administration API, SCIM, the CLI."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from idp import client_changes, clients, eids, groups, invitations, tenants, value_rules
from idp.scim import tokens
from idp.storage import tables
from idp.storage.database import Database, Tx
from idp.value_rules import ValueRuleError
from tests.support.hostile import CONTROL_TEXT

# text people and systems really send: it passes every rule for names
INTERNATIONAL = {
    "Slovene": "Kovač",
    "Serbian Latin": "Đorđević",
    "Croatian": "Šime",
    "Japanese": "山田太郎",
    "Korean": "김민준",
    "Arabic (right to left)": "محمد",
    "emoji": "Ana 😀",
    "emoji with a joiner": "👩‍💻 dev team",
    "apostrophe and dash": "O'Brien-Smith",
    "no-break space": "Jean\u00a0Dupont",
}
MORE_CONTROLS = {
    "NUL": "a\x00b",
    "CR": "Nina\r",
    "vertical tab": "Ni\x0bna",
    "form feed": "Ni\x0cna",
    "next line (C1)": "Ni\x85na",
    "paragraph separator": "Ni\u2029na",
    **{f"bidi U+{ord(ch):04X}": f"a{ch}b" for ch in sorted(value_rules.BIDI_CONTROLS)},
}


# -- the rules ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [*CONTROL_TEXT.values(), *MORE_CONTROLS.values()])
def test_one_line_refuses_control_characters(value: str) -> None:
    with pytest.raises(ValueRuleError, match="must be one line of text without control characters") as err:
        value_rules.one_line(value, field="given_name")
    assert err.value.field == "given_name"
    assert str(err.value).startswith("given_name must be one line")


@pytest.mark.parametrize("value", INTERNATIONAL.values(), ids=INTERNATIONAL.keys())
def test_international_text_is_one_line(value: str) -> None:
    assert value_rules.one_line(value) == value
    assert value_rules.single_line(f"  {value} ", field="name", max_length=200) == value


def test_an_error_names_its_value_as_the_caller_said() -> None:
    with pytest.raises(ValueRuleError) as err:
        value_rules.one_line("a\nb")
    assert str(err.value) == "must be one line of text without control characters, found '\\n'"
    assert err.value.field is None
    with pytest.raises(ValueRuleError) as err:
        value_rules.single_line("a\tb", field="name", subject="tenant name", max_length=200)
    assert str(err.value) == "tenant name must be one line of text without control characters, found '\\t'"
    assert (err.value.field, err.value.reason) == (
        "name",
        "must be one line of text without control characters, found '\\t'",
    )
    assert isinstance(err.value, ValueError)  # callers that catch ValueError still do


def test_single_line_checks_before_trimming_and_counts_after() -> None:
    with pytest.raises(ValueRuleError, match=r"found '\\n'"):
        value_rules.single_line("Ana\n", field="username", max_length=320)  # not quietly trimmed
    for empty in ("", "   "):
        with pytest.raises(ValueRuleError, match="must be 1-320 characters"):
            value_rules.single_line(empty, field="username", max_length=320)
    assert value_rules.single_line(" " + "x" * 320 + " ", field="username", max_length=320) == "x" * 320
    with pytest.raises(ValueRuleError, match="must be 1-320 characters"):
        value_rules.single_line("x" * 321, field="username", max_length=320)


@pytest.mark.parametrize(
    "url",
    [
        "https://rp.example/cb\t",
        "https://rp.example/c\nb",
        "https://rp.example/cb\r\nSet-Cookie: a=b",
        "https://rp.example/a b",
        "https://rp.example/cb\x7f",
        "https://rp.example/cb\u2028",
        "https://rp.example/\u202ebc",
        "https://rp.example/\u00a0",
    ],
)
def test_a_url_has_no_spaces_or_control_characters(url: str) -> None:
    with pytest.raises(ValueRuleError, match="a URL must not contain spaces or control characters"):
        value_rules.url_text(url)
    with pytest.raises(ValueRuleError, match=r"^redirect_uri must not contain"):
        value_rules.url_text(url, field="redirect_uri")


def test_a_url_of_international_text_is_fine() -> None:
    assert (
        value_rules.url_text("https://kovač.example/pot/šola?q=日本")
        == "https://kovač.example/pot/šola?q=日本"
    )


@pytest.mark.parametrize(
    "url",
    [
        "//evil.example/x",
        "/\\evil.example/x",
        "https:///x",
        "https://",
        "http://cdn.example/logo.png",
        "javascript:alert(1)",
        "logo.png",
        "https://cdn.example/logo .png",
    ],
)
def test_a_logo_url_is_https_with_a_host_or_a_local_path(url: str) -> None:
    with pytest.raises(ValueRuleError, match=r"^branding\.logo_url must"):
        value_rules.logo_url(url, field="branding.logo_url")


@pytest.mark.parametrize("url", ["/static/logo.png", "/", "https://cdn.example/logo.png"])
def test_good_logo_urls(url: str) -> None:
    assert value_rules.logo_url(url) == url


@pytest.mark.parametrize(
    ("slug", "reason"),
    [
        ("12345678-1234-1234-1234-123456789abc", "must not have the form of a tenant id (a UUID)"),
        ("00000000-0000-0000-0000-000000000000", "must not have the form of a tenant id (a UUID)"),
        ("Not A Slug", "must be lowercase letters, digits and dashes"),
        ("acme\n", "must be lowercase letters, digits and dashes"),
        ("-acme", "must be lowercase letters, digits and dashes"),
        ("kovač", "must be lowercase letters, digits and dashes"),
        ("x" * 64, "must be lowercase letters, digits and dashes"),
    ],
)
def test_bad_slugs(slug: str, reason: str) -> None:
    with pytest.raises(ValueRuleError) as err:
        value_rules.slug(slug, field="slug")
    assert err.value.field == "slug" and err.value.reason.startswith(reason)


@pytest.mark.parametrize("slug", ["acme", "a", "acme-2", "12345678", "12345678-1234-1234-1234-123456789ab"])
def test_good_slugs(slug: str) -> None:
    assert value_rules.slug(slug) == slug


@pytest.mark.parametrize(
    "value", ["abcdef", "1990-02-30", "1990-13-01", "1990-2-3", "19900101", "1990-01-01T00:00", "90", ""]
)
def test_a_birthdate_is_a_real_day_or_a_year(value: str) -> None:
    with pytest.raises(ValueRuleError, match=r"^birthdate must"):
        value_rules.birthdate(value, field="birthdate")


@pytest.mark.parametrize("value", ["1990-01-31", "2000-02-29", "0000-02-29", "0000-04-12", "1990"])
def test_good_birthdates(value: str) -> None:
    assert value_rules.birthdate(value) == value


# -- the domain applies them, whoever calls -------------------------------------------------------


def _counts(conn: Any) -> dict[str, int]:
    t = tables
    return {
        name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
        for name, table in {
            "tenants": t.tenants,
            "clients": t.clients,
            "eids": t.eids,
            "attributes": t.eid_attributes,
            "groups": t.groups,
            "scim tokens": t.scim_tokens,
            "audit": t.audit_events,
        }.items()
    }


async def _refused(db: Database, unit: Callable[[Tx], Any], field: str) -> None:
    before = await db.read(_counts)
    with pytest.raises(ValueRuleError) as err:
        await db.write(unit)
    assert err.value.field == field, err.value
    assert await db.read(_counts) == before


async def test_the_domain_refuses_bad_text_whoever_calls(db: Database) -> None:
    tenant = await db.write(lambda tx: tenants.create(tx, slug="acme", name="Acme"))
    person = await db.write(
        lambda tx: eids.create(tx, tenant_id=tenant.id, attributes={"email": "ana@example.com"})
    )
    group = await db.write(lambda tx: groups.create(tx, tenant_id=tenant.id, display_name="Signers"))

    def public_client(tx: Tx, **values: Any) -> clients.NewClient:
        values = {"name": "App", "redirect_uris": ["https://rp.example/cb"], **values}
        return clients.create(tx, tenant_id=tenant.id, client_type=clients.ClientType.PUBLIC, **values)

    app = await db.write(public_client)
    bad = CONTROL_TEXT["CRLF"]
    cases: dict[str, tuple[str, Callable[[Tx], Any]]] = {
        "tenant slug like an id": (
            "slug",
            lambda tx: tenants.create(tx, slug="12345678-1234-1234-1234-123456789abc", name="X"),
        ),
        "tenant name": ("name", lambda tx: tenants.create(tx, slug="beta", name=bad)),
        "tenant rename": ("name", lambda tx: tenants.update_tenant(tx, tenant_id=tenant.id, name=bad)),
        "branding name": (
            "branding.name",
            lambda tx: tenants.create(tx, slug="beta", name="Beta", branding={"name": bad}),
        ),
        "branding logo": (
            "branding.logo_url",
            lambda tx: tenants.update_tenant(
                tx, tenant_id=tenant.id, branding={"logo_url": "/\\evil.example/x"}
            ),
        ),
        "client name": ("name", lambda tx: public_client(tx, name=bad)),
        "redirect URI": (
            "redirect_uri",
            lambda tx: public_client(tx, redirect_uris=["https://rp.example/cb\t"]),
        ),
        "post-logout redirect URI": (
            "post_logout_redirect_uri",
            lambda tx: public_client(tx, post_logout_redirect_uris=["https://rp.example/ bye"]),
        ),
        "username": (
            "username",
            lambda tx: eids.create(tx, tenant_id=tenant.id, attributes={}, username=bad),
        ),
        "given name": (
            "given_name",
            lambda tx: eids.create(
                tx,
                tenant_id=tenant.id,
                attributes={"given_name": CONTROL_TEXT["bidi override"]},
                username="x",
            ),
        ),
        "birthdate": (
            "birthdate",
            lambda tx: eids.update_profile(tx, eid_id=person.id, attributes={"birthdate": "1990-02-30"}),
        ),
        "renamed eID": (
            "username",
            lambda tx: eids.update_profile(tx, eid_id=person.id, username="ana@example.com\n"),
        ),
        "suspension reason": (
            "reason",
            lambda tx: eids.suspend(tx, eid_id=person.id, reason=CONTROL_TEXT["escape"]),
        ),
        "group name": (
            "display_name",
            lambda tx: groups.create(tx, tenant_id=tenant.id, display_name=CONTROL_TEXT["line separator"]),
        ),
        "group external id": (
            "external_id",
            lambda tx: groups.create(
                tx, tenant_id=tenant.id, display_name="G", external_id=CONTROL_TEXT["tab"]
            ),
        ),
        "group renamed": (
            "display_name",
            lambda tx: groups.update_group(tx, tenant_id=tenant.id, group_id=group.id, display_name=bad),
        ),
        "client renamed": (
            "name",
            lambda tx: client_changes.update_client(
                tx, tenant_id=tenant.id, client_id=app.client.client_id, changes={"name": bad}
            ),
        ),
        "SCIM token name": (
            "name",
            lambda tx: tokens.create(tx, tenant_id=tenant.id, name=CONTROL_TEXT["DEL"]),
        ),
    }
    for case, (field, unit) in cases.items():
        try:
            await _refused(db, unit, field)
        except BaseException as exc:
            raise AssertionError(f"{case}: {exc!r}") from exc


async def test_the_domain_keeps_international_text(db: Database) -> None:
    tenant = await db.write(lambda tx: tenants.create(tx, slug="kovac", name="Kovač d.o.o. 山田"))
    assert tenant.name == "Kovač d.o.o. 山田"
    person = await db.write(
        lambda tx: eids.create(
            tx,
            tenant_id=tenant.id,
            attributes={"given_name": "Šime", "family_name": "Đorđević", "birthdate": "1990-02-28"},
            username="šime.đorđević",
        )
    )
    assert person.username == "šime.đorđević" and person.value("family_name") == "Đorđević"
    group = await db.write(
        lambda tx: groups.create(tx, tenant_id=tenant.id, display_name="Podpisniki 😀", external_id="ext 1")
    )
    assert group.display_name == "Podpisniki 😀"
    client = await db.write(
        lambda tx: clients.create(
            tx,
            tenant_id=tenant.id,
            name="Aplikacija 日本",
            client_type=clients.ClientType.PUBLIC,
            redirect_uris=["https://rp.example/povratek"],
        )
    )
    assert client.client.name == "Aplikacija 日本"
    token = await db.write(lambda tx: tokens.create(tx, tenant_id=tenant.id, name="Entra ID — Kovač"))
    assert token.token.name == "Entra ID — Kovač"


async def test_an_invitations_names_follow_the_rule_of_the_attributes_they_become(db: Database) -> None:
    tenant = await db.write(lambda tx: tenants.create(tx, slug="inv", name="Inv"))

    def invite(given_name: str) -> Callable[[Tx], Any]:
        return lambda tx: invitations.create(
            tx,
            tenant_id=tenant.id,
            email="ana@example.com",
            acr="urn:eid:loa:basic",
            ttl=60,
            given_name=given_name,
        )

    for name in INTERNATIONAL.values():  # a no-break space or an emoji's joiner included
        made, _token = await db.write(invite(f" {name} "))
        assert made.given_name == name
    for bad in (CONTROL_TEXT["CRLF"], CONTROL_TEXT["bidi override"], "   ", "x" * 201):
        await _refused(db, invite(bad), "given_name")
