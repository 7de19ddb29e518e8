"""The OpenAPI 3.1 document of the administration API, built from the operation table and the
Pydantic models the handlers validate with, so that it cannot drift from what is served."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from idp.admin.models import Problem

REF = "#/components/schemas/{model}"
PROBLEM = "application/problem+json"


@dataclass(slots=True, frozen=True)
class Query:
    name: str
    minimum: int
    maximum: int
    default: int
    description: str


@dataclass(slots=True, frozen=True)
class Operation:
    """One method on one path: what it takes, what it answers, and who may call it."""

    method: Literal["GET", "POST", "PATCH", "PUT", "DELETE"]
    path: str  # relative to /admin/v1, with {parameters}
    operation_id: str
    summary: str
    tag: str
    status: int = 200
    request: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    query: tuple[Query, ...] = ()
    platform: bool = False  # needs admin:platform
    errors: tuple[int, ...] = field(default=(400, 404, 422))

    @property
    def path_parameters(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)


_ERROR_TITLES = {
    400: "Bad request (unreadable body or parameter)",
    401: "No usable access token",
    403: "The token lacks the admin scope, or this tenant is not the token's",
    404: "No such resource in this tenant",
    409: "Conflicts with existing data (e.g. a slug or email already taken)",
    413: "The request body is too large",
    415: "The request body is not application/json",
    422: "The body does not match the schema, or a value is not acceptable",
}


def _schemas(operations: Sequence[Operation]) -> dict[str, Any]:
    models: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [
        (Problem, "serialization")
    ]
    for op in operations:
        if op.request is not None:
            models.append((op.request, "validation"))
        if op.response is not None:
            models.append((op.response, "serialization"))
    unique = list(dict.fromkeys(models))
    _, top = models_json_schema(unique, ref_template=REF)
    return dict(top.get("$defs", {}))


def _responses(op: Operation) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if op.response is not None:
        out[str(op.status)] = {
            "description": op.summary,
            "content": {"application/json": {"schema": {"$ref": REF.format(model=op.response.__name__)}}},
        }
    else:
        out[str(op.status)] = {"description": op.summary}
    statuses = {401, 403, *op.errors}
    if op.request is not None:
        statuses |= {409, 413, 415}
    for status in sorted(statuses):
        out[str(status)] = {
            "description": _ERROR_TITLES[status],
            "content": {PROBLEM: {"schema": {"$ref": REF.format(model="Problem")}}},
        }
    return out


def document(operations: Sequence[Operation], *, issuer: str, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1.0 document (JSON) for ``operations`` served under ``{issuer}/admin/v1``."""
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        parameters: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string", "maxLength": 64}}
            for name in op.path_parameters
        ]
        parameters += [
            {
                "name": q.name,
                "in": "query",
                "required": False,
                "description": q.description,
                "schema": {
                    "type": "integer",
                    "minimum": q.minimum,
                    "maximum": q.maximum,
                    "default": q.default,
                },
            }
            for q in op.query
        ]
        item: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "tags": [op.tag],
            "responses": _responses(op),
        }
        if op.platform:
            item["description"] = "Needs a token with the admin:platform scope."
        if parameters:
            item["parameters"] = parameters
        if op.request is not None:
            item["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": REF.format(model=op.request.__name__)}}},
            }
        paths.setdefault("/admin/v1" + op.path, {})[op.method.lower()] = item
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "eID identity provider: tenant administration API",
            "version": version,
            "description": (
                "Administer tenants, clients, users (eIDs), groups, invitations, SCIM tokens and branding. "
                "Authenticate with an access token from the client_credentials grant at /token with the "
                "admin scope (own tenant) or admin:platform (every tenant). Errors are RFC 9457 problem "
                "details."
            ),
        },
        "servers": [{"url": issuer}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": _schemas(operations),
            "securitySchemes": {
                "bearer": {
                    "type": "oauth2",
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": f"{issuer}/token",
                            "scopes": {
                                "admin": "administer the client's own tenant",
                                "admin:platform": "administer every tenant, create tenants",
                            },
                        }
                    },
                }
            },
        },
    }
