"""The application factory: routes, middleware and the start-up/shutdown lifespan."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

import templates
from idp.settings import Settings, ensure_secret_key
from idp.web import (
    account_factor_routes,
    account_routes,
    admin_routes,
    agent_live_routes,
    agent_routes,
    authorize_routes,
    code_routes,
    invitation_routes,
    login_flow,
    login_routes,
    login_token_routes,
    logout_routes,
    oidc_routes,
    onboarding_factor_routes,
    onboarding_phone_routes,
    onboarding_routes,
    passkey_routes,
    reset_request_routes,
    reset_routes,
    scim_routes,
    videoid_routes,
)
from idp.web.admin_http import ProblemError, problem_response
from idp.web.admin_routes import ADMIN_PREFIX, OPENAPI_PATH
from idp.web.browser import render, state
from idp.web.cors import CorsMiddleware, WebOrigins
from idp.web.direct import DirectRoutes
from idp.web.i18n import set_language
from idp.web.metrics import MetricsMiddleware, metrics_endpoint
from idp.web.request_target import RequestTarget
from idp.web.scim_routes import SCIM_PREFIX, router_error
from idp.web.state import AppState

log = logging.getLogger("idp")


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def readyz(request: Request) -> Response:
    try:
        await state(request).db.ping()
    except Exception as exc:  # any failure to reach the database means not ready
        return JSONResponse({"ready": False, "database": type(exc).__name__}, status_code=503)
    return JSONResponse({"ready": True})


async def index(request: Request) -> Response:
    return render(request, "index.html")


_TITLES = {
    400: "bad_request",
    403: "forbidden",
    404: "not_found",
    405: "bad_request",
    429: "too_many_requests",
}


async def http_error(request: Request, exc: Exception) -> Response:
    """A 404 or 405 of the router (or an HTTPException of a route), in the format of the protocol
    the path belongs to: SCIM's Error, the admin API's problem details, OAuth's error JSON, or
    the error page for a browser."""
    assert isinstance(exc, HTTPException)
    path: str = request.scope["path"]
    detail = exc.detail
    if exc.status_code == 405:
        detail = f"{request.method} is not allowed here; allowed: {(exc.headers or {}).get('Allow', '')}"
    if _under(path, SCIM_PREFIX):
        return router_error(exc.status_code, detail, headers=exc.headers)
    if _under(path, ADMIN_PREFIX) or path == OPENAPI_PATH:
        headers = dict(exc.headers) if exc.headers else None
        return problem_response(ProblemError(exc.status_code, detail), headers=headers)
    accepts_html = "text/html" in request.headers.get("accept", "")
    if not accepts_html or path in oidc_routes.JSON_PATHS:
        # machine clients get the OAuth error vocabulary (RFC 6749 §5.2): a wrong method or an
        # unknown path is a malformed request
        code = "invalid_request" if exc.status_code in (400, 405) else _TITLES.get(exc.status_code, "error")
        return JSONResponse(
            {"error": code, "error_description": detail},
            status_code=exc.status_code,
            headers=exc.headers,
        )
    return render(
        request, "error.html", status=exc.status_code, title_key=_TITLES.get(exc.status_code, "bad_request")
    )


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


async def server_error(request: Request, exc: Exception) -> Response:
    # the scope's path, not request.url: building the URL is what may have failed
    log.exception("unhandled error on %s %s", request.method, request.scope.get("path"), exc_info=exc)
    if "text/html" in request.headers.get("accept", ""):
        return render(request, "error.html", status=500, title_key="server_error")
    return JSONResponse(
        {"error": "server_error", "error_description": "an unexpected error occurred"}, status_code=500
    )


def tune_gc() -> None:
    """Keep the collector off what start-up built and let it run less often.

    Everything loaded at start-up (modules, SQLAlchemy and authlib registries, templates) lives
    until shutdown; frozen, it is no longer traversed by every full collection. A request makes
    a few hundred short-lived objects, so the default young-generation threshold (700) collected
    several times per request; measured on the token endpoint this was the largest single cost.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


class IdpApp(Starlette):
    """The IdP's app, holding its :class:`AppState` as a plain attribute for the handlers
    (:func:`idp.web.browser.state`): ``app.state.idp`` reaches Starlette's ``State.__getattr__``
    only after a failed attribute lookup, whose AttributeError is built and thrown away, three
    times per token request. ``app.state.idp`` names the same object."""

    idp: AppState


def create_app(settings: Settings, *, sms_http_client: Any = None) -> Starlette:
    """The ASGI app. ``sms_http_client`` replaces the Twilio SDK's HTTP client (tests use a fake)."""
    settings = ensure_secret_key(settings)
    st = AppState.build(settings, sms_http_client=sms_http_client)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await st.start()
        tune_gc()
        try:
            yield
        finally:
            await st.stop()

    static_dir = Path(templates.__file__).with_name("static")
    app = IdpApp(
        routes=[
            *oidc_routes.routes,
            *authorize_routes.routes,
            Route("/", index, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            Route("/language", set_language, methods=["GET"]),
            *login_token_routes.routes,
            *login_flow.routes,
            *code_routes.routes,
            *passkey_routes.routes,
            *invitation_routes.routes,
            *onboarding_routes.routes,
            *onboarding_phone_routes.routes,
            *onboarding_factor_routes.routes,
            *login_routes.routes,
            *logout_routes.routes,
            Mount(SCIM_PREFIX, routes=scim_routes.routes),
            *account_routes.routes,
            *account_factor_routes.routes,
            *reset_request_routes.routes,
            *reset_routes.routes,
            *admin_routes.routes,
            *videoid_routes.routes,
            *agent_routes.routes,
            *agent_live_routes.routes,
            Mount("/static", StaticFiles(directory=static_dir), name="static"),
        ],
        exception_handlers={HTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
    )
    app.idp = app.state.idp = st
    app.state.pages = st.pages
    app.state.metrics = st.metrics
    # inside the metrics middleware (added later, so it wraps this one)
    app.add_middleware(DirectRoutes, routes=oidc_routes.machine_routes, http_error=http_error)
    # a browser app's fetch of the token, userinfo and revocation endpoints, discovery and the JWKS
    app.add_middleware(CorsMiddleware, origins=WebOrigins(st.db))
    app.add_middleware(MetricsMiddleware, metrics=st.metrics)
    app.add_middleware(RequestTarget)  # outermost: what follows reads the query string
    return app
