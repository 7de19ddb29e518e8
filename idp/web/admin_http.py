"""HTTP plumbing of the administration API: bearer authentication, tenant scoping, JSON bodies
validated by the operation's model, and every failure as RFC 9457 problem details."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from idp import tenants
from idp.admin.openapi import Operation
from idp.admin.principal import AdminAuthError, Principal, authenticate
from idp.errors import ConflictError, InvalidPhoneError, LoginError, NotFoundError
from idp.storage.text import check_storable
from idp.web.browser import state
from idp.web.state import AppState

log = logging.getLogger("idp.admin")
MAX_BODY = 64 * 1024
_INTEGER = re.compile(r"-?[0-9]{1,18}")
PROBLEM = "application/problem+json"
_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    500: "Internal Server Error",
}


class ProblemError(Exception):
    """An RFC 9457 problem to answer with; ``kind`` becomes the ``type`` URI's last segment."""

    def __init__(self, status: int, detail: str, *, kind: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind
        self.extra = extra


def problem_response(problem: ProblemError, headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {
        "type": f"urn:eid:admin:problem:{problem.kind}" if problem.kind else "about:blank",
        "title": _TITLES.get(problem.status, "Error"),
        "status": problem.status,
        "detail": problem.detail,
        **problem.extra,
    }
    return JSONResponse(body, status_code=problem.status, media_type=PROBLEM, headers=headers)


@dataclass(slots=True)
class Call:
    """One authenticated, validated request."""

    request: Request
    st: AppState
    principal: Principal
    tenant: tenants.Tenant | None
    body: Any
    query: dict[str, int]

    def path(self, name: str) -> str:
        return str(self.request.path_params[name])

    @property
    def tenant_id(self) -> str:
        assert self.tenant is not None
        return self.tenant.id


Handler = Callable[[Call], Awaitable[Response]]


def json_response(model: BaseModel, status: int = 200) -> Response:
    return JSONResponse(model.model_dump(mode="json"), status_code=status)


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def _clean(value: Any) -> None:
    """Text no database column can hold is refused before it reaches one."""
    try:
        check_storable(value)
    except ValueError as exc:
        raise ProblemError(400, str(exc)) from None


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # a repeated member is ambiguous (RFC 8259 §4, RFC 7493 §2.3): a proxy may check the first
    # value while json keeps the last, so neither is taken
    found: dict[str, Any] = {}
    for name, value in pairs:
        if name in found:
            raise ProblemError(
                400, f"the member {name[:60]!r} appears more than once", kind="duplicate-member"
            )
        found[name] = value
    return found


async def _body(request: Request, model: type[BaseModel]) -> BaseModel:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise ProblemError(415, f"the request body must be application/json, not {kind[:60] or 'missing'}")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise ProblemError(413, f"the request body is larger than {MAX_BODY // 1024} kB")
    try:
        data = json.loads(bytes(raw), object_pairs_hook=_unique_members)
    except (ValueError, RecursionError) as exc:
        raise ProblemError(400, f"the request body is not JSON: {str(exc)[:200]}") from None
    _clean(data)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [
            {"loc": [str(p) for p in e["loc"]], "type": e["type"], "msg": e["msg"]}
            for e in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
        first = errors[0]
        where = ".".join(first["loc"]) or "the body"
        raise ProblemError(
            422,
            f"the body does not match the schema: {where[:100]}: {first['msg'][:200]}",
            kind="invalid-body",
            errors=errors,
        ) from None


async def _no_body(request: Request) -> None:
    # content for an operation that reads none is a mistake (a secret the caller meant to choose,
    # a change they meant to make): refused, not ignored while the operation goes ahead
    async for chunk in request.stream():
        if chunk:
            raise ProblemError(400, "this operation takes no request body", kind="unexpected-body")


def _query(request: Request, op: Operation) -> dict[str, int]:
    out: dict[str, int] = {}
    for q in op.query:
        given = request.query_params.getlist(q.name)
        if not given:
            out[q.name] = q.default
            continue
        # a proxy or cache may read the first of two values where Starlette keeps the last
        if len(given) > 1:
            raise ProblemError(400, f"{q.name} is given {len(given)} times", kind="repeated-parameter")
        raw = given[0]
        # int() also reads "\uff11", " 1 " and "1_0": only what the OpenAPI integer means is taken
        if not _INTEGER.fullmatch(raw):
            raise ProblemError(400, f"{q.name} must be an integer, got {raw[:40]!r}")
        value = int(raw)
        if not q.minimum <= value <= q.maximum:
            raise ProblemError(400, f"{q.name} must be between {q.minimum} and {q.maximum}")
        out[q.name] = value
    return out


async def _authorize(request: Request, op: Operation) -> tuple[Principal, tenants.Tenant | None]:
    st = state(request)
    now = time.time()
    principal = await st.db.read(lambda conn: authenticate(conn, _bearer(request), now=now))
    if op.platform and not principal.platform:
        raise AdminAuthError(403, "insufficient_scope", "this operation needs the admin:platform scope")
    for name in op.path_parameters:
        value = str(request.path_params.get(name, ""))
        if len(value) > 64 or not value.isprintable():
            raise ProblemError(404, f"no {name.removesuffix('_id')} {value[:64]!r}")
    if "tenant_id" not in op.path_parameters:
        return principal, None
    ref = str(request.path_params["tenant_id"])
    try:
        tenant = await st.db.read(lambda conn: tenants.get(conn, ref))
    except NotFoundError:
        tenant = None
    # another tenant's resources do not exist for a tenant's token: nothing leaks
    if tenant is None or not principal.may_administer(tenant.id):
        raise ProblemError(404, f"no tenant {ref!r}")
    return principal, tenant


def endpoint(op: Operation, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        try:
            principal, tenant = await _authorize(request, op)
            query = _query(request, op)
            body = None
            if op.request is not None:
                body = await _body(request, op.request)
            else:
                await _no_body(request)
            return await handler(Call(request, state(request), principal, tenant, body, query))
        except AdminAuthError as exc:
            challenge = f'Bearer realm="admin", error="{exc.code}"'
            if exc.status == 403:
                challenge += ', scope="admin"'
            return problem_response(
                ProblemError(exc.status, str(exc), kind=exc.code), {"WWW-Authenticate": challenge}
            )
        except ProblemError as exc:
            return problem_response(exc)
        except NotFoundError as exc:
            return problem_response(ProblemError(404, str(exc)))
        except (ConflictError, IntegrityError) as exc:
            detail = str(exc) if isinstance(exc, ConflictError) else "conflicts with existing data"
            return problem_response(ProblemError(409, detail, kind="conflict"))
        except InvalidPhoneError as exc:
            return problem_response(ProblemError(422, str(exc), kind="invalid-value"))
        except LoginError as exc:  # e.g. an invitation that can no longer be used
            return problem_response(ProblemError(409, str(exc), kind=str(exc.code)))
        except ValueError as exc:
            return problem_response(ProblemError(422, str(exc)[:500], kind="invalid-value"))
        except Exception:  # still problem details, never an HTML page
            log.exception("admin API request failed: %s %s", request.method, request.url.path)
            return problem_response(ProblemError(500, "the request could not be processed"))

    return run
