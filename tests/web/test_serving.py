"""Each response reaches the socket in one write (idp.web.serving)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from idp.web import serving
from idp.web.serving import FLUSH_AT, CoalescingTransport, H11OneWrite, http_protocol


class Recorder(asyncio.Transport):
    """A socket's side of a transport: what was written, in which calls."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False
        self.reading = True

    def write(self, data: Any) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(name, default)


async def test_writes_of_one_turn_go_out_as_one() -> None:
    loop = asyncio.get_running_loop()
    raw = Recorder()
    transport = CoalescingTransport(raw, loop)
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(b"")
    transport.write(memoryview(b"body"))
    assert raw.writes == []
    assert transport.get_write_buffer_size() == len(b"HTTP/1.1 200 OK\r\n\r\nbody")
    await asyncio.sleep(0)
    assert raw.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    transport.write(b"next")
    await asyncio.sleep(0)
    assert raw.writes[1:] == [b"next"]


async def test_a_large_body_is_not_held_back() -> None:
    raw = Recorder()
    transport = CoalescingTransport(raw, asyncio.get_running_loop())
    transport.write(b"h" * 100)
    transport.write(b"x" * FLUSH_AT)
    assert raw.writes == [b"h" * 100 + b"x" * FLUSH_AT]  # at once, not at the end of the turn
    await asyncio.sleep(0)
    assert len(raw.writes) == 1


async def test_close_sends_what_was_written_and_abort_drops_it() -> None:
    loop = asyncio.get_running_loop()
    raw = Recorder()
    transport = CoalescingTransport(raw, loop)
    transport.writelines([b"last ", b"words"])
    transport.close()
    assert raw.writes == [b"last words"] and raw.closed
    await asyncio.sleep(0)  # the end-of-turn callback finds nothing left and writes nothing
    assert raw.writes == [b"last words"]

    raw = Recorder()
    transport = CoalescingTransport(raw, loop)
    transport.write(b"never")
    transport.abort()
    await asyncio.sleep(0)
    assert raw.writes == [] and raw.aborted


async def test_nothing_is_written_to_a_transport_that_closed_meanwhile() -> None:
    raw = Recorder()
    transport = CoalescingTransport(raw, asyncio.get_running_loop())
    transport.write(b"too late")
    raw.closed = True  # the peer went away before the end of the turn
    await asyncio.sleep(0)
    assert raw.writes == []


async def test_other_transport_methods_are_the_wrapped_ones() -> None:
    raw = Recorder()
    transport = CoalescingTransport(raw, asyncio.get_running_loop())
    transport.pause_reading()
    assert raw.reading is False
    assert transport.get_extra_info("peername") == ("127.0.0.1", 50000)


async def _app_response(request: Request) -> JSONResponse:
    return JSONResponse({"access_token": "t", "token_type": "Bearer"}, headers={"cache-control": "no-store"})


async def _chunks(request: Request) -> StreamingResponse:
    async def body() -> Any:
        for i in range(3):
            yield f"chunk {i}\n".encode()
            await asyncio.sleep(0.01)

    return StreamingResponse(body(), media_type="text/plain")


async def _big(request: Request) -> PlainTextResponse:
    return PlainTextResponse("x" * (3 * FLUSH_AT))


APP = Starlette(
    routes=[Route("/token", _app_response, methods=["POST"]), Route("/chunks", _chunks), Route("/big", _big)]
)


async def _serve_one(protocol_class: type[asyncio.Protocol], request: bytes) -> Recorder:
    """Drive uvicorn's protocol with ``request`` on a recording transport, to the end of the answer."""
    config = uvicorn.Config(APP, log_level="warning", http=protocol_class, lifespan="off")
    config.load()
    protocol = protocol_class(config=config, server_state=ServerState(), app_state={})  # type: ignore[call-arg]
    raw = Recorder()
    protocol.connection_made(raw)
    protocol.data_received(request)
    for _ in range(200):
        await asyncio.sleep(0.005)
        if b"0\r\n\r\n" in b"".join(raw.writes) or (raw.writes and b"chunked" not in raw.writes[0]):
            break
    await asyncio.sleep(0.02)
    protocol.connection_lost(None)
    return raw


@pytest.mark.parametrize("protocol_class", [http_protocol(), H11OneWrite], ids=["auto", "h11"])
async def test_a_response_is_one_write(protocol_class: type[asyncio.Protocol]) -> None:
    raw = await _serve_one(protocol_class, b"POST /token HTTP/1.1\r\nHost: idp\r\nContent-Length: 0\r\n\r\n")
    assert len(raw.writes) == 1
    head, _, body = raw.writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"cache-control: no-store" in head
    assert body == b'{"access_token":"t","token_type":"Bearer"}'


async def test_without_coalescing_uvicorn_writes_a_response_twice() -> None:
    """Why the wrapper exists: uvicorn's own protocol writes the head and the body apart."""
    raw = await _serve_one(
        HttpToolsProtocol, b"POST /token HTTP/1.1\r\nHost: idp\r\nContent-Length: 0\r\n\r\n"
    )
    assert len(raw.writes) == 2 and raw.writes[0].endswith(b"\r\n\r\n")


async def test_a_streamed_response_still_goes_out_as_it_is_produced() -> None:
    raw = await _serve_one(http_protocol(), b"GET /chunks HTTP/1.1\r\nHost: idp\r\n\r\n")
    assert len(raw.writes) >= 3  # one per chunk produced in its own turn, not all at the end
    assert b"chunk 0" in raw.writes[0] and b"chunk 2" in b"".join(raw.writes)


async def test_a_large_body_keeps_its_bytes_and_order() -> None:
    raw = await _serve_one(http_protocol(), b"GET /big HTTP/1.1\r\nHost: idp\r\n\r\n")
    _head, _, body = b"".join(raw.writes).partition(b"\r\n\r\n")
    assert body == b"x" * (3 * FLUSH_AT)


def test_the_served_app_answers_through_a_real_socket() -> None:
    """The wrapped protocol under uvicorn on a real socket, answered to a real client, twice on one
    keep-alive connection, then closed by the client's ``Connection: close``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(APP, log_level="warning", http=http_protocol(), lifespan="off"))

    async def main() -> list[httpx.Response]:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            answers = [await client.post("/token"), await client.get("/chunks")]
            answers.append(await client.get("/big", headers={"connection": "close"}))
        server.should_exit = True
        await task
        return answers

    token, chunks, big = asyncio.run(main())
    assert token.json() == {"access_token": "t", "token_type": "Bearer"}
    assert chunks.text == "chunk 0\nchunk 1\nchunk 2\n"
    assert big.text == "x" * (3 * FLUSH_AT)


def test_without_httptools_the_h11_protocol_is_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serving, "HttpToolsProtocol", None)
    assert serving.http_protocol() is H11OneWrite
