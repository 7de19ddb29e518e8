"""The tenant administration API at ``/admin/v1`` (tenants, branding, clients, SCIM tokens) and
its OpenAPI document at ``/openapi.json``. Users, groups and invitations are in
:mod:`idp.web.admin_people_routes`; the plumbing (auth, bodies, problems) in :mod:`idp.web.admin_http`."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from idp import client_changes, clients, tenants
from idp.admin import models as m
from idp.admin.openapi import Operation, document
from idp.admin.principal import AdminAuthError
from idp.errors import NotFoundError
from idp.scim import tokens as scim_tokens
from idp.storage.database import Tx
from idp.web import admin_invitation_routes, admin_people_routes
from idp.web.admin_http import Call, endpoint, json_response
from idp.web.browser import state

# -- tenants and branding ---------------------------------------------------------------------------


def tenant_out(t: tenants.Tenant) -> m.Tenant:
    return m.Tenant(
        id=t.id,
        slug=t.slug,
        name=t.name,
        status=t.status,
        branding=m.BrandingOut(**dict(t.branding)),
        login_token_unknown_users=t.login_token_unknown_users,
    )


async def list_tenants(call: Call) -> Response:
    principal = call.principal
    found = await call.st.db.read(tenants.list_all)
    items = [tenant_out(t) for t in found if principal.may_administer(t.id)]
    return json_response(m.TenantList(items=items))


async def create_tenant(call: Call) -> Response:
    body: m.TenantCreate = call.body
    branding = body.branding.model_dump(exclude_none=True) if body.branding else {}

    def unit(tx: Tx) -> tenants.Tenant:
        tenant = tenants.create(tx, slug=body.slug, name=body.name, branding=branding)
        if body.login_token_unknown_users != "refuse":
            tenant = tenants.update_tenant(
                tx,
                tenant_id=tenant.id,
                login_token_unknown_users=body.login_token_unknown_users,
                actor=call.principal.actor,
            )
        return tenant

    return json_response(tenant_out(await call.st.db.write(unit)), 201)


async def get_tenant(call: Call) -> Response:
    assert call.tenant is not None
    return json_response(tenant_out(call.tenant))


async def update_tenant(call: Call) -> Response:
    body: m.TenantUpdate = call.body
    if body.status is not None and not call.principal.platform:
        raise AdminAuthError(403, "insufficient_scope", "changing a tenant's status needs admin:platform")
    tenant_id = call.tenant_id
    updated = await call.st.db.write(
        lambda tx: tenants.update_tenant(
            tx,
            tenant_id=tenant_id,
            name=body.name,
            branding=body.branding.model_dump(exclude_none=True) if body.branding else None,
            status=body.status,
            login_token_unknown_users=body.login_token_unknown_users,
            actor=call.principal.actor,
        )
    )
    return json_response(tenant_out(updated))


async def get_branding(call: Call) -> Response:
    assert call.tenant is not None
    return json_response(m.BrandingOut(**dict(call.tenant.branding)))


async def put_branding(call: Call) -> Response:
    body: m.Branding = call.body
    tenant_id = call.tenant_id
    updated = await call.st.db.write(
        lambda tx: tenants.update_tenant(
            tx, tenant_id=tenant_id, branding=body.model_dump(exclude_none=True), actor=call.principal.actor
        )
    )
    return json_response(m.BrandingOut(**dict(updated.branding)))


# -- clients --------------------------------------------------------------------------------------


def client_out(c: clients.Client) -> m.Client:
    return m.Client(
        client_id=c.client_id,
        tenant_id=c.tenant_id,
        name=c.name,
        client_type=c.client_type,
        token_endpoint_auth_method=c.token_endpoint_auth_method,
        redirect_uris=list(c.redirect_uris),
        post_logout_redirect_uris=list(c.post_logout_redirect_uris),
        grant_types=list(c.grant_types),
        scopes=list(c.scopes),
        jwks=dict(c.jwks) if c.jwks else None,
        id_token_signed_response_alg=c.id_token_signed_response_alg,
        default_acr=c.default_acr,
        minimum_acr=c.minimum_acr,
        active=c.active,
        login_token_acr=c.login_token_acr,
    )


def _no_platform_grant(call: Call, scopes: list[str] | None) -> None:
    if scopes and clients.PLATFORM_SCOPE in scopes and not call.principal.platform:
        raise AdminAuthError(403, "insufficient_scope", "only a platform admin may grant admin:platform")


async def _changed(call: Call, client_id: str) -> None:
    call.st.clients.invalidate([client_id])
    await call.st.announce(f"client:{client_id}")


async def list_clients(call: Call) -> Response:
    tenant_id = call.tenant_id
    found = await call.st.db.read(lambda conn: clients.list_for_tenant(conn, tenant_id))
    return json_response(m.ClientList(items=[client_out(c) for c in found]))


async def create_client(call: Call) -> Response:
    body: m.ClientCreate = call.body
    _no_platform_grant(call, body.scopes)
    jwks = client_changes.validate_jwks(body.jwks.model_dump()) if body.jwks else None
    tenant_id, seal_key = call.tenant_id, call.st.settings.secret_key
    method = clients.AuthMethod(body.token_endpoint_auth_method) if body.token_endpoint_auth_method else None
    new = await call.st.db.write(
        lambda tx: clients.create(
            tx,
            tenant_id=tenant_id,
            name=body.name,
            client_type=clients.ClientType(body.client_type),
            redirect_uris=body.redirect_uris,
            post_logout_redirect_uris=body.post_logout_redirect_uris,
            grant_types=list(dict.fromkeys(body.grant_types)),
            scopes=list(dict.fromkeys(body.scopes)) if body.scopes is not None else clients.SCOPES,
            auth_method=method,
            jwks=jwks,
            id_token_alg=body.id_token_signed_response_alg,
            default_acr=body.default_acr,
            minimum_acr=body.minimum_acr,
            login_token_acr=body.login_token_acr,
            seal_key=seal_key,
        )
    )
    await _changed(call, new.client.client_id)
    out = m.ClientCreated(**client_out(new.client).model_dump(), client_secret=new.client_secret)
    return json_response(out, 201)


async def _client(call: Call) -> clients.Client:
    tenant_id, client_id = call.tenant_id, call.path("client_id")
    found = await call.st.db.read(lambda conn: clients.get(conn, client_id))
    if found is None or found.tenant_id != tenant_id:
        raise NotFoundError(f"no client {client_id!r} in this tenant")
    return found


async def get_client(call: Call) -> Response:
    return json_response(client_out(await _client(call)))


async def update_client(call: Call) -> Response:
    body: m.ClientUpdate = call.body
    _no_platform_grant(call, body.scopes)
    changes: dict[str, Any] = {}
    for name in body.model_fields_set:
        value = getattr(body, name)
        if name in ("name", "active", "redirect_uris", "post_logout_redirect_uris", "grant_types", "scopes"):
            if value is None:
                raise ValueError(f"{name} cannot be null")
        if name == "jwks" and value is not None:
            value = value.model_dump()
        if name in ("grant_types", "scopes") and value is not None:
            value = list(dict.fromkeys(value))
        changes[name] = value
    tenant_id, client_id = call.tenant_id, call.path("client_id")
    updated = await call.st.db.write(
        lambda tx: client_changes.update_client(
            tx, tenant_id=tenant_id, client_id=client_id, changes=changes, actor=call.principal.actor
        )
    )
    await _changed(call, client_id)
    return json_response(client_out(updated))


async def delete_client(call: Call) -> Response:
    tenant_id, client_id = call.tenant_id, call.path("client_id")
    await call.st.db.write(
        lambda tx: client_changes.delete_client(
            tx, tenant_id=tenant_id, client_id=client_id, actor=call.principal.actor
        )
    )
    await _changed(call, client_id)
    return Response(status_code=204)


async def rotate_secret(call: Call) -> Response:
    tenant_id, client_id, seal_key = call.tenant_id, call.path("client_id"), call.st.settings.secret_key
    new = await call.st.db.write(
        lambda tx: client_changes.rotate_secret(
            tx, tenant_id=tenant_id, client_id=client_id, seal_key=seal_key, actor=call.principal.actor
        )
    )
    await _changed(call, client_id)
    return json_response(
        m.ClientCreated(**client_out(new.client).model_dump(), client_secret=new.client_secret)
    )


# -- SCIM tokens ----------------------------------------------------------------------------------


def scim_token_out(t: scim_tokens.ScimToken) -> m.ScimToken:
    return m.ScimToken(id=t.id, name=t.name, created_at=t.created_at, revoked_at=t.revoked_at)


async def list_scim_tokens(call: Call) -> Response:
    tenant_id = call.tenant_id
    found = await call.st.db.read(lambda conn: scim_tokens.list_for(conn, tenant_id=tenant_id))
    return json_response(m.ScimTokenList(items=[scim_token_out(t) for t in found]))


async def create_scim_token(call: Call) -> Response:
    body: m.ScimTokenCreate = call.body
    tenant_id = call.tenant_id
    new = await call.st.db.write(lambda tx: scim_tokens.create(tx, tenant_id=tenant_id, name=body.name))
    return json_response(m.ScimTokenCreated(**scim_token_out(new.token).model_dump(), token=new.secret), 201)


async def revoke_scim_token(call: Call) -> Response:
    tenant_id, token_id = call.tenant_id, call.path("token_id")

    def unit(tx: Tx) -> None:
        if not any(t.id == token_id for t in scim_tokens.list_for(tx.conn, tenant_id=tenant_id)):
            raise NotFoundError(f"no SCIM token {token_id!r} in this tenant")
        scim_tokens.revoke(tx, token_id=token_id)

    await call.st.db.write(unit)
    return Response(status_code=204)


# -- the operation table: routes and the OpenAPI document come from it -----------------------------

T = "/tenants/{tenant_id}"
OPERATIONS: list[tuple[Operation, Any]] = [
    (
        Operation(
            "GET",
            "/tenants",
            "listTenants",
            "The tenants this token administers",
            "tenants",
            response=m.TenantList,
            errors=(400,),
        ),
        list_tenants,
    ),
    (
        Operation(
            "POST",
            "/tenants",
            "createTenant",
            "Create a tenant",
            "tenants",
            status=201,
            request=m.TenantCreate,
            response=m.Tenant,
            platform=True,
            errors=(400, 422),
        ),
        create_tenant,
    ),
    (Operation("GET", T, "getTenant", "A tenant", "tenants", response=m.Tenant), get_tenant),
    (
        Operation(
            "PATCH",
            T,
            "updateTenant",
            "Change a tenant (status needs admin:platform)",
            "tenants",
            request=m.TenantUpdate,
            response=m.Tenant,
        ),
        update_tenant,
    ),
    (
        Operation(
            "GET", T + "/branding", "getBranding", "The tenant's branding", "branding", response=m.BrandingOut
        ),
        get_branding,
    ),
    (
        Operation(
            "PUT",
            T + "/branding",
            "putBranding",
            "Replace the tenant's branding",
            "branding",
            request=m.Branding,
            response=m.BrandingOut,
        ),
        put_branding,
    ),
    (
        Operation(
            "GET", T + "/clients", "listClients", "The tenant's clients", "clients", response=m.ClientList
        ),
        list_clients,
    ),
    (
        Operation(
            "POST",
            T + "/clients",
            "createClient",
            "Register a client (its secret is shown once)",
            "clients",
            status=201,
            request=m.ClientCreate,
            response=m.ClientCreated,
        ),
        create_client,
    ),
    (
        Operation("GET", T + "/clients/{client_id}", "getClient", "A client", "clients", response=m.Client),
        get_client,
    ),
    (
        Operation(
            "PATCH",
            T + "/clients/{client_id}",
            "updateClient",
            "Change a client",
            "clients",
            request=m.ClientUpdate,
            response=m.Client,
        ),
        update_client,
    ),
    (
        Operation(
            "DELETE",
            T + "/clients/{client_id}",
            "deleteClient",
            "Delete a client with its codes and tokens",
            "clients",
            status=204,
        ),
        delete_client,
    ),
    (
        Operation(
            "POST",
            T + "/clients/{client_id}/secret",
            "rotateClientSecret",
            "A new client secret; the old one stops working at once",
            "clients",
            response=m.ClientCreated,
        ),
        rotate_secret,
    ),
    (
        Operation(
            "GET",
            T + "/scim-tokens",
            "listScimTokens",
            "The tenant's SCIM bearer tokens",
            "scim-tokens",
            response=m.ScimTokenList,
        ),
        list_scim_tokens,
    ),
    (
        Operation(
            "POST",
            T + "/scim-tokens",
            "createScimToken",
            "Mint a SCIM bearer token (shown once)",
            "scim-tokens",
            status=201,
            request=m.ScimTokenCreate,
            response=m.ScimTokenCreated,
        ),
        create_scim_token,
    ),
    (
        Operation(
            "DELETE",
            T + "/scim-tokens/{token_id}",
            "revokeScimToken",
            "Revoke a SCIM token",
            "scim-tokens",
            status=204,
        ),
        revoke_scim_token,
    ),
    *admin_people_routes.OPERATIONS,
    *admin_invitation_routes.OPERATIONS,
]


ADMIN_PREFIX = "/admin/v1"
OPENAPI_PATH = "/openapi.json"


async def openapi(request: Request) -> Response:
    st = state(request)
    doc = document([op for op, _ in OPERATIONS], issuer=st.settings.issuer, version="1")
    return JSONResponse(doc, headers={"Cache-Control": "public, max-age=300"})


def _routes() -> list[Route]:
    by_path: dict[str, list[tuple[Operation, Any]]] = {}
    for op, handler in OPERATIONS:
        by_path.setdefault(op.path, []).append((op, handler))
    out = []
    for path, ops in by_path.items():
        handlers: dict[str, Any] = {op.method: endpoint(op, handler) for op, handler in ops}

        async def dispatch(request: Request, handlers: dict[str, Any] = handlers) -> Response:
            # HEAD is GET without the body (RFC 9110 §9.3.2); the router allows it wherever GET is
            method = "GET" if request.method == "HEAD" else request.method
            return await handlers[method](request)  # type: ignore[no-any-return]

        out.append(Route(ADMIN_PREFIX + path, dispatch, methods=list(handlers)))
    return out


routes = [Route(OPENAPI_PATH, openapi, methods=["GET"]), *_routes()]
