"""
The MLLP sender: one connection, one message in flight, ACKs matched in order.

MLLP is request/response with no correlation on the wire other than order, so
the client sends one frame, waits for its ACK, then sends the next. A send
that times out drops the connection: a late ACK on it must never be taken for
the next message's. Connections are opened lazily on the first send and, after
any failure, the next attempt waits an exponential backoff (reset by the next
ACK), so a dead peer is not hammered.

The state lives in :class:`MLLPClient` and is driven by three events from a
deliberately small protocol class (frame received, connection lost) and by
timers on the injected clock, so it is tested with ``MemoryReactorClock``.

test-case-name: tests.mllp.test_client
"""
from __future__ import annotations

from collections import deque
from typing import Any

from twisted.internet import defer
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger

from mllp.framing import DEFAULT_MAX_FRAME_SIZE, FrameDecoder, FrameTooLarge, encode_frame

log = Logger()


class MLLPClientError(Exception):
    """Base of the errors a send can fail with."""


class ConnectFailed(MLLPClientError):
    """The connection to the peer could not be opened."""


class ConnectTimeout(ConnectFailed):
    """The connection was not established within ``connect_timeout``."""


class ConnectionLostBeforeAck(MLLPClientError):
    """The connection closed after the message was written and before its ACK."""


class AckTimeout(MLLPClientError):
    """No ACK within ``ack_timeout``; the connection was dropped."""


class ClientClosed(MLLPClientError):
    """The client was closed before this message got its ACK."""


class _ClientProtocol(Protocol):
    """Frames in and out for one connection; every decision is the client's."""

    def __init__(self, client: "MLLPClient"):
        self.client = client
        self.decoder = FrameDecoder(client.max_frame_size)

    def dataReceived(self, data: bytes) -> None:
        try:
            payloads = self.decoder.feed(data)
        except FrameTooLarge as error:
            self.client._protocol_failed(self, error)
            return
        for payload in payloads:
            self.client._ack_received(self, payload)

    def connectionLost(self, reason: Any = None) -> None:
        self.client._connection_lost(self, reason)


class _ClientFactory(Factory):
    def __init__(self, client: "MLLPClient"):
        self.client = client

    def buildProtocol(self, addr: Any) -> _ClientProtocol:
        return _ClientProtocol(self.client)


