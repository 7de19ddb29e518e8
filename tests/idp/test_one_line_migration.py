"""Revision 0011_one_line_text: one-line text stored before idp.value_rules (names, usernames,
labels, ids) is made one line on upgrade, with a fallback where nothing is left or the tidied
username is taken; URLs, slugs, birthdates and email addresses are left and counted; nothing else
changes, the audit trail included (both engines)."""

from __future__ import annotations

import asyncio
import copy
import importlib
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from sqlalchemy import Connection, delete, insert, select, update

from idp import audit, clients, eids, groups, invitations, tenants, value_rules
from idp.scim import document, tokens
from idp.scim import users as scim_users
from idp.scim.schema import CORE_USER, ENTERPRISE, USER_ATTRIBUTES
from idp.storage import migrate, tables
from idp.storage.database import Database, Tx

BEFORE = "0010_recovery_pending"
AFTER = "0011_one_line_text"
revision: Any = importlib.import_module(f"idp.storage.migrations.versions.{AFTER}")
DEPARTMENT = f"{ENTERPRISE.lower()}:department"

Snapshot = dict[str, dict[tuple[Any, ...], dict[str, Any]]]
T = TypeVar("T")


def test_the_rule_the_revision_keeps_is_the_rule_of_value_rules() -> None:
    # the revision copies the rule (a migration must not change when the app does): every code point
    for point in range(sys.maxunicode + 1):
        ch = chr(point)
        try:
            value_rules.one_line(ch)
            refused = False
        except value_rules.ValueRuleError:
            refused = True
        assert revision.breaks(ch) == refused, f"U+{point:04X}"


@pytest.mark.parametrize(
    ("value", "tidied"),
    [
        ("Acme\r\nBcc: x@evil.example", "Acme Bcc: x@evil.example"),
        ("\tAna \n Novak\n", "Ana Novak"),
        ("Ana\u202eevil", "Ana evil"),
        ("bob\x85smith", "bob smith"),
        ("Jean\u00a0Dupont\n", "Jean\u00a0Dupont"),  # a no-break space is text
        ("a\x00b\x7fc\u2028d\u2069", "a b c d"),
        ("\u202e\u202c", ""),
        ("\n\t \r", ""),
    ],
)
def test_tidy(value: str, tidied: str) -> None:
    assert revision.breaks(value)
    assert revision.tidy(value) == tidied
    assert not revision.breaks(tidied)
    if tidied:
        assert value_rules.single_line(tidied, field="name", max_length=500) == tidied


def _snapshot(conn: Connection) -> Snapshot:
    """Every row of every table, by primary key."""
    out: Snapshot = {}
    for table in tables.metadata.sorted_tables:
        key = list(table.primary_key.columns)
        rows = conn.execute(select(table).order_by(*key)).mappings()
        out[table.name] = {tuple(row[c.name] for c in key): dict(row) for row in rows}
    return out


