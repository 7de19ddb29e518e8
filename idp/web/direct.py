"""The machine-to-machine endpoints straight from the metrics middleware, past the router.

Token, introspection, userinfo and revocation requests come thousands of times a second. On
the way to their endpoint Starlette's exception middleware and router each wrap ``send`` and the
app again, and the router matches the path against its routes; together that is about a tenth of
a token request's CPU. :class:`DirectRoutes` sits inside :class:`~idp.web.metrics.MetricsMiddleware`
and hands these requests to their endpoint itself: the same :class:`~starlette.routing.Route`
(recorded in the scope, so metrics label it as before), the same endpoint function, and an
:class:`~starlette.exceptions.HTTPException` answered by the app's own handler. Anything else
(another path or method, a mounted app) goes the usual way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]
ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]


class DirectRoutes:
    def __init__(self, app: ASGIApp, *, routes: Sequence[Route], http_error: ErrorHandler) -> None:
        self.app = app
        self._http_error = http_error
        self._routes: dict[tuple[str, str], Route] = {}
        for route in routes:
            if "{" in route.path:
                raise ValueError(f"only fixed paths go direct, not {route.path}")
            for method in route.methods or ():
                self._routes[(method, route.path)] = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = (
            self._routes.get((scope["method"], scope["path"]))
            if scope["type"] == "http" and not scope.get("root_path")
            else None
        )
        if route is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = route
        scope["endpoint"] = endpoint = route.endpoint
        request = Request(scope, receive, send)
        try:
            response = await endpoint(request)
        except HTTPException as exc:
            response = await self._http_error(request, exc)
        await response(scope, receive, send)
