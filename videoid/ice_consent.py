"""Consent freshness (RFC 7675) on the server's ICE connections: as the RFC has it, not as aioice does.

RFC 7675 §5.1: consent to send on a candidate pair expires when no valid STUN Binding response
has arrived to any of the consent checks sent in the last 30 seconds. A check goes every 5 s,
each interval randomised between 0.8 and 1.2 times; each is sent once, with a new transaction
id, so "a response might be for a previous request": a late answer still counts.

aioice (``Connection.query_consent``) sends each check with ``retransmissions=0``, waits 0.5 s
(``aioice.stun.RETRY_RTO``) for its answer, counts it failed after that, and closes the
connection after six failures in a row (``aioice.ice.CONSENT_FAILURES``): a person whose round
trip stays above 0.5 s for half a minute (a congested mobile uplink while it sends video, where
bufferbloat gives 1-2 s) loses their session although their browser answers every check.
Upstream: https://github.com/aiortc/aioice/issues/58.

Here a connection's ``query_consent`` is a :class:`Consent`: it sends each check once and keeps
its transaction open for the whole window, so an answer that comes late still refreshes consent
(until the check's send time plus :data:`CONSENT_WINDOW`); a peer that stopped answering has
its connection closed at most that long after the last check it answered was sent, as aioice
closes it (aiortc's ICE transport, and so the peer connection, becomes "failed").
:class:`ConsentingPeerConnection` is the ``RTCPeerConnection`` that makes its connections so.

This relies on aioice's internals, which tests/videoid/test_ice_consent.py checks so that an
upgrade that changes them fails loudly: ``Connection.connect()`` starts ``self.query_consent()``
as ``_query_consent_task`` once ICE completes, and ``close()`` cancels that task;
``Connection._nominated``, ``build_request()`` and ``remote_password``; ``StunProtocol``'s
``transactions``, to whose ``response_received`` it hands a response by transaction id, and
``send_stun()``; and aiortc's ``RTCIceTransport._connection``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from typing import cast

from aioice import Connection, stun
from aioice.ice import CandidatePair
from aiortc import RTCPeerConnection, RTCSessionDescription

#: seconds consent lasts after the sending of a check that was answered (RFC 7675 §5.1)
CONSENT_WINDOW = 30.0
#: seconds between checks, each interval randomised 0.8-1.2 times (RFC 7675 §5.1 SHOULD)
CHECK_INTERVAL = 5.0

log = logging.getLogger("videoid.ice_consent")


class Consent:
    """Consent freshness of one connection (RFC 7675 §5.1), run by aioice as its ``query_consent``
    once ICE has completed, until consent expires (the connection is then closed) or the
    connection closes."""

    def __init__(self, connection: Connection, *, window: float, interval: float) -> None:
        self._connection = connection
        self.window = window
        self.interval = interval
        self._expires: dict[int, float] = {}  # per component
        self._open: dict[bytes, _Check] = {}

    async def __call__(self) -> None:
        connection = self._connection
        assert connection.remote_password is not None  # connect() has it before it calls this
        key = connection.remote_password.encode("utf8")
        loop = asyncio.get_running_loop()
        now = loop.time()
        # ICE's own checks were answered just now: that is the first consent (RFC 7675 §4)
        self._expires = {component: now + self.window for component in connection._nominated}
        next_check = now + self._pause()
        try:
            while now < (expiry := min(self._expires.values(), default=math.inf)):
                if now >= next_check:
                    self._send(key, now)
                    next_check = now + self._pause()
                self._forget(now)
                await asyncio.sleep(min(next_check, expiry) - now)
                now = loop.time()
        finally:
            for check in self._open.values():
                check.pair.protocol.transactions.pop(check.request.transaction_id, None)
            self._open.clear()
        log.info("consent to send expired: no check sent in the last %s s was answered", self.window)
        connection._query_consent_task = None  # close() would cancel this very task
        await connection.close()

    def _pause(self) -> float:
        return self.interval * (0.8 + 0.4 * random.random())

    def _send(self, key: bytes, now: float) -> None:
        for component, pair in self._connection._nominated.items():
            self._expires.setdefault(component, now + self.window)
            request = self._connection.build_request(pair, nominate=False)
            request.add_message_integrity(key)
            check = _Check(self, pair, request, key, now)
            self._open[request.transaction_id] = check
            # aioice hands the response to the transaction of its id: this one waits for it
            # for the whole window, where aioice's own would give up after one RTO
            pair.protocol.transactions[request.transaction_id] = cast(stun.Transaction, check)
            pair.protocol.send_stun(request, pair.remote_addr)

    def _forget(self, now: float) -> None:
        """Stop waiting for answers that could no longer refresh consent."""
        for check in list(self._open.values()):
            if check.sent_at + self.window <= now:
                self._close(check)

    def _answered(self, check: _Check) -> None:
        component = check.pair.component
        self._expires[component] = max(self._expires.get(component, 0.0), check.sent_at + self.window)
        self._close(check)

    def _close(self, check: _Check) -> None:
        transaction_id = check.request.transaction_id
        self._open.pop(transaction_id, None)
        check.pair.protocol.transactions.pop(transaction_id, None)


class _Check:
    """One consent check's STUN transaction, as aioice's ``StunProtocol`` sees one."""

    __slots__ = ("consent", "key", "pair", "request", "sent_at")

    def __init__(
        self, consent: Consent, pair: CandidatePair, request: stun.Message, key: bytes, sent_at: float
    ) -> None:
        self.consent = consent
        self.pair = pair
        self.request = request
        self.key = key
        self.sent_at = sent_at

    def response_received(self, message: stun.Message, addr: tuple[str, int]) -> None:
        # a success from the address checked (RFC 8445 §7.2.5.2.1), signed with the peer's
        # password (RFC 7675 §5.1): an error response, or one that is not, refreshes nothing
        if (
            message.message_class == stun.Class.RESPONSE
            and addr == self.pair.remote_addr
            and message.check_message_integrity(self.key)
        ):
            self.consent._answered(self)


def keep_consent(
    connection: Connection, *, window: float = CONSENT_WINDOW, interval: float = CHECK_INTERVAL
) -> None:
    """Have ``connection`` check consent by RFC 7675 §5.1 (:class:`Consent`) instead of aioice's
    rule, from when its ICE completes; before that, or the change has no effect."""
    connection.query_consent = Consent(connection, window=window, interval=interval)  # type: ignore[method-assign]


def ice_connections(pc: RTCPeerConnection) -> list[Connection]:
    """The aioice connections under ``pc``'s transports (one when they are bundled)."""
    transports = [transceiver.receiver.transport.transport for transceiver in pc.getTransceivers()]
    if pc.sctp is not None:
        transports.append(pc.sctp.transport.transport)
    return list({id(t._connection): t._connection for t in transports}.values())


class ConsentingPeerConnection(RTCPeerConnection):
    """An ``RTCPeerConnection`` whose ICE connections check consent by RFC 7675 (:func:`keep_consent`).

    aiortc makes the transports (each with its aioice connection) while it applies a description,
    and starts ICE in a task that it schedules as the last step of doing so: the rule is put in
    place right after, before that task runs."""

    # aiortc's (the W3C API's) names
    async def setLocalDescription(  # noqa: N802
        self,
        sessionDescription: RTCSessionDescription | None = None,  # noqa: N803
    ) -> None:
        await super().setLocalDescription(sessionDescription)
        self._keep_consent()

    async def setRemoteDescription(self, sessionDescription: RTCSessionDescription) -> None:  # noqa: N802, N803
        await super().setRemoteDescription(sessionDescription)
        self._keep_consent()

    def _keep_consent(self) -> None:
        for connection in ice_connections(self):
            if not isinstance(connection.query_consent, Consent):
                keep_consent(connection)
