"""SCIM 2.0 over HTTP (RFC 7644), mounted at ``/scim/v2``: authentication, JSON, status codes.

Protocol logic lives in :mod:`idp.scim`; this module reads requests, authenticates the
per-tenant bearer token, runs units of work and renders resources and errors as
``application/scim+json``. Every error is an RFC 7644 §3.12 Error body, never a 500 page.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from scim2_models import Context, EnterpriseUser, Error, Group, ResponseParameters, User
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from idp.scim import bulk, query, schema, tokens
from idp.scim import groups as scim_groups
from idp.scim import users as scim_users
from idp.scim.errors import (
    InvalidSyntaxError,
    InvalidValueError,
    MethodNotAllowedError,
    PayloadTooLargeError,
    ResourceNotFoundError,
    ScimError,
    UnauthorizedError,
    UniquenessError,
)
from idp.storage.text import check_storable
from idp.web.browser import state

log = logging.getLogger("idp.scim")
SCIM_PREFIX = "/scim/v2"  # where the app mounts these routes
MEDIA_TYPE = "application/scim+json"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
Handler = Callable[[Request, str], Awaitable[Response]]


def scim_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    content = b"" if body is None else json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(
        content, status_code=status, media_type=MEDIA_TYPE if body is not None else None, headers=headers
    )


def error_response(exc: ScimError) -> Response:
    """RFC 7644 §3.12 Error body, built with scim2-models."""
    error = Error(status=exc.status, scim_type=exc.scim_type, detail=str(exc))
    headers = {"WWW-Authenticate": 'Bearer realm="scim"'} if exc.status == 401 else None
    return scim_response(error.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE), exc.status, headers)


def router_error(status: int, detail: str, *, headers: Mapping[str, str] | None = None) -> Response:
    """An Error for what the router answers itself (a method no route of the path takes)."""
    error = Error(status=status, detail=detail)
    body = error.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    return scim_response(body, status, dict(headers) if headers else None)


def base_url(request: Request) -> str:
    return state(request).settings.issuer.rstrip("/") + SCIM_PREFIX


async def _tenant(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise UnauthorizedError("a bearer token is required (Authorization: Bearer …)")
    found = await state(request).db.read(lambda conn: tokens.authenticate(conn, value.strip()))
    if found is None:
        raise UnauthorizedError("the bearer token is unknown or revoked")
    return found.tenant_id


def scim_endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Authenticate, run ``handler(request, tenant_id)``, map every failure to a SCIM Error."""

    async def endpoint(request: Request) -> Response:
        try:
            tenant_id = await _tenant(request)
            return await handler(request, tenant_id)
        except ScimError as exc:
            return error_response(exc)
        except IntegrityError:
            return error_response(UniquenessError("a resource with these unique values already exists"))
        except Exception:  # never a 500 page: still a SCIM Error body
            log.exception("SCIM request failed: %s %s", request.method, request.url.path)
            return error_response(_InternalError("the request could not be processed"))

    return endpoint


class _InternalError(ScimError):
    status = 500


async def read_json(request: Request) -> Any:
    body = await request.body()
    if len(body) > schema.MAX_PAYLOAD:
        raise PayloadTooLargeError(f"the request body is larger than {schema.MAX_PAYLOAD} bytes")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("application/scim+json", "application/json", ""):
        raise InvalidSyntaxError(f"the request body must be application/scim+json, not {kind}")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidSyntaxError(f"the request body is not JSON: {exc}") from exc
    except RecursionError:
        raise InvalidSyntaxError("the request body is nested too deeply") from None
    try:
        check_storable(data)
    except ValueError as exc:
        raise InvalidValueError(str(exc)) from None
    return data


# -- attribute selection (RFC 7644 §3.9), by scim2-models ------------------------------------------


