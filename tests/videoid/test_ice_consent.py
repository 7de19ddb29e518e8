"""Consent freshness on the server's ICE connections (videoid.ice_consent): RFC 7675's 30 s rule,
not aioice's six checks answered within 0.5 s.

Two real aioice connections on loopback in this process; one end's STUN answers go late, or not
at all (``StunProtocol.send_stun`` wrapped). Times are scaled down: checks every 0.2 s, aioice's
wait for an answer 0.1 s (``RETRY_RTO``), RFC 7675's window 2-3 s."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
import math
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import aioice.ice
import aioice.stun
import pytest
from aioice import Connection, ConnectionClosed, stun
from aioice.ice import StunProtocol
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.rtcicetransport import RTCIceGatherer, RTCIceTransport

import videoid
from tests.support.videoid_client import AIOICE_CONSENT_FAILURES
from videoid.ice_consent import CHECK_INTERVAL, CONSENT_WINDOW, Consent, ice_connections, keep_consent
from videoid.webrtc import Receiver

Send = Callable[[StunProtocol, stun.Message, tuple[str, int]], None]


class Answers:
    """How each connection's STUN responses go out: at once (unless told), late, or never."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._delays: dict[Connection, float] = {}
        self._held: list[asyncio.TimerHandle] = []
        self.late: defaultdict[Connection, list[float]] = defaultdict(list)  # when each late one went

    def delay(self, connection: Connection, seconds: float) -> None:
        self._delays[connection] = seconds

    def silence(self, connection: Connection) -> None:
        self._delays[connection] = math.inf

    def send_stun(self, protocol: StunProtocol, message: stun.Message, addr: tuple[str, int]) -> None:
        delay = self._delays.get(protocol.receiver)
        if delay is None or message.message_class != stun.Class.RESPONSE:
            self._send(protocol, message, addr)
        elif delay < math.inf:
            self._held.append(
                asyncio.get_running_loop().call_later(delay, self._late, protocol, message, addr)
            )

    def _late(self, protocol: StunProtocol, message: stun.Message, addr: tuple[str, int]) -> None:
        if not protocol.transport.is_closing():
            self._send(protocol, message, addr)
            self.late[protocol.receiver].append(asyncio.get_running_loop().time())

    def cancel(self) -> None:
        for handle in self._held:
            handle.cancel()


@pytest.fixture(autouse=True)
def loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Host candidates on 127.0.0.1 only (aioice leaves it out), whatever this machine's interfaces."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> Iterator[Answers]:
    held = Answers(StunProtocol.send_stun)

    def send_stun(protocol: StunProtocol, message: stun.Message, addr: tuple[str, int]) -> None:
        held.send_stun(protocol, message, addr)

    monkeypatch.setattr(StunProtocol, "send_stun", send_stun)
    yield held
    held.cancel()


@contextlib.asynccontextmanager
async def connected(
    *, rfc7675: bool, window: float = CONSENT_WINDOW, interval: float = CHECK_INTERVAL
) -> AsyncIterator[tuple[Connection, Connection]]:
    """Two connections after ICE, both checking consent by RFC 7675 or both by aioice's rule."""
    ends = Connection(ice_controlling=True, use_ipv6=False), Connection(ice_controlling=False, use_ipv6=False)
    if rfc7675:
        for end in ends:
            keep_consent(end, window=window, interval=interval)
    try:
        await asyncio.wait_for(asyncio.gather(*(end.gather_candidates() for end in ends)), 10)
        for here, there in (ends, ends[::-1]):
            for candidate in there.local_candidates:
                await here.add_remote_candidate(candidate)
            await here.add_remote_candidate(None)
            here.remote_username, here.remote_password = there.local_username, there.local_password
        await asyncio.wait_for(asyncio.gather(*(end.connect() for end in ends)), 10)
        yield ends
    finally:
        await asyncio.gather(*(end.close() for end in ends))


async def until(check: Callable[[], bool], what: str, *, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.02)


