"""The app in-process, driven with raw ASGI messages: bytes exactly as a hostile client sends them.

An HTTP client normalises what it sends (it re-encodes a lone ``%``, refuses non-ASCII in a URL,
fixes a malformed header); :func:`call` builds the scope as uvicorn does from the request line
and headers, so the app sees what it would see behind uvicorn. :class:`InProcessApp` runs the
app's lifespan and its requests on an event loop of its own thread, as
:class:`tests.support.server.ServedApp` does, so the admin helpers of ``ServedApp`` work on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.types import Message

from idp.settings import Settings
from idp.web.app import create_app
from tests.support.server import ServedApp


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names; the last of repeated headers
    body: bytes
    exception: str | None  # the traceback of an exception that escaped the app

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


@dataclass(frozen=True, slots=True)
class RawRequest:
    method: str
    path: bytes  # the request target's path, percent-encoded as sent
    query: bytes = b""
    headers: Sequence[tuple[bytes, bytes]] = ()
    body: bytes = b""


async def call(app: Any, request: RawRequest, *, timeout: float = 30) -> Reply:
    """One request through the app's ASGI interface; never raises for what the app does."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": "https",
        # as uvicorn: the path is the percent-decoded request target (invalid escapes left as they are)
        "path": unquote(request.path.decode("ascii")),
        "raw_path": request.path,
        "query_string": request.query,
        "root_path": "",
        "headers": [(k.lower(), v) for k, v in request.headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 443),
        "state": {},
    }
    sent_body = False
    done = asyncio.Event()
    start: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def receive() -> Message:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": request.body, "more_body": False}
        await done.wait()  # the client stays connected until the response is complete
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                done.set()

    escaped = None
    try:
        await asyncio.wait_for(app(scope, receive, send), timeout)
    except Exception:
        escaped = traceback.format_exc()
    finally:
        done.set()
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in start.get("headers", [])}
    return Reply(start.get("status", 0), headers, b"".join(chunks), escaped)


@dataclass
class InProcessApp:
    """The app started (lifespan) on a loop in its own thread; :meth:`request` is synchronous."""

    app: Starlette
    served: ServedApp  # the admin helpers (tenant, client_app, user, write …) on the same loop
    _loop: asyncio.AbstractEventLoop = field(repr=False)

    def request(self, request: RawRequest) -> Reply:
        return asyncio.run_coroutine_threadsafe(call(self.app, request), self._loop).result(timeout=60)


@contextlib.contextmanager
def in_process(settings: Settings, *, outbox: Path) -> Iterator[InProcessApp]:
    app = create_app(settings)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="in-process-app", daemon=True)
    thread.start()
    stack = contextlib.AsyncExitStack()

    def run(coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=60)

    try:
        run(stack.enter_async_context(app.router.lifespan_context(app)))
        served = ServedApp(
            issuer=settings.issuer,
            ca=Path(),  # no TLS in-process
            settings=settings,
            outbox=outbox,
            state=app.state.idp,
            loop=loop,
        )
        yield InProcessApp(app, served, loop)
    finally:
        run(stack.aclose())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=20)
        loop.close()
