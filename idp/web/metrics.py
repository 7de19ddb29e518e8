"""Prometheus metrics (``/metrics``) with a registry per app, so tests can build many apps.

:class:`MetricsMiddleware` is a pure ASGI middleware: it labels each request with its route
*template* (``/items/{id}``, never ``/items/42``) so label cardinality stays bounded. Requests
that match no route are labelled ``<unmatched>``, unknown methods ``OTHER``.

Exposition format: https://prometheus.io/docs/instrumenting/exposition_formats/
"""

from __future__ import annotations

from collections.abc import Sequence
from time import perf_counter

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Host, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "<unmatched>"
OTHER_METHOD = "OTHER"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
# Token and discovery requests take milliseconds; the default buckets start at 5 ms.
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The IdP's metrics in their own :class:`CollectorRegistry`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            "http_requests",
            "HTTP requests by method, route template and status code.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.http_request_duration = Histogram(
            "http_request_duration_seconds",
            "Time from request to the end of the response, by method and route template.",
            ("method", "route"),
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.logins = Counter(
            "logins", "Login attempts by method and outcome.", ("method", "outcome"), registry=self.registry
        )
        self.tokens_issued = Counter(
            "tokens_issued", "Token responses by OAuth 2 grant type.", ("grant_type",), registry=self.registry
        )
        self.password_hashes = Counter(
            "password_hashes",
            "argon2id computations by operation: verify (a sign-in; also the dummy one for an unknown "
            "account) or hash (a new or rehashed password).",
            ("operation",),
            registry=self.registry,
        )
        self.password_hash_cpu = Counter(
            "password_hash_cpu_seconds",
            "CPU time of the thread that ran those computations, by operation.",
            ("operation",),
            registry=self.registry,
        )
        # labels() costs a lock and a tuple build; the label sets are bounded, so keep the children.
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._token_children: dict[str, Counter] = {}

    def login(self, *, method: str, outcome: str) -> None:
        self.logins.labels(method=method, outcome=outcome).inc()

    def token_issued(self, *, grant_type: str) -> None:
        child = self._token_children.get(grant_type)
        if child is None:  # grant types are bounded: the endpoint counts only those it served
            child = self._token_children[grant_type] = self.tokens_issued.labels(grant_type=grant_type)
        child.inc()

    def password_hashed(self, operation: str, cpu_seconds: float) -> None:
        self.password_hashes.labels(operation).inc()
        self.password_hash_cpu.labels(operation).inc(cpu_seconds)

    def observe_request(self, *, method: str, route: str, status: int, duration: float) -> None:
        """Count one request; ``route`` must be a template (bounded), never a raw path."""
        key = (method, route, status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.http_requests.labels(method, route, str(status)),
                self.http_request_duration.labels(method, route),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(duration)

    def render(self) -> tuple[bytes, str]:
        """The exposition body and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Counts and times every HTTP request; an exception counts as status 500 and propagates.

    The route template comes from ``scope["route"]``, which Starlette's router sets (in recent
    versions) on the scope this middleware passed in. Where it is missing although a route
    matched (older Starlette) or the route sits inside a ``Mount``, the template is found by
    matching the app's routes again, once per method and path (bounded cache). ``Host`` routes
    are matched as if every host matched.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, *, cache_size: int = 2048) -> None:
        self.app = app
        self.metrics = metrics
        self._templates: dict[tuple[str, str, str], str] = {}
        self._cache_size = cache_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        root_path: str = scope.get("root_path", "")
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        start = perf_counter()
        try:
            await self.app(scope, receive, send_with_status)
        except Exception:
            status = 500
            raise
        finally:
            duration = perf_counter() - start
            method = scope["method"] if scope["method"] in _METHODS else OTHER_METHOD
            route = self._route(scope, method, path, root_path)
            self.metrics.observe_request(method=method, route=route, status=status, duration=duration)

    def _route(self, scope: Scope, method: str, path: str, root_path: str) -> str:
        route = scope.get("route")
        if route is not None and not isinstance(route, Mount) and scope.get("root_path", "") == root_path:
            template = getattr(route, "path", None)
            if isinstance(template, str):
                return template
        if "endpoint" not in scope:
            return UNMATCHED  # nothing matched: no need to match again
        key = (method, root_path, path)
        template = self._templates.get(key)
        if template is None:
            router = scope.get("router") or scope.get("app")
            routes: Sequence[BaseRoute] = getattr(router, "routes", ())
            fresh: Scope = {"type": "http", "method": method, "path": path, "root_path": root_path}
            fresh["headers"] = scope.get("headers", [])
            template = _match(routes, fresh, "")
            if len(self._templates) >= self._cache_size:
                self._templates.clear()
            self._templates[key] = template
        return template


def _match(routes: Sequence[BaseRoute], scope: Scope, prefix: str) -> str:
    """The template of the route Starlette's router would choose (FULL match first, then PARTIAL)."""
    partial: tuple[BaseRoute, Scope] | None = None
    for route in routes:
        if isinstance(route, Host):
            template = _match(route.routes, scope, prefix)
            if template != UNMATCHED:
                return template
            continue
        match, child = route.matches(scope)
        if match is Match.FULL:
            return _template(route, {**scope, **child}, prefix)
        if match is Match.PARTIAL and partial is None:
            partial = (route, child)
    if partial is not None:
        return _template(partial[0], {**scope, **partial[1]}, prefix)
    return UNMATCHED


def _template(route: BaseRoute, scope: Scope, prefix: str) -> str:
    if isinstance(route, Mount):
        if route.routes:
            return _match(route.routes, scope, prefix + route.path)
        return prefix + route.path + "/{path:path}"  # an app mounted as a whole, e.g. static files
    template = getattr(route, "path", None)
    return prefix + template if isinstance(template, str) else UNMATCHED


async def metrics_endpoint(request: Request) -> Response:
    """``GET /metrics``: the app's :class:`Metrics` (``app.state.metrics``) in Prometheus text format."""
    metrics = request.app.state.metrics
    if not isinstance(metrics, Metrics):
        raise TypeError(f"app.state.metrics must be a Metrics, got {type(metrics).__name__}")
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
