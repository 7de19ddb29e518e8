from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from idp.web.metrics import UNMATCHED, Metrics, MetricsMiddleware, metrics_endpoint


async def item(request: Request) -> Response:
    return PlainTextResponse(f"item {request.path_params['id']}")


async def boom(request: Request) -> Response:
    raise RuntimeError("boom")


async def user(request: Request) -> Response:
    return PlainTextResponse("user")


async def static(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("static")(scope, receive, send)


def build_app(metrics: Metrics) -> Starlette:
    app = Starlette(
        routes=[
            Route("/items/{id}", item),
            Route("/only-post", user, methods=["POST"]),
            Route("/boom", boom),
            Route("/metrics", metrics_endpoint),
            Mount("/t/{tenant}", routes=[Route("/users/{uid}", user)]),
            Mount("/static", app=static),
        ],
        middleware=[Middleware(MetricsMiddleware, metrics=metrics)],
    )
    app.state.metrics = metrics
    return app


@dataclass
class Harness:
    metrics: Metrics
    client: httpx.AsyncClient

    def requests(self, method: str, route: str, status: int) -> float:
        labels = {"method": method, "route": route, "status": str(status)}
        return self.metrics.registry.get_sample_value("http_requests_total", labels) or 0.0

    def observed(self, method: str, route: str) -> float:
        labels = {"method": method, "route": route}
        return self.metrics.registry.get_sample_value("http_request_duration_seconds_count", labels) or 0.0


async def harness_for(app: ASGIApp, metrics: Metrics) -> AsyncIterator[Harness]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield Harness(metrics, client)


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    metrics = Metrics()
    async for h in harness_for(build_app(metrics), metrics):
        yield h


async def test_counts_requests_by_route_template(harness: Harness) -> None:
    for i in range(3):
        assert (await harness.client.get(f"/items/{i}")).status_code == 200
    assert harness.requests("GET", "/items/{id}", 200) == 3
    assert harness.observed("GET", "/items/{id}") == 3
    assert harness.requests("GET", "/items/0", 200) == 0


async def test_unknown_paths_are_unmatched(harness: Harness) -> None:
    for path in ("/nope", "/nope/2", "/items/1/extra"):
        assert (await harness.client.get(path)).status_code == 404
    assert harness.requests("GET", UNMATCHED, 404) == 3


async def test_method_not_allowed_keeps_the_template(harness: Harness) -> None:
    assert (await harness.client.get("/only-post")).status_code == 405
    assert harness.requests("GET", "/only-post", 405) == 1


async def test_unknown_methods_are_folded(harness: Harness) -> None:
    await harness.client.request("BREW", "/items/1")
    assert harness.requests("OTHER", "/items/{id}", 405) == 1


async def test_mounted_routes_get_the_full_template(harness: Harness) -> None:
    assert (await harness.client.get("/t/acme/users/7")).status_code == 200
    assert (await harness.client.get("/t/other/users/8")).status_code == 200
    assert (await harness.client.get("/t/acme/nothing")).status_code == 404
    assert (await harness.client.get("/static/app.css")).status_code == 200
    assert harness.requests("GET", "/t/{tenant}/users/{uid}", 200) == 2
    assert harness.requests("GET", UNMATCHED, 404) == 1
    assert harness.requests("GET", "/static/{path:path}", 200) == 1


async def test_exception_counts_as_500_and_propagates(harness: Harness) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        await harness.client.get("/boom")
    assert harness.requests("GET", "/boom", 500) == 1
    assert harness.observed("GET", "/boom") == 1


async def test_exception_in_bare_app_counts_as_500() -> None:
    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        raise ValueError("bare")

    metrics = Metrics()
    async for h in harness_for(MetricsMiddleware(failing, metrics), metrics):
        with pytest.raises(ValueError, match="bare"):
            await h.client.get("/x")
    assert (
        metrics.registry.get_sample_value(
            "http_requests_total", {"method": "GET", "route": UNMATCHED, "status": "500"}
        )
        == 1
    )


async def test_template_found_without_scope_route() -> None:
    # Starlette before 0.47-ish sets no scope["route"]; the middleware then matches the routes itself.
    metrics = Metrics()
    starlette_app = build_app(Metrics())

    async def without_route(scope: Scope, receive: Receive, send: Send) -> None:
        await starlette_app(scope, receive, send)
        scope.pop("route", None)

    async for h in harness_for(MetricsMiddleware(without_route, metrics), metrics):
        await h.client.get("/items/5")
        await h.client.get("/items/5")
        await h.client.post("/only-post")
        await h.client.get("/nope")
    assert h.requests("GET", "/items/{id}", 200) == 2
    assert h.requests("POST", "/only-post", 200) == 1
    assert h.requests("GET", UNMATCHED, 404) == 1


async def test_business_counters_and_exposition_parse(harness: Harness) -> None:
    harness.metrics.login(method="email-link", outcome="success")
    harness.metrics.login(method="email-link", outcome="success")
    harness.metrics.login(method="password", outcome="failure")
    harness.metrics.token_issued(grant_type="authorization_code")
    await harness.client.get("/items/1")

    response = await harness.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert {"http_requests", "http_request_duration_seconds", "logins", "tokens_issued"} <= families.keys()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples
    }
    assert samples[("logins_total", (("method", "email-link"), ("outcome", "success")))] == 2
    assert samples[("logins_total", (("method", "password"), ("outcome", "failure")))] == 1
    assert samples[("tokens_issued_total", (("grant_type", "authorization_code"),))] == 1
    assert (
        samples[("http_requests_total", (("method", "GET"), ("route", "/items/{id}"), ("status", "200")))]
        == 1
    )


def test_each_metrics_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.token_issued(grant_type="refresh_token")
    assert second.registry.get_sample_value("tokens_issued_total", {"grant_type": "refresh_token"}) is None
    assert first.registry.get_sample_value("tokens_issued_total", {"grant_type": "refresh_token"}) == 1
