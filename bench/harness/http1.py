"""A small HTTP/1.1 client for load generators: one keep-alive connection, asyncio streams.

httpx spends about a millisecond of CPU on each request and its answer, twice what the IdP's own
sign-in pages cost the server. A benchmark driver on one core that drives a server on another
then limits the rate itself: after the server has answered a group of requests at once, it
waits while the driver works through them (``login_factors.py`` saw the server idle 12-16% of
a run). This client sends a request as one write and parses the answer with a few string
operations, about a tenth of httpx's cost. It speaks just what a benchmark of this server needs:
``Content-Length`` and chunked bodies, form bodies, Basic authentication; no TLS, no proxies,
no redirects (the caller follows them).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import Mapping
from urllib.parse import quote, urlencode, urlsplit


class Headers:
    """Response headers: case-insensitive lookup, and every value of a repeated header."""

    __slots__ = ("_items",)

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = items

    def get_list(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self._items if key == name]

    def get(self, name: str, default: str | None = None) -> str | None:
        found = self.get_list(name)
        return found[0] if found else default

    def __getitem__(self, name: str) -> str:
        found = self.get_list(name)
        if not found:
            raise KeyError(name)
        return found[0]


class Response:
    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, headers: Headers, content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class Client:
    """``request``/``post`` with the parts of httpx's signature the drivers use; one connection,
    opened on first use and again after the server closed it; one request at a time."""

    def __init__(
        self, base_url: str, *, headers: Mapping[str, str] | None = None, timeout: float = 30
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"expected http://host[:port], got {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.timeout = timeout
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self._host_header = f"Host: {parts.netloc}\r\n"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):  # the server closed it first: closed either way
                await writer.wait_closed()

    async def post(self, url: str, **kwargs: object) -> Response:
        return await self.request("POST", url, **kwargs)  # type: ignore[arg-type]

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> Response:
        head = f"{method} {url} HTTP/1.1\r\n{self._host_header}{self._fixed}"
        if headers:
            head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        if auth is not None:
            pair = f"{quote(auth[0], safe='')}:{quote(auth[1], safe='')}".encode()
            head += f"Authorization: Basic {base64.b64encode(pair).decode()}\r\n"
        body = b""
        if data is not None:
            body = urlencode(data).encode()
            head += "Content-Type: application/x-www-form-urlencoded\r\n"
        if body or method == "POST":
            head += f"Content-Length: {len(body)}\r\n"
        message = (head + "\r\n").encode() + body
        return await asyncio.wait_for(self._exchange(message), self.timeout)

    async def _exchange(self, message: bytes) -> Response:
        for attempt in (1, 2):
            if self._writer is None:
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            assert self._reader is not None
            try:
                self._writer.write(message)
                return await self._read(self._reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                # a keep-alive connection the server closed meanwhile: once more on a new one
                await self.aclose()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _read(self, reader: asyncio.StreamReader) -> Response:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        status_line, *lines = head[:-4].split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        items = []
        for line in lines:
            name, _, value = line.partition(":")
            items.append((name.strip().lower(), value.strip()))
        headers = Headers(items)
        if (headers.get("transfer-encoding") or "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")  # no trailers from this server
                    break
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
            content = b"".join(chunks)
        else:
            content = await reader.readexactly(int(headers.get("content-length", "0") or 0))
        if (headers.get("connection") or "").lower() == "close":
            await self.aclose()
        return Response(status, headers, content)