def _seed(tx: Tx) -> dict[str, Any]:
    """Good rows made by the domain, as any version would have made them."""
    acme = tenants.create(
        tx,
        slug="acme",
        name="Acme",
        branding={"name": "Acme", "logo_url": "https://cdn.example/logo.png", "primary_color": "#123456"},
    )
    blank = tenants.create(tx, slug="blank", name="Blank", branding={"name": "Blank"})
    kovac = tenants.create(tx, slug="kovac", name="Kovač d.o.o. 山田", branding={"name": "Jean\u00a0Dupont"})

    def person(tenant: tenants.Tenant, username: str, **attributes: str) -> eids.EID:
        return eids.create(tx, tenant_id=tenant.id, attributes=attributes, username=username)

    ids: dict[str, Any] = {"acme": acme.id, "blank": blank.id, "kovac": kovac.id}
    ids["ana"] = person(acme, "ana", email="ana@example.com", given_name="Ana").id
    ids["twin"] = person(acme, "twin", email="twin@example.com").id
    ids["eve"] = person(acme, "eve", email="eve@example.com").id
    ids["nobody"] = person(acme, "nobody").id
    ids["bob"] = person(
        acme,
        "bob",
        email="bob@example.com",
        given_name="Bob",
        family_name="Smith",
        national_id="123",
        birthdate="1990-01-01",
        phone_number="+38640123456",
    ).id
    eids.mark_verified(tx, eid_id=ids["bob"], name="given_name", method="videoid", evidence_ref="vid-1")
    ids["sime"] = person(kovac, "šime.đorđević", given_name="Šime", family_name="Đorđević").id
    for name, tenant, display_name, external_id in (
        ("signers", acme, "Signers", "ext-1"),
        ("nameless", acme, "Nameless", "ext-2"),
        ("podpisniki", kovac, "Podpisniki 😀", "ext 1"),
    ):
        members = [ids["ana"]] if tenant is acme else []
        group = groups.create(
            tx, tenant_id=tenant.id, display_name=display_name, external_id=external_id, members=members
        )
        ids[name] = group.id
    for name, tenant, client_name in (
        ("app", acme, "App"),
        ("app-two", acme, "App 2"),
        ("aplikacija", kovac, "Aplikacija 日本"),
    ):
        ids[name] = clients.create(
            tx,
            tenant_id=tenant.id,
            name=client_name,
            client_type=clients.ClientType.PUBLIC,
            redirect_uris=["https://rp.example/cb"],
            client_id=name,
        ).client.client_id
    for name, tenant, token_name in (
        ("entra", acme, "Entra ID"),
        ("okta", acme, "Okta"),
        ("kovac-token", kovac, "Entra ID — Kovač"),
    ):
        ids[name] = tokens.create(tx, tenant_id=tenant.id, name=token_name).token.id
    for credential_id, name in (("cred-laptop", "Laptop"), ("cred-phone", "Phone"), ("cred-key", "Ključ 🔑")):
        tx.conn.execute(
            insert(tables.passkey_credentials).values(
                credential_id=credential_id,
                eid_id=ids["ana"],
                public_key=b"\xa5",
                sign_count=0,
                transports=["internal"],
                aaguid="00000000-0000-0000-0000-000000000000",
                backup_eligible=False,
                backup_state=False,
                user_verified=True,
                name=name,
                created_at=1.0,
            )
        )
    app = clients.get(tx.conn, "app")
    assert app is not None
    ids["invitation"] = invitations.create(
        tx,
        tenant_id=acme.id,
        email="nina@example.com",
        acr="urn:eid:loa:basic",
        ttl=600,
        given_name="Nina",
        family_name="Novak",
        client=app,
        return_url="https://rp.example/after",
    )[0].id
    ids["sara"] = scim_users.create(
        tx,
        tenant_id=acme.id,
        body={
            "schemas": [CORE_USER, ENTERPRISE],
            "userName": "sara",
            "externalId": "ext-sara",
            "name": {"givenName": "Sara", "familyName": "Kos"},
            "displayName": "Sara Kos",
            "title": "Engineer",
            "profileUrl": "https://example.com/sara",
            "emails": [{"value": "sara@example.com", "type": "work", "primary": True}],
            "ims": [{"value": "sara-im", "type": "xmpp"}, {"value": "sara-im2", "type": "xmpp"}],
            "addresses": [{"formatted": "Ulica 1\n1000 Ljubljana", "locality": "Ljubljana"}],
            ENTERPRISE: {"department": "Sales"},
        },
        actor="scim",
    ).eid.id
    # the trail keeps text that breaks the rule (old versions recorded it): it must stay as it is
    audit.record(
        tx, audit.AuditEvent("eid.status_changed", eid_id=ids["bob"], details={"reason": "old\nreason"})
    )
    return ids


def _break(tx: Tx, ids: dict[str, Any]) -> dict[str, Any]:
    """Text an older version stored, written past the domain's rules; returns the SCIM User's
    document as stored."""
    t = tables
    conn = tx.conn

    def set_(table: Any, where: Any, **values: Any) -> None:
        assert conn.execute(update(table).where(where).values(**values)).rowcount == 1

    set_(
        t.tenants,
        t.tenants.c.id == ids["acme"],
        slug="acme\x7f",
        name="Acme\r\nBcc: x@evil.example",
        branding={
            "name": "Acme\u202eevil",
            "logo_url": "https://cdn.example/logo\n.png",
            "primary_color": "#123456",
        },
    )
    set_(t.tenants, t.tenants.c.id == ids["blank"], name="\n\t ", branding={"name": "\u2028"})
    e = t.eids.c
    set_(t.eids, e.id == ids["twin"], username="ANA\n")  # "ANA" is ana's, without regard to case
    set_(t.eids, e.id == ids["eve"], username="\u202e\u202c")  # nothing left: her email address
    set_(t.eids, e.id == ids["nobody"], username="\t")  # nothing left and no email: the eID's id
    set_(t.eids, e.id == ids["bob"], username="bob\x85smith", email_normalized="bob\u202e@example.com")
    a = t.eid_attributes.c

    def attribute(name: str, value: str) -> None:
        set_(t.eid_attributes, (a.eid_id == ids["bob"]) & (a.name == name), value=value)

    attribute("given_name", "Bob\u2066\u2069")
    attribute("family_name", "Smith\r\n")
    attribute("national_id", "\x7f")
    attribute("birthdate", "1990-01-01\n")
    attribute("email", "bob\u202e@example.com")
    g = t.groups.c
    set_(t.groups, g.id == ids["signers"], display_name="Signers\nAdmins", external_id="ext\t1")
    set_(t.groups, g.id == ids["nameless"], display_name="\u2029", external_id="\x1f")
    c = t.clients.c
    set_(t.clients, c.client_id == "app", name="App\r\n", redirect_uris=["https://rp.example/cb\t"])
    set_(t.clients, c.client_id == "app-two", name="\x1b")
    s = t.scim_tokens.c
    set_(t.scim_tokens, s.id == ids["entra"], name="Entra\u202eID")
    set_(t.scim_tokens, s.id == ids["okta"], name="\n")
    k = t.passkey_credentials.c
    set_(t.passkey_credentials, k.credential_id == "cred-laptop", name="Laptop\u202egpj.exe")
    set_(t.passkey_credentials, k.credential_id == "cred-phone", name="\x1b\x7f")
    i = t.invitations.c
    set_(
        t.invitations,
        i.id == ids["invitation"],
        given_name="Nina\n",
        family_name="\u202e",
        return_url="https://rp.example/after\n",
    )
    u = t.scim_users.c
    stored = conn.execute(select(u.document).where(u.eid_id == ids["sara"])).scalar_one()
    bad = {
        **stored,
        "externalid": "ext\tsara",
        "displayname": "Sara\u202e Kos",
        "title": "\n",
        "profileurl": "https://example.com/sara\n",
        "emails": [{"value": "sara\u202e@example.com", "type": "work", "primary": True}],
        "ims": [{"value": "sara-im", "type": "xmpp"}, {"value": "sara-im\n", "type": "xmpp\x1b"}],
        "addresses": [{"formatted": "Ulica 1\n1000 Ljubljana", "locality": "Ljub\x1bljana"}],
        DEPARTMENT: "\u2028",
    }
    set_(t.scim_users, u.eid_id == ids["sara"], document=bad, external_id="ext\tsara")
    _index(conn, ids, bad)
    return dict(stored)


