"""The administration API's invitations (issue 3's admin endpoint): create (mailed like
``idp user invite``), list, get, revoke. Plumbing in :mod:`idp.web.admin_http`."""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.responses import Response

from idp import clients, eids, invitations
from idp.admin import models as m
from idp.admin import queries
from idp.admin.openapi import Operation
from idp.errors import DeliveryError, NotFoundError
from idp.storage.database import Tx
from idp.web.admin_http import Call, json_response
from idp.web.admin_people_routes import PAGE, T
from idp.web.invitation_mail import invitation_link, send_invitation

log = logging.getLogger("idp.admin")

# -- invitations (issue 3's admin endpoint) --------------------------------------------------------


def invitation_out(inv: invitations.Invitation, revoked_at: float | None, now: float) -> m.Invitation:
    if revoked_at is not None:
        status = "revoked"
    elif inv.completed_at is not None:
        status = "completed"
    elif inv.expires_at <= now:
        status = "expired"
    else:
        status = "opened" if inv.opened_at is not None else "pending"
    return m.Invitation(
        id=inv.id,
        email=inv.email,
        status=status,  # type: ignore[arg-type]
        acr=inv.acr,
        given_name=inv.given_name,
        family_name=inv.family_name,
        phone_number=inv.phone_number,
        country=inv.country,
        client_id=inv.client_id,
        return_url=inv.return_url,
        language=inv.language,
        eid_id=inv.eid_id,
        created_at=inv.created_at,
        expires_at=inv.expires_at,
    )


async def list_invitations(call: Call) -> Response:
    tenant_id, offset, limit = call.tenant_id, call.query["offset"], call.query["limit"]
    found, total = await call.st.db.read(
        lambda conn: queries.invitation_page(conn, tenant_id=tenant_id, offset=offset, limit=limit)
    )
    now = time.time()
    items = [invitation_out(inv, revoked, now) for inv, revoked in found]
    return json_response(m.InvitationList(items=items, total=total, offset=offset, limit=limit))


async def create_invitation(call: Call) -> Response:
    """Like ``idp user invite``: the invitation is created, then its link is mailed."""
    body: m.InvitationCreate = call.body
    st, tenant = call.st, call.tenant
    assert tenant is not None
    ttl = float(body.valid_days * 86400 if body.valid_days else st.settings.invitation_ttl)

    def unit(tx: Tx) -> tuple[invitations.Invitation, str, bool]:
        client = None
        if body.client_id is not None:
            client = clients.get(tx.conn, body.client_id)
            if client is None or client.tenant_id != tenant.id:
                raise NotFoundError(f"no client {body.client_id!r} in this tenant")
        inv, token = invitations.create(
            tx,
            tenant_id=tenant.id,
            email=body.email,
            acr=body.acr,
            ttl=ttl,
            given_name=body.given_name,
            family_name=body.family_name,
            phone_number=body.phone_number,
            country=body.country,
            client=client,
            return_url=body.return_url,
            language=body.language,
            offered=st.settings.languages,
            created_by=call.principal.actor,
        )
        return inv, token, eids.find_by_email(tx.conn, tenant_id=tenant.id, email=inv.email) is not None

    inv, token, existing = await st.db.write(unit)
    mailed = False
    if body.send_mail:
        try:
            await send_invitation(
                settings=st.settings,
                pages=st.pages,
                mailer=st.mailer,
                invitation=inv,
                token=token,
                tenant=tenant,
                existing=existing,
            )
            mailed = True
        except DeliveryError as exc:  # the invitation stands; the caller sees mailed=false
            log.warning("invitation %s could not be mailed: %s", inv.id, exc)
        except Exception:  # an address the mail library cannot put in a header, and the like
            log.exception("invitation %s could not be mailed", inv.id)
    out: dict[str, Any] = invitation_out(inv, None, time.time()).model_dump()
    link = None if body.send_mail else invitation_link(st.settings, token)
    return json_response(m.InvitationCreated(**out, mailed=mailed, link=link), 201)


async def get_invitation(call: Call) -> Response:
    tenant_id, invitation_id = call.tenant_id, call.path("invitation_id")
    found = await call.st.db.read(
        lambda conn: queries.invitation_of_tenant(conn, tenant_id=tenant_id, invitation_id=invitation_id)
    )
    if found is None:
        raise NotFoundError(f"no invitation {invitation_id!r} in this tenant")
    return json_response(invitation_out(found[0], found[1], time.time()))


async def revoke_invitation(call: Call) -> Response:
    tenant_id, invitation_id = call.tenant_id, call.path("invitation_id")
    await call.st.db.write(
        lambda tx: invitations.revoke(
            tx, invitation_id=invitation_id, tenant_id=tenant_id, actor=call.principal.actor
        )
    )
    return Response(status_code=204)


OPERATIONS: list[tuple[Operation, Any]] = [
    (
        Operation(
            "GET",
            T + "/invitations",
            "listInvitations",
            "A page of the tenant's invitations, newest first",
            "invitations",
            response=m.InvitationList,
            query=PAGE,
        ),
        list_invitations,
    ),
    (
        Operation(
            "POST",
            T + "/invitations",
            "createInvitation",
            "Invite a person; the link is mailed to them",
            "invitations",
            status=201,
            request=m.InvitationCreate,
            response=m.InvitationCreated,
        ),
        create_invitation,
    ),
    (
        Operation(
            "GET",
            T + "/invitations/{invitation_id}",
            "getInvitation",
            "An invitation",
            "invitations",
            response=m.Invitation,
        ),
        get_invitation,
    ),
    (
        Operation(
            "DELETE",
            T + "/invitations/{invitation_id}",
            "revokeInvitation",
            "Withdraw an open invitation",
            "invitations",
            status=204,
            errors=(400, 404),
        ),
        revoke_invitation,
    ),
]
