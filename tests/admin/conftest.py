"""Administration API fixtures: the shared served app of the protocol suite, and admin tokens
obtained from /token with client_credentials exactly as an operator's script would."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from idp import clients, tenants
from tests.oidc.conftest import served, shared_app  # noqa: F401  (one app per engine, reused)
from tests.support.server import ServedApp


@dataclass
class Admin:
    app: ServedApp
    tenant: tenants.Tenant
    client: clients.NewClient
    token: str
    http: httpx.Client

    @property
    def base(self) -> str:
        return f"/admin/v1/tenants/{self.tenant.id}"

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(self.base + path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return self.http.post(self.base + path, json=body, **kwargs)

    def patch(self, path: str, body: Any, **kwargs: Any) -> httpx.Response:
        return self.http.patch(self.base + path, json=body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return self.http.put(self.base + path, json=body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.delete(self.base + path, **kwargs)


def client_credentials_token(app: ServedApp, client: clients.NewClient, scope: str) -> httpx.Response:
    assert client.client_secret is not None
    with app.client() as http:
        return http.post(
            "/token",
            data={"grant_type": "client_credentials", "scope": scope},
            auth=(client.client.client_id, client.client_secret),
        )


AdminFactory = Callable[..., Admin]


@pytest.fixture
def make_admin(served: ServedApp) -> Iterator[AdminFactory]:  # noqa: F811
    made: list[Admin] = []

    def make(*, scopes: tuple[str, ...] = ("admin",), tenant: tenants.Tenant | None = None) -> Admin:
        tenant = tenant or served.tenant()
        new = served.client_app(
            tenant, name="Admin script", grant_types=["client_credentials"], scopes=list(scopes)
        )
        response = client_credentials_token(served, new, " ".join(scopes))
        assert response.status_code == 200, response.text
        token = response.json()["access_token"]
        http = served.client(headers={"Authorization": f"Bearer {token}"})
        made.append(admin := Admin(served, tenant, new, token, http))
        return admin

    try:
        yield make
    finally:
        for a in made:
            a.http.close()


@pytest.fixture
def admin(make_admin: AdminFactory) -> Admin:
    return make_admin()


@pytest.fixture
def platform(make_admin: AdminFactory) -> Admin:
    return make_admin(scopes=("admin", "admin:platform"))


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """An RFC 9457 problem with this status."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and "type" in body
    return body
