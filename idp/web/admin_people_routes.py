"""The administration API's people: users (eIDs), groups with members, and invitations.

Every change goes through the domain functions (:mod:`idp.eids`, :mod:`idp.groups`,
:mod:`idp.invitations`), which write their audit events in the same transaction.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.responses import Response

from idp import eids, groups
from idp.admin import models as m
from idp.admin import queries
from idp.admin.openapi import Operation, Query
from idp.errors import NotFoundError
from idp.storage.database import Tx
from idp.web import security_notice
from idp.web.admin_http import Call, json_response

log = logging.getLogger("idp.admin")

# -- users ----------------------------------------------------------------------------------------


def user_out(person: eids.EID) -> m.User:
    return m.User(
        id=person.id,
        username=person.username,
        status=person.status,
        attributes={name: a.value for name, a in person.attributes.items()},
        verified={
            name: m.Verification(method=a.verified_method, at=a.verified_at, evidence_ref=a.evidence_ref)
            for name, a in person.attributes.items()
            if a.verified_method
        },
        created_at=person.created_at,
        updated_at=person.updated_at,
    )


async def _user(call: Call) -> eids.EID:
    tenant_id, eid_id = call.tenant_id, call.path("user_id")
    found = await call.st.db.read(
        lambda conn: queries.eid_of_tenant(conn, tenant_id=tenant_id, eid_id=eid_id)
    )
    if found is None:
        raise NotFoundError(f"no user {eid_id!r} in this tenant")
    return found


async def list_users(call: Call) -> Response:
    tenant_id, offset, limit = call.tenant_id, call.query["offset"], call.query["limit"]
    found, total = await call.st.db.read(
        lambda conn: queries.eid_page(conn, tenant_id=tenant_id, offset=offset, limit=limit)
    )
    return json_response(
        m.UserList(items=[user_out(p) for p in found], total=total, offset=offset, limit=limit)
    )


async def create_user(call: Call) -> Response:
    body: m.UserCreate = call.body
    attributes = {k: v for k, v in body.attributes.model_dump().items() if v is not None}
    tenant_id = call.tenant_id
    person = await call.st.db.write(
        lambda tx: eids.create(tx, tenant_id=tenant_id, attributes=attributes, username=body.username)
    )
    return json_response(user_out(person), 201)


async def get_user(call: Call) -> Response:
    return json_response(user_out(await _user(call)))


async def update_user(call: Call) -> Response:
    body: m.UserUpdate = call.body
    person = await _user(call)
    attributes: dict[str, str | None] = {}
    if body.attributes is not None:
        attributes = {name: getattr(body.attributes, name) for name in body.attributes.model_fields_set}
    if "username" in body.model_fields_set and body.username is None:
        raise ValueError("username cannot be null")

    def unit(tx: Tx) -> eids.EID:
        eids.update_profile(
            tx, eid_id=person.id, username=body.username, attributes=attributes, actor=call.principal.actor
        )
        return eids.get(tx.conn, person.id)

    return json_response(user_out(await call.st.db.write(unit)))


async def erase_user(call: Call) -> Response:
    person = await _user(call)
    await call.st.db.write(
        lambda tx: eids.erase(tx, eid_id=person.id, reason="erased_by_admin", actor=call.principal.actor)
    )
    return Response(status_code=204)


async def _set_status(call: Call, status: eids.EIDStatus, verb: str) -> Response:
    body: m.StatusChange = call.body
    person = await _user(call)

    def unit(tx: Tx) -> tuple[eids.EID, str]:
        before = eids.get(tx.conn, person.id).status
        eids.set_status(
            tx, eid_id=person.id, status=status, reason=body.reason or verb, actor=call.principal.actor
        )
        return eids.get(tx.conn, person.id), before

    changed, before = await call.st.db.write(unit)
    if status == eids.EIDStatus.ACTIVE and before != eids.EIDStatus.ACTIVE:
        security_notice.send(call.st, person=changed, notice=security_notice.Notice.ENABLED, ip=None)
    return json_response(user_out(changed))


async def suspend_user(call: Call) -> Response:
    return await _set_status(call, eids.EIDStatus.SUSPENDED, "suspended_by_admin")


async def enable_user(call: Call) -> Response:
    return await _set_status(call, eids.EIDStatus.ACTIVE, "enabled_by_admin")


# -- groups ---------------------------------------------------------------------------------------


def group_out(g: groups.Group) -> m.Group:
    return m.Group(
        id=g.id,
        display_name=g.display_name,
        external_id=g.external_id,
        members=list(g.members),
        created_at=g.created_at,
        updated_at=g.updated_at,
    )


async def list_groups(call: Call) -> Response:
    tenant_id = call.tenant_id
    found = await call.st.db.read(lambda conn: queries.group_list(conn, tenant_id=tenant_id))
    return json_response(m.GroupList(items=[group_out(g) for g in found]))


async def create_group(call: Call) -> Response:
    body: m.GroupCreate = call.body
    tenant_id = call.tenant_id
    made = await call.st.db.write(
        lambda tx: groups.create(
            tx,
            tenant_id=tenant_id,
            display_name=body.display_name,
            external_id=body.external_id,
            members=body.members,
            actor=call.principal.actor,
        )
    )
    return json_response(group_out(made), 201)


async def get_group(call: Call) -> Response:
    tenant_id, group_id = call.tenant_id, call.path("group_id")
    return json_response(
        group_out(
            await call.st.db.read(lambda conn: groups.get(conn, tenant_id=tenant_id, group_id=group_id))
        )
    )


async def update_group(call: Call) -> Response:
    body: m.GroupUpdate = call.body
    tenant_id, group_id = call.tenant_id, call.path("group_id")
    if "display_name" in body.model_fields_set and body.display_name is None:
        raise ValueError("display_name cannot be null")
    changed = await call.st.db.write(
        lambda tx: groups.update_group(
            tx,
            tenant_id=tenant_id,
            group_id=group_id,
            display_name=body.display_name,
            external_id=body.external_id,
            set_external_id="external_id" in body.model_fields_set,
            members=body.members,
            actor=call.principal.actor,
        )
    )
    return json_response(group_out(changed))


async def delete_group(call: Call) -> Response:
    tenant_id, group_id = call.tenant_id, call.path("group_id")
    await call.st.db.write(
        lambda tx: groups.delete_group(tx, tenant_id=tenant_id, group_id=group_id, actor=call.principal.actor)
    )
    return Response(status_code=204)


async def _membership(call: Call, *, add: bool) -> Response:
    tenant_id, group_id, eid_id = call.tenant_id, call.path("group_id"), call.path("user_id")

    def unit(tx: Tx) -> groups.Group:
        current = groups.get(tx.conn, tenant_id=tenant_id, group_id=group_id)
        if not add and eid_id not in current.members:
            raise NotFoundError(f"user {eid_id!r} is not a member of this group")
        return groups.update_group(
            tx,
            tenant_id=tenant_id,
            group_id=group_id,
            add=[eid_id] if add else (),
            remove=[] if add else [eid_id],
            actor=call.principal.actor,
        )

    await call.st.db.write(unit)
    return Response(status_code=204)


async def add_member(call: Call) -> Response:
    return await _membership(call, add=True)


async def remove_member(call: Call) -> Response:
    return await _membership(call, add=False)


PAGE = (
    Query("offset", 0, 1_000_000_000, 0, "how many items to skip"),
    Query("limit", 1, 200, 50, "page size"),
)
T = "/tenants/{tenant_id}"
U = T + "/users/{user_id}"
G = T + "/groups/{group_id}"
OPERATIONS: list[tuple[Operation, Any]] = [
    (
        Operation(
            "GET",
            T + "/users",
            "listUsers",
            "A page of the tenant's users (eIDs)",
            "users",
            response=m.UserList,
            query=PAGE,
        ),
        list_users,
    ),
    (
        Operation(
            "POST",
            T + "/users",
            "createUser",
            "Create a user (eID)",
            "users",
            status=201,
            request=m.UserCreate,
            response=m.User,
        ),
        create_user,
    ),
    (Operation("GET", U, "getUser", "A user", "users", response=m.User), get_user),
    (
        Operation(
            "PATCH",
            U,
            "updateUser",
            "Change a user's username or attributes (null removes one)",
            "users",
            request=m.UserUpdate,
            response=m.User,
        ),
        update_user,
    ),
    (
        Operation(
            "DELETE",
            U,
            "eraseUser",
            "Erase a user and their personal data (GDPR Art. 17)",
            "users",
            status=204,
        ),
        erase_user,
    ),
    (
        Operation(
            "POST",
            U + "/suspend",
            "suspendUser",
            "Suspend: sessions end and tokens are revoked at once",
            "users",
            request=m.StatusChange,
            response=m.User,
        ),
        suspend_user,
    ),
    (
        Operation(
            "POST",
            U + "/enable",
            "enableUser",
            "Re-enable a suspended or blocked user",
            "users",
            request=m.StatusChange,
            response=m.User,
        ),
        enable_user,
    ),
    (
        Operation("GET", T + "/groups", "listGroups", "The tenant's groups", "groups", response=m.GroupList),
        list_groups,
    ),
    (
        Operation(
            "POST",
            T + "/groups",
            "createGroup",
            "Create a group",
            "groups",
            status=201,
            request=m.GroupCreate,
            response=m.Group,
        ),
        create_group,
    ),
    (Operation("GET", G, "getGroup", "A group with its members", "groups", response=m.Group), get_group),
    (
        Operation(
            "PATCH",
            G,
            "updateGroup",
            "Rename a group or replace its members",
            "groups",
            request=m.GroupUpdate,
            response=m.Group,
        ),
        update_group,
    ),
    (Operation("DELETE", G, "deleteGroup", "Delete a group", "groups", status=204), delete_group),
    (
        Operation(
            "PUT", G + "/members/{user_id}", "addGroupMember", "Add a user to a group", "groups", status=204
        ),
        add_member,
    ),
    (
        Operation(
            "DELETE",
            G + "/members/{user_id}",
            "removeGroupMember",
            "Remove a user from a group",
            "groups",
            status=204,
        ),
        remove_member,
    ),
]