def _project(
    resources: list[dict[str, Any]], kind: str, attributes: Any, excluded: Any
) -> list[dict[str, Any]]:
    if not attributes and not excluded:
        return resources
    model: Any = User[EnterpriseUser] if kind == "User" else Group
    try:
        params = ResponseParameters[model].model_validate(
            {"attributes": attributes or None, "excludedAttributes": excluded or None}
        )
    except Exception as exc:
        raise InvalidValueError(f"attributes/excludedAttributes: {exc}") from exc
    out = []
    for resource in resources:
        projected = model.model_validate(resource).model_dump(
            scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=params
        )
        projected["id"] = resource["id"]
        out.append(projected)
    return out


# -- discovery (RFC 7644 §4) -----------------------------------------------------------------------


async def service_provider_config(request: Request, tenant_id: str) -> Response:
    return scim_response(schema.service_provider_config(base_url(request)))


def _listing(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": [LIST_RESPONSE],
        "totalResults": len(items),
        "startIndex": 1,
        "itemsPerPage": len(items),
        "Resources": items,
    }


async def list_schemas(request: Request, tenant_id: str) -> Response:
    return scim_response(_listing(schema.schemas_payload(base_url(request))))


async def get_schema(request: Request, tenant_id: str) -> Response:
    wanted = request.path_params["id"]
    for item in schema.schemas_payload(base_url(request)):
        if item["id"] == wanted:
            return scim_response(item)
    raise ResourceNotFoundError(f"no schema {wanted!r}")


async def list_resource_types(request: Request, tenant_id: str) -> Response:
    return scim_response(_listing(schema.resource_types_payload(base_url(request))))


async def get_resource_type(request: Request, tenant_id: str) -> Response:
    wanted = request.path_params["id"]
    for item in schema.resource_types_payload(base_url(request)):
        if item["id"] == wanted:
            return scim_response(item)
    raise ResourceNotFoundError(f"no resource type {wanted!r}")


# -- resources -------------------------------------------------------------------------------------


class _Kind:
    """What differs between Users and Groups."""

    def __init__(self, name: str, module: Any, search: Any) -> None:
        self.name, self.module, self.search = name, module, search


USERS = _Kind("User", scim_users, query.search_users)
GROUPS = _Kind("Group", scim_groups, query.search_groups)


def _actor(request: Request) -> str:
    return "scim"


def _one(kind: _Kind, request: Request, record: Any, status: int = 200) -> Response:
    body = kind.module.to_json(record, base_url(request))
    headers = {"ETag": record.etag}
    if status == 201:
        headers["Location"] = body["meta"]["location"]
    params = request.query_params
    projected = _project([body], kind.name, params.get("attributes"), params.get("excludedAttributes"))[0]
    return scim_response(projected, status, headers)