async def test_late_answers_keep_consent_that_aioice_would_end(
    monkeypatch: pytest.MonkeyPatch, answers: Answers
) -> None:
    """Every answer comes 0.5 s late, five times later than aioice waits: aioice's connection ends
    after six checks, the RFC 7675 one is still up, and carries data, after more than its window."""
    interval, wait, late, window = 0.2, 0.1, 0.5, 3.0
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", interval)
    monkeypatch.setattr(aioice.ice, "CONSENT_FAILURES", AIOICE_CONSENT_FAILURES)  # not conftest's allowance
    monkeypatch.setattr(aioice.stun, "RETRY_RTO", wait)
    loop = asyncio.get_running_loop()
    async with (
        connected(rfc7675=False) as (stock, stock_peer),
        connected(rfc7675=True, window=window, interval=interval) as (ours, our_peer),
    ):
        stock_ended = asyncio.ensure_future(stock.get_event())
        ours_ended = asyncio.ensure_future(ours.get_event())
        answers.delay(stock_peer, late)
        answers.delay(our_peer, late)
        since = loop.time()

        assert isinstance(await asyncio.wait_for(stock_ended, 10 * window), ConnectionClosed)
        # without the late answers, consent would have expired by since + window
        beyond = since + window + 0.5
        answered_late = answers.late[our_peer]
        await until(
            lambda: ours_ended.done() or any(t > beyond for t in answered_late),
            "an answer after the window",
            timeout=5 * window,
        )
        assert not ours_ended.done(), "the RFC 7675 end lost consent although every check was answered"
        await ours.send(b"still there")
        assert await asyncio.wait_for(our_peer.recv(), 5) == b"still there"


async def test_a_peer_that_stops_answering_loses_consent_after_the_window(answers: Answers) -> None:
    """RFC 7675 §5.1: with no answer at all, the connection ends once the window has passed since
    the last answered check was sent, not at the first unanswered ones; then it sends nothing."""
    interval, window = 0.2, 2.0
    loop = asyncio.get_running_loop()
    async with connected(rfc7675=True, window=window, interval=interval) as (ours, peer):
        ended = asyncio.ensure_future(ours.get_event())
        await ours.send(b"up")
        assert await asyncio.wait_for(peer.recv(), 5) == b"up"
        answers.silence(peer)
        since = loop.time()

        assert isinstance(await asyncio.wait_for(ended, 5 * window), ConnectionClosed)
        elapsed = loop.time() - since
        # the last answered check went at most two intervals (and a round trip) before the silence
        assert window / 2 < elapsed, f"consent ended {elapsed:.2f} s into the silence, window {window} s"
        with pytest.raises(ConnectionError):
            await ours.send(b"still there?")


async def test_the_servers_peer_connections_check_consent_by_rfc_7675() -> None:
    """The person's connection (videoid.webrtc.Receiver), with RFC 7675's own times; a plain aiortc
    peer connection keeps aioice's rule."""
    person = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    person.addTransceiver("video", direction="sendonly")
    receiver = Receiver(on_frame=lambda image: None, sound=False)
    try:
        await person.setLocalDescription(await person.createOffer())
        await receiver.answer(sdp=person.localDescription.sdp, kind="offer")
        connections = ice_connections(receiver._pc)
        assert connections
        for connection in connections:
            assert isinstance(connection.query_consent, Consent)
            assert (connection.query_consent.window, connection.query_consent.interval) == (30.0, 5.0)
        assert not any(isinstance(c.query_consent, Consent) for c in ice_connections(person))
    finally:
        await receiver.close()
        await person.close()


def test_the_server_makes_no_other_peer_connection() -> None:
    """Every peer connection made in videoid/ is a ConsentingPeerConnection (the live view's too)."""
    made = [
        f"{path.name}:{node.lineno}"
        for path in sorted(Path(videoid.__file__).parent.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and (getattr(node.func, "id", None) or getattr(node.func, "attr", None)) == "RTCPeerConnection"
    ]
    assert made == []


async def test_what_the_rule_relies_on_in_aioice_is_still_there() -> None:
    """videoid.ice_consent replaces aioice's query_consent from outside: when an upgrade changes
    what it relies on, this says so (and when aioice fixes aiortc/aioice#58, the stock half of the
    first test fails: the module can go)."""
    assert "self.query_consent()" in inspect.getsource(Connection.connect)
    assert "self._query_consent_task.cancel()" in inspect.getsource(Connection.close)
    received = inspect.getsource(StunProtocol.datagram_received)
    assert "self.transactions[message.transaction_id]" in received
    assert "transaction.response_received(message, addr)" in received
    assert list(inspect.signature(Connection.build_request).parameters) == ["self", "pair", "nominate"]
    connection = Connection(ice_controlling=False)
    assert (connection._nominated, connection._query_consent_task, connection.remote_password) == (
        {},
        None,
        None,
    )
    assert StunProtocol(connection).transactions == {}
    gatherer = RTCIceGatherer(iceServers=[])
    assert RTCIceTransport(gatherer)._connection is gatherer._connection
