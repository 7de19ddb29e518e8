"""one-line text: names, usernames, labels and ids stored before idp.value_rules are made one line

Revision ID: 0011_one_line_text
Revises: 0010_recovery_pending
Create Date: 2026-12-08 03:00:00
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0011_one_line_text"
down_revision = "0010_recovery_pending"
branch_labels = None
depends_on = None

# The domain refuses a name, username, label or id that is not one line of text (idp.value_rules),
# but rows written before it did were never checked: such text reaches mail headers, logs,
# consoles and the administration pages. This revision makes every stored value of that kind one
# line: each forbidden character becomes a space, each run of whitespace one space, and the ends
# are trimmed. Each value covered, with the domain function that checks it today:
#
# - tenants.name (tenants.create/update_tenant: single_line)
# - tenants.branding["name"] (tenants.validate_branding: one_line)
# - eids.username (eids.create/update_profile: single_line; unique per tenant, case-insensitively)
# - eid_attributes.value (eids._validate: one_line for every attribute), except the attributes
#   with a format of their own, below
# - groups.display_name (groups._name: single_line) and groups.external_id (groups._external_id)
# - clients.name (clients.create, client_changes.update_client: single_line)
# - scim_tokens.name (scim.tokens.create: single_line)
# - passkey_credentials.name (passkey.finish_registration: one_line, since this revision's release)
# - invitations.given_name and family_name (invitations.create: single_line, as the attributes
#   they become)
# - scim_users.document (scim.document._scalar: one_line for every string of a User but an
#   address's formatted value, which RFC 7643 §4.1.2 lets span lines), scim_users.external_id (the
#   document's externalId) and the scim_values rows indexing the document (rebuilt from it)
#
# Not covered: a status change's reason is not stored (only its audit event keeps it); the audit
# trail (audit_events) is hash-chained and append-only, and rewriting it would break
# `idp audit verify`.
#
# Values with a format of their own are left as they are, because a space would not make them
# valid and anything else would change what they say: URLs (tenants.branding["logo_url"],
# clients.redirect_uris and post_logout_redirect_uris, invitations.return_url, a SCIM User's
# profileUrl, photos and manager $ref), tenants.slug, the birthdate, email, phone_number and
# country attributes, eids.email_normalized, invitations.email, a SCIM User's emails and X.509
# certificates, and any other text of a tenant's branding. Migrations here do not log: those that
# hold a forbidden character are only counted (tidy_all's Report: table, row id and field, never
# the value).

# idp.value_rules.one_line, copied: a migration must keep doing what it did whatever the app's
# rules become. Unicode category Cc (C0 controls, DEL, C1 controls), Zl and Zp (the line and
# paragraph separators) and the bidirectional embeddings, overrides and isolates (CVE-2021-42574)
FORBIDDEN = ((0x00, 0x1F), (0x7F, 0x9F), (0x2028, 0x2029), (0x202A, 0x202E), (0x2066, 0x2069))


def _class(first: int = 0) -> str:
    return "[" + "".join(f"{chr(max(low, first))}-{chr(high)}" for low, high in FORBIDDEN) + "]"


BREAKS = re.compile(_class())
# the same characters in JSON text: raw, or escaped as json.dumps writes them (\n, \u001b, \u202e)
JSON_ESCAPED = r"\\([bfnrt]|u00[01][0-9a-fA-F]|u007[fF]|u00[89][0-9a-fA-F]|u202[89a-eA-E]|u206[6-9])"
JSON_BREAKS = re.compile(f"{_class()}|{JSON_ESCAPED}")
# PostgreSQL finds the candidates itself (its text holds no NUL, and a pattern may not either)
PG_BREAKS = _class(first=1)
PG_JSON_BREAKS = f"{PG_BREAKS}|{JSON_ESCAPED}"
RUNS = re.compile(r"\s{2,}")
BATCH = 1000

# eid_attributes with a format of their own (eids._validate, value_rules.birthdate)
OWN_FORMAT_ATTRIBUTES = frozenset({"birthdate", "email", "phone_number", "country"})
# a SCIM User's text that may span lines (idp.scim.schema.MULTI_LINE), and its text with a format
# of its own: URLs (type reference), email addresses (the eID's own is one of them), certificates
SCIM_MULTI_LINE = frozenset({("addresses", "formatted")})
SCIM_OWN_FORMAT = frozenset(
    {
        ("profileurl", ""),
        ("photos", "value"),
        ("emails", "value"),
        ("x509certificates", "value"),
        ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:manager", "$ref"),
    }
)
# the name the CLI gives a SCIM token that is given none
SCIM_TOKEN_NAME = "SCIM client"
USERNAME_MAX = 320

TENANTS = sa.table(
    "tenants",
    sa.column("id", sa.Text),
    sa.column("slug", sa.Text),
    sa.column("name", sa.Text),
    sa.column("branding", sa.JSON),
)
EIDS = sa.table(
    "eids",
    sa.column("id", sa.Text),
    sa.column("tenant_id", sa.Text),
    sa.column("username", sa.Text),
    sa.column("email_normalized", sa.Text),
)
ATTRIBUTES = sa.table(
    "eid_attributes", sa.column("eid_id", sa.Text), sa.column("name", sa.Text), sa.column("value", sa.Text)
)
GROUPS = sa.table(
    "groups", sa.column("id", sa.Text), sa.column("display_name", sa.Text), sa.column("external_id", sa.Text)
)
CLIENTS = sa.table(
    "clients",
    sa.column("client_id", sa.Text),
    sa.column("name", sa.Text),
    sa.column("redirect_uris", sa.JSON),
    sa.column("post_logout_redirect_uris", sa.JSON),
)
SCIM_TOKENS = sa.table("scim_tokens", sa.column("id", sa.Text), sa.column("name", sa.Text))
PASSKEYS = sa.table("passkey_credentials", sa.column("credential_id", sa.Text), sa.column("name", sa.Text))
INVITATIONS = sa.table(
    "invitations",
    sa.column("id", sa.Text),
    sa.column("given_name", sa.Text),
    sa.column("family_name", sa.Text),
    sa.column("email", sa.Text),
    sa.column("return_url", sa.Text),
)
SCIM_USERS = sa.table(
    "scim_users",
    sa.column("eid_id", sa.Text),
    sa.column("tenant_id", sa.Text),
    sa.column("external_id", sa.Text),
    sa.column("document", sa.JSON),
)
SCIM_VALUES = sa.table(
    "scim_values",
    sa.column("owner_id", sa.Text),
    sa.column("attr", sa.Text),
    sa.column("item", sa.Integer),
    sa.column("sub", sa.Text),
    sa.column("tenant_id", sa.Text),
    sa.column("value", sa.Text),
    sa.column("value_ci", sa.Text),
)


def breaks(value: Any) -> bool:
    """Whether ``value`` is text that is not one line."""
    return isinstance(value, str) and BREAKS.search(value) is not None


def tidy(value: str) -> str:
    """``value`` as one line: each forbidden character a space, each run of whitespace one space,
    trimmed ("" when nothing is left)."""
    return RUNS.sub(" ", BREAKS.sub(" ", value)).strip()


class Report:
    """What :func:`tidy_all` did: values tidied per ``table.field``, and the values it left as they
    are (``(table, row id, field)``, never the value). Not a dataclass: Alembic loads a revision
    without entering it in ``sys.modules``, where dataclasses look."""

    def __init__(self) -> None:
        self.tidied: Counter[str] = Counter()
        self.left: list[tuple[str, str, str]] = []


def upgrade() -> None:
    tidy_all(op.get_bind())


def downgrade() -> None:
    # a no-op: the values as they were are not kept, so they cannot be restored (and the schema
    # before this revision holds one-line text as well as any other)
    pass


def tidy_all(conn: sa.Connection) -> Report:
    """Make every stored one-line value one line; running it again changes nothing."""
    report = Report()
    _tenants(conn, report)
    _usernames(conn, report)
    _attributes(conn, report)
    _columns(
        conn,
        report,
        GROUPS,
        "id",
        # a group named by nothing is named by its id; an external id of nothing is none
        {"display_name": lambda row: str(row.id), "external_id": lambda row: None},
    )
    _columns(
        conn,
        report,
        CLIENTS,
        "client_id",
        # a client named by nothing is named by its client_id, as the CLI and the API show it
        {"name": lambda row: tidy(row.client_id) or "Client"},
        json_left=("redirect_uris", "post_logout_redirect_uris"),
    )
    _columns(conn, report, SCIM_TOKENS, "id", {"name": lambda row: SCIM_TOKEN_NAME})
    # a passkey named by nothing is called what the account page calls a new one
    _columns(conn, report, PASSKEYS, "credential_id", {"name": lambda row: "Passkey"})
    _columns(
        conn,
        report,
        INVITATIONS,
        "id",
        # an invitation's name of nothing is no name, as if none was given
        {"given_name": lambda row: None, "family_name": lambda row: None},
        left=("email", "return_url"),
    )
    _scim_users(conn, report)
    return report


def _candidates(
    conn: sa.Connection,
    table: sa.TableClause,
    key: Sequence[str],
    texts: Sequence[str] = (),
    jsons: Sequence[str] = (),
    others: Sequence[str] = (),
) -> Iterator[Any]:
    """The rows of ``table`` where one of ``texts`` (text columns) or ``jsons`` (JSON columns, read
    as their JSON text) may hold a forbidden character, read in batches in primary key order.
    PostgreSQL picks them (a regular expression); on SQLite they are picked here. A JSON text may
    be picked for an escaped backslash: the caller checks the values it decodes."""
    keys = [table.c[name] for name in key]
    columns = [table.c[name] for name in texts]
    raw = [sa.cast(table.c[name], sa.Text).label(name) for name in jsons]
    query = sa.select(*keys, *columns, *raw, *(table.c[name] for name in others)).order_by(*keys)
    if conn.dialect.name == "postgresql":
        query = query.where(
            sa.or_(
                *(c.op("~")(PG_BREAKS) for c in columns),
                *(sa.cast(table.c[name], sa.Text).op("~")(PG_JSON_BREAKS) for name in jsons),
            )
        )
    last: Any = None
    while True:
        batch = query.limit(BATCH)
        if last is not None:
            batch = batch.where(sa.tuple_(*keys) > sa.tuple_(*last) if len(keys) > 1 else keys[0] > last[0])
        rows = conn.execute(batch).all()
        for row in rows:
            mapping = row._mapping
            if any(breaks(mapping[name]) for name in texts) or any(
                mapping[name] is not None and JSON_BREAKS.search(mapping[name]) for name in jsons
            ):
                yield row
        if len(rows) < BATCH:
            return
        last = tuple(rows[-1][: len(keys)])


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _columns(
    conn: sa.Connection,
    report: Report,
    table: sa.TableClause,
    key: str,
    fallbacks: dict[str, Callable[[Any], str | None]],
    *,
    left: Sequence[str] = (),
    json_left: Sequence[str] = (),
) -> None:
    """Tidy the text columns named in ``fallbacks``; one left with nothing takes what its
    fallback gives for the row. Columns in ``left`` and ``json_left`` are only counted."""
    texts = [*fallbacks, *left]
    for row in _candidates(conn, table, [key], texts, json_left):
        row_id = str(row._mapping[key])
        for name in left:
            if breaks(row._mapping[name]):
                report.left.append((table.name, row_id, name))
        for name in json_left:
            text = row._mapping[name]
            if text is not None and any(breaks(s) for s in _strings(json.loads(text))):
                report.left.append((table.name, row_id, name))
        values: dict[str, str | None] = {}
        for name, fallback in fallbacks.items():
            if breaks(row._mapping[name]):
                values[name] = tidy(row._mapping[name]) or fallback(row)
                report.tidied[f"{table.name}.{name}"] += 1
        if values:
            conn.execute(sa.update(table).where(table.c[key] == row._mapping[key]).values(**values))


def _tenants(conn: sa.Connection, report: Report) -> None:
    t = TENANTS.c
    for row in _candidates(conn, TENANTS, ["id"], ["name", "slug"], ["branding"]):
        values: dict[str, Any] = {}
        if breaks(row.slug):
            report.left.append(("tenants", row.id, "slug"))
        if breaks(row.name):
            # a tenant named by nothing is named by its slug (unique, and what the CLI names it by)
            values["name"] = tidy(row.name) or (row.id if breaks(row.slug) else row.slug)
            report.tidied["tenants.name"] += 1
        branding = json.loads(row.branding) if row.branding is not None else None
        if isinstance(branding, dict):
            tidied = dict(branding)
            for name, value in branding.items():
                if name == "name" and breaks(value):
                    # a branding that names nothing has no name: the tenant's own name is shown
                    # (tenants.Tenant.shown_name)
                    if tidy(value):
                        tidied["name"] = tidy(value)
                    else:
                        del tidied["name"]
                    report.tidied["tenants.branding.name"] += 1
                elif any(breaks(s) for s in _strings(value)):
                    report.left.append(("tenants", row.id, f"branding.{name}"))
            if tidied != branding:
                values["branding"] = tidied
        if values:
            conn.execute(sa.update(TENANTS).where(t.id == row.id).values(**values))


def _usernames(conn: sa.Connection, report: Report) -> None:
    e = EIDS.c
    for row in _candidates(conn, EIDS, ["id"], ["username", "email_normalized"], others=["tenant_id"]):
        if breaks(row.email_normalized):
            report.left.append(("eids", row.id, "email_normalized"))
        if breaks(row.username):
            username = _free_username(conn, row, tidy(row.username))
            conn.execute(sa.update(EIDS).where(e.id == row.id).values(username=username))
            report.tidied["eids.username"] += 1


def _free_username(conn: sa.Connection, row: Any, tidied: str) -> str:
    """The tidied username, unless another eID of the tenant has it (as the unique index compares:
    with the database's lower()). Then, so that the migration always ends: the tidied name followed
    by the eID's id, ``ana (3f0c…)``, which names one eID. With nothing left, the eID takes the
    email address it is found by, as an eID created without a username does, else its id. Should
    even that be taken, `` 2``, `` 3``… follows."""
    e = EIDS.c

    def taken(username: str) -> bool:
        same = (e.tenant_id == row.tenant_id) & (sa.func.lower(e.username) == sa.func.lower(username))
        return conn.execute(sa.select(e.id).where(same & (e.id != row.id)).limit(1)).first() is not None

    def followed(name: str, suffix: str) -> str:
        return f"{name[: USERNAME_MAX - len(suffix)].rstrip()}{suffix}"

    email = row.email_normalized if row.email_normalized and not breaks(row.email_normalized) else None
    name = tidied or email
    choices = [name, followed(name, f" ({row.id})")] if name else [row.id]
    for choice in choices:
        if not taken(choice):
            return choice
    n = 2
    while taken(followed(choices[-1], f" {n}")):
        n += 1
    return followed(choices[-1], f" {n}")


def _attributes(conn: sa.Connection, report: Report) -> None:
    a = ATTRIBUTES.c
    for row in _candidates(conn, ATTRIBUTES, ["eid_id", "name"], ["value"]):
        if row.name in OWN_FORMAT_ATTRIBUTES:
            report.left.append(("eid_attributes", row.eid_id, row.name))
            continue
        where = (a.eid_id == row.eid_id) & (a.name == row.name)
        value = tidy(row.value)
        if value:
            conn.execute(sa.update(ATTRIBUTES).where(where).values(value=value))
        else:
            # an attribute of nothing is no attribute: the domain refuses an empty one
            conn.execute(sa.delete(ATTRIBUTES).where(where))
        report.tidied["eid_attributes.value"] += 1


_DROP = object()  # a SCIM value tidied to nothing: dropped, as scim.document.canonical drops ""


def _scim_users(conn: sa.Connection, report: Report) -> None:
    s = SCIM_USERS.c
    for row in _candidates(conn, SCIM_USERS, ["eid_id"], ["external_id"], ["document"], ["tenant_id"]):
        values: dict[str, Any] = {}
        if breaks(row.external_id):
            values["external_id"] = tidy(row.external_id) or None
        document = json.loads(row.document)
        if isinstance(document, dict):

            def leave(where: str, eid_id: str = row.eid_id) -> None:
                report.left.append(("scim_users", eid_id, f"document.{where}"))

            tidied = _tidy_document(document, leave)
            if tidied != document:
                values["document"] = tidied
                _reindex(conn, row.eid_id, row.tenant_id, tidied)
                report.tidied["scim_users.document"] += 1
        if values:
            conn.execute(sa.update(SCIM_USERS).where(s.eid_id == row.eid_id).values(**values))


def _tidy_document(document: dict[str, Any], leave: Callable[[str], None]) -> dict[str, Any]:
    """A SCIM User's stored document (catalogue keys, idp.scim.document) with its one-line text
    tidied: a value, item or attribute left with nothing is dropped, a repeated item kept once."""
    out: dict[str, Any] = {}
    for key, value in document.items():
        if key.startswith("_"):  # the server's own marks (scim.users.UNASSIGNED_ACTIVE)
            out[key] = value
        elif isinstance(value, list):
            items: list[Any] = []
            for item in value:
                tidied = _tidy_item(key, item, leave)
                if tidied is not _DROP and tidied not in items:
                    items.append(tidied)
            if items:
                out[key] = items
        elif (tidied := _tidy_item(key, value, leave)) is not _DROP:
            out[key] = tidied
    return out


def _tidy_item(key: str, item: Any, leave: Callable[[str], None]) -> Any:
    if not isinstance(item, dict):
        return _tidy_leaf(key, "", item, leave)
    subs = {}
    for sub, value in item.items():
        tidied = _tidy_leaf(key, sub, value, leave)
        if tidied is not _DROP:
            subs[sub] = tidied
    return subs or _DROP


def _tidy_leaf(key: str, sub: str, value: Any, leave: Callable[[str], None]) -> Any:
    where = (key.lower(), sub.lower())
    if not breaks(value) or where in SCIM_MULTI_LINE:
        return value
    if where in SCIM_OWN_FORMAT:
        leave(f"{key}.{sub}" if sub else key)
        return value
    return tidy(value) or _DROP


def _reindex(conn: sa.Connection, eid_id: str, tenant_id: str, document: dict[str, Any]) -> None:
    """The User's scim_values rows built again from its document, as scim.users._index builds them
    (scim.document.index_rows): a row per leaf value, items numbered as they stand."""
    rows = []
    for key, value in document.items():
        if key.startswith("_") or value is None:
            continue
        for i, item in enumerate(value if isinstance(value, list) else [value]):
            leaves = item.items() if isinstance(item, dict) else [("", item)]
            for sub, leaf in leaves:
                text = ("true" if leaf else "false") if isinstance(leaf, bool) else str(leaf)
                rows.append(
                    {
                        "owner_id": eid_id,
                        "attr": key,
                        "item": i,
                        "sub": sub.lower(),
                        "tenant_id": tenant_id,
                        "value": text,
                        "value_ci": text.lower(),
                    }
                )
    conn.execute(sa.delete(SCIM_VALUES).where(SCIM_VALUES.c.owner_id == eid_id))
    if rows:
        conn.execute(sa.insert(SCIM_VALUES), rows)
