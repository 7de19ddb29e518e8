"""Uvicorn's HTTP protocols with each response written to the socket once.

Uvicorn writes a response's status line and headers when the app sends ``http.response.start``
and the body when it sends ``http.response.body``: two ``write`` calls, and with Nagle off (as
asyncio sets it) two TCP segments, each waking the client. Nearly every answer of an IdP (a token,
a redirect, a page, a JSON error) is small and sent whole in one task step, so here the writes
made during one event-loop turn are joined and handed to the socket once, at the end of that
turn: one system call and one segment per response. That was a second write system call per
token request, about a tenth of the token endpoint's CPU time (``bench/token_grants.py``).

Large bodies are not held back: once the writes of a turn reach :data:`FLUSH_AT` bytes they go
out at once, so streaming keeps uvicorn's own flow control.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is optional in uvicorn; uvicorn[standard] brings it
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

FLUSH_AT = 64 * 1024


class CoalescingTransport:
    """A transport whose writes within one event-loop turn reach the socket as one write.

    Everything but writing and closing is the wrapped transport's own.
    """

    __slots__ = ("_loop", "_pending", "_size", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] | None = None
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if self._pending is None:
            self._pending = [bytes(data)]
            self._size = len(data)
            self._loop.call_soon(self.flush)
        else:
            self._pending.append(bytes(data))
            self._size += len(data)
        if self._size >= FLUSH_AT:
            self.flush()

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        """Hand what was written so far to the socket (the end-of-turn callback, or sooner)."""
        pending, self._pending = self._pending, None
        if not pending or self._transport.is_closing():
            return
        self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()  # a response written just before a close (Connection: close) still goes out
        self._transport.close()

    def abort(self) -> None:
        self._pending = None
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + (self._size if self._pending else 0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class H11OneWrite(H11Protocol):
    """Uvicorn's h11 protocol on a :class:`CoalescingTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]


if HttpToolsProtocol is not None:

    class HttpToolsOneWrite(HttpToolsProtocol):
        """Uvicorn's httptools protocol on a :class:`CoalescingTransport`."""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]


def http_protocol() -> type[asyncio.Protocol]:
    """What ``uvicorn.Config(http=...)`` takes: httptools when installed (uvicorn's own choice
    for ``auto``), else h11, each writing a response once."""
    if HttpToolsProtocol is not None:
        return HttpToolsOneWrite
    return H11OneWrite
