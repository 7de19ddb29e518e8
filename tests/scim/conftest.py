"""SCIM fixtures: the served app, a tenant with a bearer token, and a client that speaks SCIM."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from idp.scim import tokens
from idp.tenants import Tenant
from tests.support.server import ServedApp

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


@dataclass
class Scim:
    app: ServedApp
    tenant: Tenant
    token: str
    http: httpx.Client

    @property
    def base(self) -> str:
        return f"{self.app.issuer}/scim/v2"

    def user(self, user_name: str, **extra: Any) -> dict[str, Any]:
        """Create a User and return its representation."""
        body = {"schemas": [CORE_USER], "userName": user_name, **extra}
        response = self.http.post("/Users", json=body)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def group(self, name: str, members: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
        body = {"schemas": [CORE_GROUP], "displayName": name, "members": [{"value": m} for m in members]}
        response = self.http.post("/Groups", json=body)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def patch(self, path: str, operations: list[dict[str, Any]], **kwargs: Any) -> httpx.Response:
        return self.http.patch(path, json={"schemas": [PATCH_OP], "Operations": operations}, **kwargs)

    def other_tenant_client(self) -> httpx.Client:
        tenant = self.app.tenant()
        new = self.app.write(lambda tx: tokens.create(tx, tenant_id=tenant.id, name="other"))
        return _client(self.app, new.secret)


def _client(app: ServedApp, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{app.issuer}/scim/v2",
        verify=app.ssl_context(),
        timeout=10,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"},
    )


@pytest.fixture
def scim(served: ServedApp) -> Iterator[Scim]:
    tenant = served.tenant()
    new = served.write(lambda tx: tokens.create(tx, tenant_id=tenant.id, name="tests"))
    with _client(served, new.secret) as http:
        yield Scim(served, tenant, new.secret, http)


def assert_error(response: httpx.Response, status: int, scim_type: str | None = None) -> dict[str, Any]:
    """The response is an RFC 7644 §3.12 Error with this status (and scimType)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/scim+json")
    body = response.json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == str(status)
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body
    return body  # type: ignore[no-any-return]
