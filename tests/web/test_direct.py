"""Routes served past the router (idp.web.direct): the same answers, errors and metrics as
through it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from idp.web.app import http_error, server_error
from idp.web.direct import DirectRoutes
from idp.web.metrics import Metrics, MetricsMiddleware


async def echo(request: Request) -> Response:
    routed = "yes" if "router" in request.scope else "no"  # the router records itself in the scope
    body = f"{request.method} {request.url.path} {(await request.body()).decode()}"
    return PlainTextResponse(body, headers={"X-Routed": routed})


async def refuse(request: Request) -> Response:
    raise HTTPException(status_code=400, detail="refused here")


async def boom(request: Request) -> Response:
    raise RuntimeError("boom")


async def elsewhere(request: Request) -> Response:
    return JSONResponse({"routed": True})


DIRECT = [
    Route("/echo", echo, methods=["GET", "POST"]),
    Route("/refuse", refuse, methods=["POST"]),
    Route("/boom", boom, methods=["POST"]),
]


@dataclass
class Served:
    metrics: Metrics
    client: httpx.AsyncClient
    direct: bool

    def requests(self, method: str, route: str, status: int) -> float:
        labels = {"method": method, "route": route, "status": str(status)}
        return self.metrics.registry.get_sample_value("http_requests_total", labels) or 0.0


@pytest.fixture(params=["direct", "routed"])
async def served(request: pytest.FixtureRequest) -> AsyncIterator[Served]:
    # the same app with and without DirectRoutes: every test must pass on both
    metrics = Metrics()
    middleware = [Middleware(MetricsMiddleware, metrics=metrics)]
    if request.param == "direct":
        middleware.append(Middleware(DirectRoutes, routes=DIRECT, http_error=http_error))
    app = Starlette(
        routes=[*DIRECT, Route("/elsewhere", elsewhere)],
        middleware=middleware,
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield Served(metrics, client, request.param == "direct")


async def test_a_direct_route_answers_and_is_counted_under_its_template(served: Served) -> None:
    response = await served.client.post("/echo", content=b"body")
    assert response.status_code == 200
    assert response.text == "POST /echo body"
    assert response.headers["x-routed"] == ("no" if served.direct else "yes")
    head = await served.client.head("/echo")  # Starlette adds HEAD to GET routes
    assert head.status_code == 200
    assert head.content == b""
    assert served.requests("POST", "/echo", 200) == 1
    assert served.requests("HEAD", "/echo", 200) == 1


async def test_another_method_goes_through_the_router(served: Served) -> None:
    response = await served.client.put("/echo")
    assert response.status_code == 405
    assert response.json()["error"] == "invalid_request"
    assert served.requests("PUT", "/echo", 405) == 1
    assert (await served.client.get("/elsewhere")).json() == {"routed": True}


async def test_an_http_exception_gets_the_apps_answer(served: Served) -> None:
    response = await served.client.post("/refuse")
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request", "error_description": "refused here"}
    assert served.requests("POST", "/refuse", 400) == 1


async def test_an_unexpected_error_is_a_500_in_json(served: Served) -> None:
    response = await served.client.post("/boom")
    assert response.status_code == 500
    assert response.json()["error"] == "server_error"
    assert served.requests("POST", "/boom", 500) == 1


def test_only_fixed_paths_go_direct() -> None:
    with pytest.raises(ValueError, match="fixed paths"):
        DirectRoutes(elsewhere, routes=[Route("/items/{id}", echo)], http_error=http_error)  # type: ignore[arg-type]