class MLLPClient:
    """Send HL7 payloads to one MLLP peer and return their ACKs.

    ``endpoint`` is an ``IStreamClientEndpoint`` (see
    :func:`mllp.tls.client_endpoint`, or :meth:`for_address`). ``clock``
    defaults to the global reactor, imported only then.
    """

    def __init__(self, endpoint: Any, *, connect_timeout: float = 10,
                 ack_timeout: float = 30, reconnect_initial: float = 0.5,
                 reconnect_max: float = 30, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                 clock: Any = None):
        if clock is None:
            from twisted.internet import reactor as clock
        self.endpoint = endpoint
        self.connect_timeout = connect_timeout
        self.ack_timeout = ack_timeout
        self.reconnect_initial = reconnect_initial
        self.reconnect_max = reconnect_max
        self.max_frame_size = max_frame_size
        self.clock = clock
        self._queue: deque[tuple[bytes, defer.Deferred]] = deque()
        self._protocol: _ClientProtocol | None = None
        self._busy = False  # connecting, waiting for backoff, or a frame in flight
        self._in_flight = False
        self._timer: Any = None  # the backoff wait or the ACK timeout
        self._attempt: defer.Deferred | None = None  # a connection being opened
        self._connect_expired = False
        self._delay = reconnect_initial
        self._not_before = 0.0
        self._closed = False
        self._lost_waiters: list[defer.Deferred] = []

    @classmethod
    def for_address(cls, reactor: Any, host: str, port: int, tls: Any = None,
                    **options: Any) -> "MLLPClient":
        """A client for ``host:port`` using the reactor as its clock."""
        from mllp.tls import client_endpoint

        endpoint = client_endpoint(reactor, host, port, tls,
                                   timeout=options.get("connect_timeout", 10))
        options.setdefault("clock", reactor)
        return cls(endpoint, **options)

    @property
    def connected(self) -> bool:
        return self._protocol is not None

    def send(self, payload: bytes) -> defer.Deferred:
        """Queue ``payload``; return a Deferred firing with the raw ACK payload.

        Fails with :class:`ValueError` (payload holds VT/FS), :class:`ConnectFailed`,
        :class:`ConnectTimeout`, :class:`ConnectionLostBeforeAck`,
        :class:`AckTimeout` or :class:`ClientClosed`.
        """
        if self._closed:
            return defer.fail(ClientClosed("the MLLP client is closed"))
        try:
            encode_frame(payload)
        except ValueError as error:
            return defer.fail(error)
        answer: defer.Deferred = defer.Deferred()
        self._queue.append((payload, answer))
        self._pump()
        return answer

    def close(self) -> defer.Deferred:
        """Fail what is queued, drop the connection; the Deferred fires once it is gone."""
        self._closed = True
        self._cancel_timer()
        self._in_flight = False
        while self._queue:
            _, answer = self._queue.popleft()
            _fire(answer, ClientClosed("the MLLP client was closed"))
        if self._attempt is not None:
            self._attempt.cancel()
        if self._protocol is None:
            return defer.succeed(None)
        waiter: defer.Deferred = defer.Deferred()
        self._lost_waiters.append(waiter)
        self._protocol.transport.loseConnection()
        return waiter

    # --- the state machine -----------------------------------------------------------

    def _pump(self) -> None:
        """Start the next step if nothing is under way: connect, wait, or write."""
        if self._busy or not self._queue or self._closed:
            return
        self._busy = True
        if self._protocol is not None:
            self._write_head()
            return
        wait = self._not_before - self.clock.seconds()
        if wait > 0:
            self._timer = self.clock.callLater(wait, self._connect)
        else:
            self._connect()

    def _connect(self) -> None:
        self._timer = None
        self._connect_expired = False
        # Our own timer rather than addTimeout: endpoints fail a cancelled attempt with
        # their own error types, and this flag is what tells a timeout apart.
        self._timer = self.clock.callLater(self.connect_timeout, self._connect_timed_out)
        attempt = self._attempt = self.endpoint.connect(_ClientFactory(self))
        attempt.addCallbacks(self._connected, self._connect_failed)

    def _connect_timed_out(self) -> None:
        self._timer = None
        if self._attempt is not None:
            self._connect_expired = True
            self._attempt.cancel()

    def _connected(self, protocol: _ClientProtocol) -> None:
        self._attempt = None
        self._cancel_timer()
        if self._closed:
            protocol.transport.loseConnection()
            return
        self._protocol = protocol
        self._write_head()

    def _connect_failed(self, failure: Any) -> None:
        self._attempt = None
        if self._connect_expired:
            error: Exception = ConnectTimeout(
                f"no connection within {self.connect_timeout} s")
        else:
            error = ConnectFailed(f"cannot connect: {failure.getErrorMessage()}")
        self._fail_head(error)

    def _write_head(self) -> None:
        if not self._queue:
            self._busy = False
            return
        payload, _ = self._queue[0]
        self._in_flight = True
        self._timer = self.clock.callLater(self.ack_timeout, self._ack_timed_out)
        self._protocol.transport.write(encode_frame(payload))

    def _ack_received(self, protocol: _ClientProtocol, payload: bytes) -> None:
        if protocol is not self._protocol or not self._in_flight:
            log.warn("MLLP peer sent a frame nobody waits for; ignored ({size} bytes)",
                     size=len(payload))
            return
        self._cancel_timer()
        self._in_flight = self._busy = False
        self._delay, self._not_before = self.reconnect_initial, 0.0
        _, answer = self._queue.popleft()
        _fire(answer, payload)
        self._pump()

    def _ack_timed_out(self) -> None:
        self._timer = None
        self._drop_connection()
        self._fail_head(AckTimeout(f"no ACK within {self.ack_timeout} s"))

    def _protocol_failed(self, protocol: _ClientProtocol, error: Exception) -> None:
        if protocol is self._protocol:
            self._drop_connection()
            if self._in_flight:
                self._fail_head(ConnectionLostBeforeAck(f"unusable answer: {error}"))

    def _connection_lost(self, protocol: _ClientProtocol, reason: Any) -> None:
        if protocol is self._protocol:
            self._protocol = None
            if self._in_flight:
                self._fail_head(ConnectionLostBeforeAck(
                    f"connection lost before the ACK: {reason.getErrorMessage()}"))
        waiters, self._lost_waiters = self._lost_waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def _drop_connection(self) -> None:
        """Forget the connection at once, so nothing more it says is matched."""
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            protocol.transport.abortConnection()

    def _fail_head(self, error: Exception) -> None:
        """Fail the first queued send, arm the backoff, and move on."""
        self._cancel_timer()
        self._in_flight = self._busy = False
        self._not_before = self.clock.seconds() + self._delay
        self._delay = min(self._delay * 2, self.reconnect_max)
        if self._queue:
            _, answer = self._queue.popleft()
            _fire(answer, error)
        self._pump()

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None


def _fire(answer: defer.Deferred, result: Any) -> None:
    """Fire ``answer`` unless its caller cancelled it already."""
    if answer.called:
        return
    if isinstance(result, Exception):
        answer.errback(result)
    else:
        answer.callback(result)