def _index(conn: Connection, ids: dict[str, Any], doc: dict[str, Any]) -> None:
    """The document's scim_values rows, as the app builds them."""
    v = tables.scim_values
    conn.execute(delete(v).where(v.c.owner_id == ids["sara"]))
    conn.execute(insert(v), list(_index_rows(ids, doc).values()))


def _index_rows(ids: dict[str, Any], doc: dict[str, Any]) -> dict[tuple[Any, ...], dict[str, Any]]:
    attrs = {k: val for k, val in doc.items() if not k.startswith("_")}
    return {
        (ids["sara"], attr, item, sub): {
            "owner_id": ids["sara"],
            "attr": attr,
            "item": item,
            "sub": sub,
            "tenant_id": ids["acme"],
            "value": value,
            "value_ci": value.lower(),
        }
        for attr, item, sub, value in document.index_rows(attrs, USER_ATTRIBUTES)
    }


def _expected(before: Snapshot, ids: dict[str, Any], good_document: dict[str, Any]) -> Snapshot:
    """``before`` with the tidied values, and nothing else changed."""
    out = copy.deepcopy(before)

    def set_(table: str, key: Any, **values: Any) -> None:
        row = out[table][key if isinstance(key, tuple) else (key,)]
        assert set(values) <= set(row)
        row.update(values)

    set_("tenants", ids["acme"], name="Acme Bcc: x@evil.example")  # the slug stays
    set_(
        "tenants",
        ids["acme"],
        branding={
            "name": "Acme evil",
            "logo_url": "https://cdn.example/logo\n.png",  # a URL is left
            "primary_color": "#123456",
        },
    )
    # nothing left: the tenant is named by its slug, and its branding names nothing (its own
    # name is shown)
    set_("tenants", ids["blank"], name="blank", branding={})
    set_("eids", ids["twin"], username=f"ANA ({ids['twin']})")
    set_("eids", ids["eve"], username="eve@example.com")
    set_("eids", ids["nobody"], username=ids["nobody"])
    set_("eids", ids["bob"], username="bob smith")  # its email_normalized is left
    set_("eid_attributes", (ids["bob"], "given_name"), value="Bob")  # verified as it was
    set_("eid_attributes", (ids["bob"], "family_name"), value="Smith")
    del out["eid_attributes"][(ids["bob"], "national_id")]  # nothing left: no attribute
    set_("groups", ids["signers"], display_name="Signers Admins", external_id="ext 1")
    set_("groups", ids["nameless"], display_name=ids["nameless"], external_id=None)
    set_("clients", "app", name="App")  # its redirect URI is left
    set_("clients", "app-two", name="app-two")
    set_("scim_tokens", ids["entra"], name="Entra ID")
    set_("scim_tokens", ids["okta"], name="SCIM client")
    set_("passkey_credentials", "cred-laptop", name="Laptop gpj.exe")
    set_("passkey_credentials", "cred-phone", name="Passkey")
    set_("invitations", ids["invitation"], given_name="Nina", family_name=None)
    document = {
        **good_document,
        "externalid": "ext sara",
        "displayname": "Sara Kos",
        "profileurl": "https://example.com/sara\n",  # a URL is left
        "emails": [{"value": "sara\u202e@example.com", "type": "work", "primary": True}],  # left
        # a repeated item is kept once
        "ims": [{"value": "sara-im", "type": "xmpp"}],
        "addresses": [{"formatted": "Ulica 1\n1000 Ljubljana", "locality": "Ljub ljana"}],
    }
    del document["title"], document[DEPARTMENT]  # nothing left
    set_("scim_users", ids["sara"], document=document, external_id="ext sara")
    values = out["scim_values"]
    for key in [k for k in values if k[0] == ids["sara"]]:
        del values[key]
    values.update(_index_rows(ids, document))
    return out


