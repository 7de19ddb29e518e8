"""The query string as a browser would have sent it: bytes beyond ASCII percent-encoded.

A server hands the query string to the app as the bytes of the request line. A browser
percent-encodes everything beyond ASCII (WHATWG URL §4.4 "query percent-encode set"), but a
hand-made request may carry raw bytes that are not UTF-8; Starlette decodes ``request.url`` and
the query parameters from them as strict UTF-8, so one such byte made every page a 500.
Percent-encoded, the same byte is an invalid escape that the parsers already replace, like
``%FF`` sent by the client itself.
"""

from __future__ import annotations

from urllib.parse import quote_from_bytes

from starlette.types import ASGIApp, Receive, Scope, Send

# what may stay as it is: the printable ASCII a query string is made of, '%' escapes included
_KEEP = "".join(chr(c) for c in range(0x21, 0x7F))


class RequestTarget:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query: bytes = scope["query_string"]
            if not query.isascii():
                scope["query_string"] = quote_from_bytes(query, safe=_KEEP).encode("ascii")
        await self.app(scope, receive, send)
