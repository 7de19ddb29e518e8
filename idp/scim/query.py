"""Listing and searching (RFC 7644 §3.4.2, §3.4.3): filter, sort and page in SQL.

Pages are ordered by the sort key (when asked) and then by creation time and id, so that
``startIndex`` walks a stable order; ``count`` is capped at :data:`MAX_RESULTS`
(what /ServiceProviderConfig announces as ``filter.maxResults``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, literal, select

from idp.scim import filter_syntax as fs
from idp.scim import filters
from idp.scim.errors import InvalidFilterError, InvalidValueError
from idp.scim.schema import GROUP_ATTRIBUTES, MAX_RESULTS, USER_ATTRIBUTES, attr_key
from idp.storage import tables

MAX_START = 1_000_000_000


@dataclass(slots=True, frozen=True)
class Page:
    start_index: int  # 1-based
    count: int


def page_of(start_index: Any, count: Any) -> Page:
    """§3.4.2.4: startIndex < 1 means 1; a negative count means 0; both are integers."""

    def number(value: Any, name: str, default: int) -> int:
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            raise InvalidValueError(f"{name} must be an integer, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise InvalidValueError(f"{name} must be an integer, got {value!r}") from None

    start = min(max(number(start_index, "startIndex", 1), 1), MAX_START)
    size = min(max(number(count, "count", MAX_RESULTS), 0), MAX_RESULTS)
    return Page(start, size)


def _user_target(ref: fs.AttrRef) -> filters.Target:
    e = tables.eids.c
    key = attr_key(ref.uri, ref.name, resource="User")
    sub = ref.sub.lower() if ref.sub else None
    if key == "id" and sub is None:
        return filters.Column(e.id, "string", True)
    if key == "username" and sub is None:
        return filters.Column(e.username, "string", False)
    if key == "active" and sub is None:
        return filters.Column(e.status == "active", "boolean", True)
    if key == "meta" and sub in ("created", "lastmodified"):
        return filters.Column(
            e.created_at if sub == "created" else e.updated_at, "dateTime", False, epoch=True
        )
    if key == "name" and sub in ("givenname", "familyname"):
        a = tables.eid_attributes.alias()
        name = "given_name" if sub == "givenname" else "family_name"
        return filters.Related(
            a,
            lambda owner: and_(a.c.eid_id == owner, a.c.name == name),
            {"value": filters.Column(a.c.value, "string", False)},
        )
    if key == "groups":
        m, g = tables.group_members.alias(), tables.groups.alias()
        joined = m.join(g, g.c.id == m.c.group_id)
        subs = {
            "value": filters.Column(g.c.id, "string", True),
            "display": filters.Column(g.c.display_name, "string", False),
            "type": filters.Column(literal("direct"), "string", False),
        }
        if sub is not None and sub not in subs:
            raise InvalidFilterError(f"groups has no sub-attribute {ref.sub!r}")
        return filters.Related(joined, lambda owner: m.c.eid_id == owner, subs, sub or "value")
    info = USER_ATTRIBUTES.get(key)
    if info is None or key == "meta":
        raise InvalidFilterError(f"unknown or unfilterable attribute {ref}")
    if sub is not None:
        leaf = info.subs.get(sub)
        if leaf is None:
            raise InvalidFilterError(f"{info.name} has no sub-attribute {ref.sub!r}")
        return filters.Values(key, sub, leaf)
    if info.type == "complex" and info.multi_valued:
        # `emails eq "x"` compares the value sub-attribute; emails[...] correlates on one value
        return filters.Values(key, "value", info.subs.get("value") or info, info)
    return filters.Values(key, "", info)


def _group_target(ref: fs.AttrRef) -> filters.Target:
    g = tables.groups.c
    key = attr_key(ref.uri, ref.name, resource="Group")
    sub = ref.sub.lower() if ref.sub else None
    if sub is None and key in ("id", "displayname", "externalid"):
        column = {"id": g.id, "displayname": g.display_name, "externalid": g.external_id}[key]
        return filters.Column(column, "string", key != "displayname")
    if key == "meta" and sub in ("created", "lastmodified"):
        return filters.Column(
            g.created_at if sub == "created" else g.updated_at, "dateTime", False, epoch=True
        )
    if key == "members":
        m = tables.group_members.alias()
        subs = {
            "value": filters.Column(m.c.eid_id, "string", True),
            "type": filters.Column(literal("User"), "string", False),
        }
        if sub is not None and sub not in subs:
            raise InvalidFilterError(f"members has no filterable sub-attribute {ref.sub!r}")
        return filters.Related(m, lambda owner: m.c.group_id == owner, subs, sub or "value")
    known = "known but not filterable" if key in GROUP_ATTRIBUTES else "unknown"
    raise InvalidFilterError(f"{ref} is {known} for Groups")


def search_users(
    conn: Connection,
    *,
    tenant_id: str,
    filter_text: str | None,
    sort_by: str | None,
    descending: bool,
    page: Page,
) -> tuple[int, list[str]]:
    e = tables.eids.c
    return _search(
        conn,
        tables.eids,
        e.id,
        e.tenant_id == tenant_id,
        (e.created_at, e.id),
        _user_target,
        filter_text,
        sort_by,
        descending,
        page,
    )


def search_groups(
    conn: Connection,
    *,
    tenant_id: str,
    filter_text: str | None,
    sort_by: str | None,
    descending: bool,
    page: Page,
) -> tuple[int, list[str]]:
    g = tables.groups.c
    return _search(
        conn,
        tables.groups,
        g.id,
        g.tenant_id == tenant_id,
        (g.created_at, g.id),
        _group_target,
        filter_text,
        sort_by,
        descending,
        page,
    )


def _search(
    conn: Connection,
    table: Any,
    owner: Any,
    scope: Any,
    stable: tuple[Any, Any],
    resolve: filters.Resolver,
    filter_text: str | None,
    sort_by: str | None,
    descending: bool,
    page: Page,
) -> tuple[int, list[str]]:
    where = [scope]
    if filter_text is not None:
        where.append(filters.compile_filter(filter_text, resolve, owner))
    total = int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())
    if page.count == 0 or total < page.start_index:
        return total, []
    order: list[Any] = []
    if sort_by:
        key = filters.sort_key(sort_by, resolve, owner)
        order += [key.is_(None), key.desc() if descending else key.asc()]
    order += list(stable)
    query = select(owner).where(*where).order_by(*order).offset(page.start_index - 1).limit(page.count)
    return total, [r[0] for r in conn.execute(query)]