LEFT = [
    ("tenants", "acme", "slug"),
    ("tenants", "acme", "branding.logo_url"),
    ("eids", "bob", "email_normalized"),
    ("eid_attributes", "bob", "birthdate"),
    ("eid_attributes", "bob", "email"),
    ("clients", "app", "redirect_uris"),
    ("invitations", "invitation", "return_url"),
    ("scim_users", "sara", "document.profileurl"),
    ("scim_users", "sara", "document.emails.value"),
]


def _on(url: str, work: Callable[[Database], Awaitable[T]]) -> T:
    async def run() -> T:
        db = Database(url)
        try:
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(run())


async def _seeded_and_broken(db: Database) -> tuple[dict[str, Any], dict[str, Any], Snapshot]:
    ids = await db.write(_seed)
    good_document = await db.write(lambda tx: _break(tx, ids))
    return ids, good_document, await db.read(_snapshot)


def test_upgrade_makes_old_text_one_line_and_changes_nothing_else(empty_database_url: str) -> None:
    url = empty_database_url
    migrate.upgrade(url, BEFORE)
    ids, good_document, snapshot = _on(url, _seeded_and_broken)
    migrate.upgrade(url)
    assert migrate.current(url) == AFTER

    async def after(db: Database) -> tuple[Snapshot, audit.VerifyReport, Any, tenants.Tenant]:
        migrated = await db.read(_snapshot)
        verified = await db.read(audit.verify)
        again = await db.write(lambda tx: revision.tidy_all(tx.conn))  # nothing left to do
        return migrated, verified, again, await db.read(lambda conn: tenants.get(conn, "blank"))

    migrated, verified, again, blank = _on(url, after)
    expected = _expected(snapshot, ids, good_document)
    for table in expected:
        assert migrated[table] == expected[table], table
    assert migrated == expected
    # the trail as it was, still intact
    assert verified.events == len(snapshot["audit_events"]) > 0
    assert again.tidied == {}
    assert sorted(again.left) == sorted((table, ids.get(row, row), field) for table, row, field in LEFT)
    assert blank.shown_name == "blank"

    # the app's own migration on a migrated database changes nothing
    migrate.upgrade(url)
    assert migrate.current(url) == AFTER
    assert _on(url, lambda db: db.read(_snapshot)) == migrated


def test_large_tables_are_read_in_batches(empty_database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # the revision's own function, with batches of two rows: every table takes several, and
    # eid_attributes pages on its two-column primary key
    url = empty_database_url
    migrate.upgrade(url)
    ids, good_document, snapshot = _on(url, _seeded_and_broken)
    monkeypatch.setattr(revision, "BATCH", 2)

    async def tidied(db: Database) -> tuple[Any, Snapshot]:
        report = await db.write(lambda tx: revision.tidy_all(tx.conn))
        return report, await db.read(_snapshot)

    report, migrated = _on(url, tidied)
    assert migrated == _expected(snapshot, ids, good_document)
    assert report.tidied == {
        "tenants.name": 2,
        "tenants.branding.name": 2,
        "eids.username": 4,
        "eid_attributes.value": 3,
        "groups.display_name": 2,
        "groups.external_id": 2,
        "clients.name": 2,
        "scim_tokens.name": 2,
        "passkey_credentials.name": 2,
        "invitations.given_name": 1,
        "invitations.family_name": 1,
        "scim_users.document": 1,
    }
    assert sorted(report.left) == sorted((table, ids.get(row, row), field) for table, row, field in LEFT)


def test_a_database_without_such_text_is_left_as_it_is(empty_database_url: str) -> None:
    url = empty_database_url
    migrate.upgrade(url, BEFORE)

    async def seeded(db: Database) -> Snapshot:
        await db.write(_seed)
        return await db.read(_snapshot)

    snapshot = _on(url, seeded)
    migrate.upgrade(url)
    assert _on(url, lambda db: db.read(_snapshot)) == snapshot