async def _search(kind: _Kind, request: Request, tenant_id: str, params: dict[str, Any]) -> dict[str, Any]:
    page = query.page_of(params.get("startIndex"), params.get("count"))
    order = str(params.get("sortOrder") or "ascending").lower()
    if order not in ("ascending", "descending"):
        raise InvalidValueError(f"sortOrder must be ascending or descending, got {params.get('sortOrder')!r}")
    filter_text = params.get("filter")
    if filter_text is not None and not isinstance(filter_text, str):
        raise InvalidValueError("filter must be a string")
    sort_by = params.get("sortBy")
    if sort_by is not None and not isinstance(sort_by, str):
        raise InvalidValueError("sortBy must be a string")

    def run(conn: Any) -> tuple[int, list[Any]]:
        total, ids = kind.search(
            conn,
            tenant_id=tenant_id,
            filter_text=filter_text,
            sort_by=sort_by,
            descending=order == "descending",
            page=page,
        )
        return total, kind.module.load_many(conn, tenant_id=tenant_id, ids=ids)

    total, records = await state(request).db.read(run)
    resources = [kind.module.to_json(r, base_url(request)) for r in records]
    resources = _project(resources, kind.name, params.get("attributes"), params.get("excludedAttributes"))
    return {
        "schemas": [LIST_RESPONSE],
        "totalResults": total,
        "startIndex": page.start_index,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


def _collection(kind: _Kind) -> Handler:
    async def handler(request: Request, tenant_id: str) -> Response:
        if request.method == "GET":
            return scim_response(await _search(kind, request, tenant_id, dict(request.query_params)))
        body = await read_json(request)
        record = await state(request).db.write(
            lambda tx: kind.module.create(tx, tenant_id=tenant_id, body=body, actor=_actor(request))
        )
        return _one(kind, request, record, 201)

    return handler


def _search_endpoint(kind: _Kind) -> Handler:
    async def handler(request: Request, tenant_id: str) -> Response:
        return scim_response(
            await _search(kind, request, tenant_id, _search_params(await read_json(request)))
        )

    return handler


def _search_params(body: Any) -> dict[str, Any]:
    """A SearchRequest (§3.4.3) as query parameters; list-valued attributes joined by commas."""
    schemas = body.get("schemas") if isinstance(body, dict) else None
    if not isinstance(schemas, list) or SEARCH_REQUEST not in schemas:
        raise InvalidSyntaxError(f"a search request must carry schemas [{SEARCH_REQUEST!r}]")
    params = dict(body)
    for key in ("attributes", "excludedAttributes"):
        value = params.get(key)
        if isinstance(value, list):
            params[key] = ",".join(str(v) for v in value)
        elif value is not None and not isinstance(value, str):
            raise InvalidValueError(f"{key} must be a list of attribute names")
    return params


def _resource(kind: _Kind) -> Handler:
    async def handler(request: Request, tenant_id: str) -> Response:
        ident = request.path_params["id"]
        if len(ident) > 64 or not ident.isprintable():  # no id looks so; PostgreSQL text holds no NUL
            raise ResourceNotFoundError(f"no {kind.name} {ident[:64]!r}")
        if_match = request.headers.get("if-match")
        db = state(request).db
        id_arg = "eid_id" if kind is USERS else "group_id"
        if request.method == "GET":
            record = await db.read(
                lambda conn: kind.module.load(conn, tenant_id=tenant_id, **{id_arg: ident})
            )
            none_match = request.headers.get("if-none-match")
            if none_match and (
                none_match.strip() == "*"
                or record.etag.removeprefix("W/")
                in [t.strip().removeprefix("W/") for t in none_match.split(",")]
            ):
                return Response(status_code=304, headers={"ETag": record.etag})
            return _one(kind, request, record)
        if request.method == "DELETE":
            await db.write(
                lambda tx: kind.module.remove(
                    tx, tenant_id=tenant_id, if_match=if_match, actor=_actor(request), **{id_arg: ident}
                )
            )
            return Response(status_code=204)
        body = await read_json(request)
        action = kind.module.replace if request.method == "PUT" else kind.module.modify
        record = await db.write(
            lambda tx: action(
                tx,
                tenant_id=tenant_id,
                body=body,
                if_match=if_match,
                actor=_actor(request),
                **{id_arg: ident},
            )
        )
        return _one(kind, request, record)

    return handler


# -- root search and bulk ----------------------------------------------------------------------


async def root_search(request: Request, tenant_id: str) -> Response:
    """POST /.search (§3.4.3) over Users and Groups; a filter only one type understands narrows to it."""
    params = _search_params(await read_json(request))
    page = query.page_of(params.get("startIndex"), params.get("count"))
    everything = {**params, "startIndex": 1, "count": schema.MAX_RESULTS}
    resources: list[dict[str, Any]] = []
    total = 0
    failures: list[ScimError] = []
    for kind in (USERS, GROUPS):
        try:
            found = await _search(kind, request, tenant_id, everything)
        except ScimError as exc:
            failures.append(exc)
            continue
        total += found["totalResults"]
        resources += found["Resources"]
    if len(failures) == 2:
        raise failures[0]
    window = resources[page.start_index - 1 : page.start_index - 1 + page.count]
    return scim_response(
        {
            "schemas": [LIST_RESPONSE],
            "totalResults": total,
            "startIndex": page.start_index,
            "itemsPerPage": len(window),
            "Resources": window,
        }
    )


async def bulk_endpoint(request: Request, tenant_id: str) -> Response:
    body = await read_json(request)
    db = state(request).db
    base = base_url(request)

    async def execute(method: str, path: str, data: Any, version: str | None) -> bulk.Outcome:
        parts = path.strip("/").split("/")
        kind = USERS if parts[0] == "Users" else GROUPS
        id_arg = "eid_id" if kind is USERS else "group_id"
        try:
            if method == "POST":
                record = await db.write(
                    lambda tx: kind.module.create(tx, tenant_id=tenant_id, body=data, actor="scim-bulk")
                )
                status = 201
            elif method == "DELETE":
                await db.write(
                    lambda tx: kind.module.remove(
                        tx, tenant_id=tenant_id, if_match=version, actor="scim-bulk", **{id_arg: parts[1]}
                    )
                )
                return bulk.Outcome(204, location=f"{base}/{parts[0]}/{parts[1]}")
            else:
                action = kind.module.replace if method == "PUT" else kind.module.modify
                record = await db.write(
                    lambda tx: action(
                        tx,
                        tenant_id=tenant_id,
                        body=data,
                        if_match=version,
                        actor="scim-bulk",
                        **{id_arg: parts[1]},
                    )
                )
                status = 200
        except IntegrityError as exc:
            raise UniquenessError("a resource with these unique values already exists") from exc
        resource = kind.module.to_json(record, base)
        return bulk.Outcome(status, resource, resource["meta"]["location"], record.etag)

    return scim_response(await bulk.run(body, execute))


async def not_found(request: Request, tenant_id: str) -> Response:
    """Unknown paths are 404 and known paths with another method 405, both as SCIM Errors."""
    allowed = sorted(
        {
            m
            for route in routes[:-1]
            if route.matches(request.scope)[0] == Match.PARTIAL
            for m in route.methods or ()
        }
        - {"HEAD"}
    )
    if allowed:
        raise MethodNotAllowedError(f"{request.method} is not allowed here; allowed: {', '.join(allowed)}")
    raise ResourceNotFoundError(f"no SCIM endpoint at {request.url.path}")


ALL = ["GET", "POST", "PUT", "PATCH", "DELETE"]

routes = [
    Route("/ServiceProviderConfig", scim_endpoint(service_provider_config), methods=["GET"]),
    Route("/Schemas", scim_endpoint(list_schemas), methods=["GET"]),
    Route("/Schemas/{id:path}", scim_endpoint(get_schema), methods=["GET"]),
    Route("/ResourceTypes", scim_endpoint(list_resource_types), methods=["GET"]),
    Route("/ResourceTypes/{id}", scim_endpoint(get_resource_type), methods=["GET"]),
    Route("/Users", scim_endpoint(_collection(USERS)), methods=["GET", "POST"]),
    Route("/Users/.search", scim_endpoint(_search_endpoint(USERS)), methods=["POST"]),
    Route("/Users/{id}", scim_endpoint(_resource(USERS)), methods=["GET", "PUT", "PATCH", "DELETE"]),
    Route("/Groups", scim_endpoint(_collection(GROUPS)), methods=["GET", "POST"]),
    Route("/Groups/.search", scim_endpoint(_search_endpoint(GROUPS)), methods=["POST"]),
    Route("/Groups/{id}", scim_endpoint(_resource(GROUPS)), methods=["GET", "PUT", "PATCH", "DELETE"]),
    Route("/.search", scim_endpoint(root_search), methods=["POST"]),
    Route("/Bulk", scim_endpoint(bulk_endpoint), methods=["POST"]),
    Route("/{rest:path}", scim_endpoint(not_found), methods=ALL),
]
