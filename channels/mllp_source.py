"""
The ``mllp`` source: an MLLP (optionally TLS) listener handing each frame to the engine.

:mod:`mllp.protocol` owns the wire: framing, ordered ACKs, oversize refusal, idle timeouts and
backpressure. This connector is the *sink* that protocol talks to, translating its two calls
into the engine's :class:`~engine.interfaces.Receiver`: ``receive`` (persist, then answer
with the ACK the engine built) and ``frame_error`` (store what could not be framed). It adds
what only a connector knows: the channel name, the listening port, and a graceful stop that
lets every frame already read be persisted and acknowledged before its connection closes, so
a restart never drops a message a sender believes it delivered.

Against peers that misbehave, on purpose or not, it sets the protocol's limits from its
options: caps on connections (in all and per peer address) and allow-lists of addresses and
TLS client certificate subjects (:mod:`mllp.admission`), a byte budget for the frames
awaiting their ACK on a connection, and :class:`channels.refusals.RefusalAccountant`, which
stores a flood of unreadable frames from one connection as counted summaries instead of one
ERROR row each (their MSH is read here, before the engine's intake, to tell).

test-case-name: tests.channels.test_mllp_source
"""
from __future__ import annotations

import weakref
from functools import partial
from typing import Any, Callable, Mapping

from OpenSSL import SSL, crypto
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from channels.options import label, require_positive, resolve
from channels.refusals import RefusalAccountant, RefusalSummary
from engine.interfaces import ConnectorSpec, OptionSpec, PeerInfo
from mllp.ack import (
    COMMIT_ACCEPT, COMMIT_ERROR, COMMIT_REJECT, HL7Error, parse_ack, reject_for)
from mllp.admission import Admission, parse_networks
from mllp.framing import DEFAULT_MAX_FRAME_SIZE
from mllp.header import HeaderError, read_header
from mllp.protocol import (
    DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_PENDING, DEFAULT_MAX_PENDING_BYTES, MLLPServerFactory,
    MLLPServerProtocol, Peer, deferred_reply)
from mllp.shared_port import listen_shared
from mllp.tls import server_endpoint, server_tls_options

DRAIN_TIMEOUT = 30.0  # seconds stop() waits for the engine to answer frames already read
DEFAULT_MAX_CONNECTIONS = 500
DEFAULT_MAX_CONNECTIONS_PER_PEER = 100
DEFAULT_UNREADABLE_THRESHOLD = 20
DEFAULT_UNREADABLE_WINDOW = 60.0
_REJECTED, _REJECTED_ENHANCED = b"\rMSA|AR|", b"\rMSA|CR|"  # in an ACK the intake built

COMMIT_CODES = frozenset({COMMIT_ACCEPT, COMMIT_ERROR, COMMIT_REJECT})
MAX_REMEMBERED_APP_ACKS = 256  # per connection: application ACKs whose accept ACK may come
log = Logger()

SPEC = ConnectorSpec(
    role="source", type_name="mllp",
    help="Listen for HL7 v2 over MLLP, or MLLP over TLS when tls_cert and tls_key are set.",
    options=(
        OptionSpec("host", "str", default="127.0.0.1", help="address to listen on"),
        OptionSpec("port", "port", required=True, help="0 picks a free port"),
        OptionSpec("max_frame_size", "size", default=DEFAULT_MAX_FRAME_SIZE,
                   help="largest frame accepted (default 16 MiB)"),
        OptionSpec("idle_timeout", "duration", default=DEFAULT_IDLE_TIMEOUT,
                   help="close a connection silent this long"),
        OptionSpec("max_pending", "int", default=DEFAULT_MAX_PENDING,
                   help="frames awaiting their ACK before reading pauses"),
        OptionSpec("max_pending_bytes", "size", default=DEFAULT_MAX_PENDING_BYTES,
                   help="bytes of frames awaiting their ACK before reading pauses"),
        OptionSpec("max_connections", "int", default=DEFAULT_MAX_CONNECTIONS,
                   help="connections open at once; more are closed at accept"),
        OptionSpec("max_connections_per_peer", "int", default=DEFAULT_MAX_CONNECTIONS_PER_PEER,
                   help="connections open at once from one address"),
        OptionSpec("allow_from", "list",
                   help="addresses or networks (10.1.0.0/16) allowed to connect; default all"),
        OptionSpec("unreadable_threshold", "int", default=DEFAULT_UNREADABLE_THRESHOLD,
                   help="unreadable frames per connection and window stored one by one"),
        OptionSpec("unreadable_window", "duration", default=DEFAULT_UNREADABLE_WINDOW,
                   help="past the threshold, one summary record per window"),
        OptionSpec("tls_cert", "path", help="PEM certificate (and chain): enables TLS"),
        OptionSpec("tls_key", "path", help="PEM private key of tls_cert"),
        OptionSpec("tls_ca", "path", help="PEM CA bundle verifying client certificates"),
        OptionSpec("tls_require_client_cert", "bool", default=False,
                   help="refuse clients without a certificate signed by tls_ca"),
        OptionSpec("tls_allow_subjects", "list",
                   help='client certificate subjects allowed, as "CN=lab,O=Hospital"'),
    ))


class _SourceProtocol(MLLPServerProtocol):
    """The server protocol, reporting its connections to the factory so stop() can close them."""

    factory: "_SourceFactory"

    def connectionMade(self) -> None:
        super().connectionMade()
        self.factory.open_protocols.add(self)
        address = self.transport.getPeer()
        self.address = f"{getattr(address, 'host', address)}:{getattr(address, 'port', '')}"
        self.factory.by_address[self.address] = self
        # MSH-10 of the application ACKs written here: the peer's accept ACK of one, if it
        # sends one despite their MSH-15 NE, is consumed rather than taken for a message.
        # The newest MAX_REMEMBERED_APP_ACKS, in order (a peer honouring NE answers none).
        self.application_acks: dict[str, None] = {}

    def connectionLost(self, reason: Any = None) -> None:
        super().connectionLost(reason)
        self.factory.open_protocols.discard(self)
        if self.factory.by_address.get(self.address) is self:
            del self.factory.by_address[self.address]
        if self.known_peer is not None:
            self.factory.sink.connection_closed(self.known_peer)
        waiters, self.factory.close_waiters = self.factory.close_waiters, []
        for waiter in waiters:
            waiter.callback(None)


class _SourceFactory(MLLPServerFactory):
    protocol = _SourceProtocol

    def __init__(self, sink: Any, **options: Any):
        super().__init__(sink, **options)
        self.open_protocols: set[_SourceProtocol] = set()
        self.by_address: dict[str, _SourceProtocol] = {}  # "host:port" -> open connection
        self.close_waiters: list[defer.Deferred] = []


class MLLPSource:
    """Listen on ``host:port`` and hand frames to ``receiver`` for ``channel``.

    Built from resolved ``options`` (see :data:`SPEC`); raises :class:`ValueError` for a bad
    combination, and reads TLS files here, at build time, so that a wrong path is reported
    with the configuration rather than on the first connection.
    """

    def __init__(self, name: str, channel: str, options: Mapping[str, Any], receiver: Any,
                 reactor: Any):
        values = resolve(SPEC, name, options)
        require_positive(SPEC, name, values, "max_frame_size", "idle_timeout", "max_pending",
                         "max_pending_bytes", "max_connections", "max_connections_per_peer",
                         "unreadable_threshold", "unreadable_window")
        self.name = name
        self.channel = channel
        self.host = values["host"]
        self.port = values["port"]
        self._receiver = receiver
        self._reactor = reactor
        self._tls = _tls_options(name, values)
        self._factory = _SourceFactory(
            self, max_frame_size=values["max_frame_size"], idle_timeout=values["idle_timeout"],
            max_pending=values["max_pending"], max_pending_bytes=values["max_pending_bytes"],
            admission=_admission(name, values), clock=reactor,
            transport_name="mllp+tls" if self._tls is not None else "mllp")
        self._threshold = values["unreadable_threshold"]
        self._window = values["unreadable_window"]
        # One per suspect connection, keyed by its Peer (the protocol keeps one Peer object per
        # connection): an entry goes with its connection, even one added after it closed.
        self._accountants: weakref.WeakKeyDictionary[Peer, RefusalAccountant] = \
            weakref.WeakKeyDictionary()
        self._watching = False  # whether _accountants ever held a connection
        self.unreadable_summarised = 0  # frames refused and counted into a summary
        self._listening: Any = None
        # Set by the engine before start() when several processes listen on this port.
        self.reuse_port = False
        self._outstanding = 0  # frames the engine has not answered yet
        # "host:port" -> (the Peer of its open connection, the PeerInfo the engine is given)
        self._peer_infos: dict[str, tuple[Peer, PeerInfo]] = {}
        self._idle_waiters: list[defer.Deferred] = []

    def start(self) -> defer.Deferred:
        """Listen; the Deferred fires once bound, with :attr:`port` set to the real port.

        With :attr:`reuse_port`, the port is shared with the engine's other listener processes
        (``SO_REUSEPORT``, see :mod:`mllp.shared_port`)."""
        if self.reuse_port:
            listening = defer.maybeDeferred(listen_shared, self._reactor, self.host, self.port,
                                            self._factory, self._tls)
            return listening.addCallback(self._bound)
        endpoint = server_endpoint(self._reactor, self.host, self.port, self._tls)
        listening = endpoint.listen(self._factory)
        listening.addCallback(self._bound)
        return listening

    def _bound(self, port: Any) -> None:
        self._listening = port
        self.port = port.getHost().port
        log.info("MLLP source {name} of channel {channel} listening on {host}:{port}",
                 name=self.name, channel=self.channel, host=self.host, port=self.port)

    @defer.inlineCallbacks
    def stop(self) -> Any:
        """Stop accepting, let frames already read be answered, then close every connection.

        Returns a Deferred firing once all connections are gone. Reading pauses first, so a
        busy sender cannot hold the stop open; after :data:`DRAIN_TIMEOUT` seconds without an
        answer from the engine, connections are aborted.
        """
        if self._listening is not None:
            listening, self._listening = self._listening, None
            yield listening.stopListening()
        for protocol in list(self._factory.open_protocols):
            protocol.transport.pauseProducing()
        drained = yield self._drain()
        for protocol in list(self._factory.open_protocols):
            if drained:
                protocol.transport.loseConnection()
            else:
                protocol.transport.abortConnection()
        while self._factory.open_protocols:
            waiter: defer.Deferred = defer.Deferred()
            self._factory.close_waiters.append(waiter)
            yield waiter

    @defer.inlineCallbacks
    def _drain(self) -> Any:
        """Wait until no frame awaits the engine's answer; True if that happened in time.

        New frames may still arrive meanwhile (the protocol resumes reading when its own
        backpressure eases), hence the loop; the deadline bounds it.
        """
        deadline = self._reactor.seconds() + DRAIN_TIMEOUT
        while self._outstanding:
            remaining = deadline - self._reactor.seconds()
            if remaining <= 0:
                log.warn("MLLP source {name}: {count} frame(s) still unanswered after "
                         "{timeout} s; aborting connections", name=self.name,
                         count=self._outstanding, timeout=DRAIN_TIMEOUT)
                return False
            idle: defer.Deferred = defer.Deferred()
            self._idle_waiters.append(idle)
            timer = self._reactor.callLater(remaining, _fire_once, idle)
            yield idle
            if timer.active():
                timer.cancel()
        # The protocol writes an ACK in a callback added after ours: let that chain finish.
        yield _next_turn(self._reactor)
        return True

    # --- the sink API of mllp.protocol -------------------------------------------------

    def receive(self, payload: bytes, peer: Peer) -> defer.Deferred:
        """Hand one frame to the engine; the Deferred fires with the ACK to write back
        (:meth:`receive_then`, which the protocol calls, with a Deferred)."""
        answered: defer.Deferred = defer.Deferred()
        self.receive_then(payload, peer, deferred_reply(answered))
        return answered

    def receive_then(self, payload: bytes, peer: Peer, reply: Callable[[Any], None]) -> None:
        """Hand one frame to the engine; ``reply`` is called once with the ACK to write back
        (a Failure if the engine failed), without a Deferred (see mllp.protocol).

        An unreadable frame past its connection's threshold is NAKed here, and summed into
        the summary its accountant stores, instead of going to the engine. MSH is read here
        only on a suspect connection (one that sent a frame not starting with MSH, or was
        answered a reject): a well-behaved sender's messages have their MSH read once, by
        the intake.
        """
        # An ACK's MSH-9 starts with ACK, in its first segment: searched there rather than
        # the whole message for its MSA (find, not ``in``: see mllp.framing.encode_frame).
        first_end = payload.find(b"\r")
        if (payload.find(b"ACK", 0, first_end if first_end >= 0 else len(payload)) >= 0
                and self._answers_application_ack(payload, peer)):
            reply(b"")
            return
        # bool() of a WeakKeyDictionary is a Python call: a flag says whether it ever held one
        suspect = self._watching and peer in self._accountants
        if suspect or not payload.startswith(b"MSH"):
            refused = self._refuse_unreadable(payload, peer)
            if refused is not None:
                reply(refused)
                return
        self._outstanding += 1
        # one function: count the answer, watch a connection answered with a reject, reply
        answered = partial(self._answered, reply, None if suspect else peer)
        try:
            self._receiver.receive_then(self.channel, payload, self._peer_info(peer),
                                        answered)
        except Exception:
            answered(Failure())

    def _peer_info(self, peer: Peer) -> PeerInfo:
        """The engine's description of ``peer``, made once per connection."""
        known = self._peer_infos.get(peer.address)
        if known is not None and known[0] is peer:
            return known[1]
        info = peer_info(peer)
        self._peer_infos[peer.address] = (peer, info)
        return info

    def write_application_ack(self, address: str, payload: bytes) -> defer.Deferred:
        """Write an application ACK on the open connection from ``address`` ("host:port"),
        behind the ACKs it is still owed; Deferred[bool]: False when no such connection is
        open here, or it closed before the ACK could be written."""
        protocol = self._factory.by_address.get(address)
        if protocol is None:
            return defer.succeed(False)
        written = protocol.write_unsolicited(payload)
        remembered = protocol.application_acks
        try:
            remembered[read_header(payload).control_id] = None
        except HeaderError:
            return written
        if len(remembered) > MAX_REMEMBERED_APP_ACKS:
            del remembered[next(iter(remembered))]
        return written

    def _answers_application_ack(self, payload: bytes, peer: Peer) -> bool:
        """Whether ``payload`` is the peer's accept ACK of an ACK we wrote to it, to be
        consumed: not stored, not answered.

        HL7 v2 chapter 2 has an application ACK acknowledged unless it says NE (ours do), and
        some peers in enhanced mode answer every frame they read with a CA, our accept ACKs
        included (@medplum/hl7 does). So an ACK whose MSA-2 names an application ACK written
        on this connection is consumed, and so is any commit ACK (CA/CE/CR): it is transport
        talk, never a message to route.
        """
        if payload.find(b"MSA") < 0 or not payload.startswith(b"MSH"):  # nearly every message
            return False
        try:
            if not read_header(payload).message_type.startswith("ACK"):
                return False
            answer = parse_ack(payload)
        except HeaderError:
            return False
        protocol = self._factory.by_address.get(peer.address)
        remembered = protocol.application_acks if protocol is not None else {}
        if answer.control_id_echoed in remembered:
            del remembered[answer.control_id_echoed]
            return True
        return answer.code in COMMIT_CODES

    def _refuse_unreadable(self, payload: bytes, peer: Peer) -> bytes | None:
        """A NAK if ``payload`` is unreadable and past its connection's threshold; None if
        it goes to the engine (readable, or unreadable and still stored alone)."""
        try:
            read_header(payload)
        except HeaderError as error:
            if not self._account_unreadable(payload, peer, error):
                self.unreadable_summarised += 1
                return reject_for(
                    payload, HL7Error.from_exception(error), self._factory.next_control_id(),
                    self._factory.timestamp())
        return None

    def _accountant(self, peer: Peer) -> RefusalAccountant:
        accountant = self._accountants.get(peer)
        if accountant is None:
            self._watching = True
            accountant = self._accountants[peer] = RefusalAccountant(self._threshold,
                                                                     self._window)
        return accountant

    def _answered(self, reply: Callable[[Any], None], watched: Peer | None,
                  result: Any) -> None:
        """The engine answered a frame (``result``: its ACK, or a Failure): one frame less
        to wait for on stop; a connection not yet ``watched`` (None: it is already) whose
        frame was answered with a reject is watched from now on; ``result`` goes to
        ``reply``."""
        self._outstanding -= 1
        if not self._outstanding:
            waiters, self._idle_waiters = self._idle_waiters, []
            for waiter in waiters:
                _fire_once(waiter)
        if watched is not None and isinstance(result, bytes) and (
                result.find(_REJECTED) >= 0 or result.find(_REJECTED_ENHANCED) >= 0):
            self._accountant(watched)
        reply(result)

    def frame_error(self, peer: Peer, error: Exception, prefix: bytes) -> defer.Deferred:
        """Have the engine store the start of a frame that could not be accepted; the
        Deferred fires with the record's id, which the protocol's reject names."""
        stored = defer.maybeDeferred(self._receiver.reject, self.channel, prefix,
                                     peer_info(peer), str(error))
        return stored.addCallback(lambda result: getattr(result, "message_id", None))

    def _account_unreadable(self, payload: bytes, peer: Peer, error: HeaderError) -> bool:
        """Tally an unreadable frame; whether it is to be stored on its own."""
        store_it, due = self._accountant(peer).note(payload, str(error),
                                                    self._reactor.seconds())
        if due is not None:
            self._store_summary(peer, due)
        return store_it

    def connection_closed(self, peer: Peer) -> None:
        """A connection is gone: store the summary of its last window, if any."""
        known = self._peer_infos.get(peer.address)
        if known is not None and known[0] is peer:
            del self._peer_infos[peer.address]
        accountant = self._accountants.pop(peer, None)
        summary = accountant.close() if accountant is not None else None
        if summary is not None:
            self._store_summary(peer, summary)

    def _store_summary(self, peer: Peer, summary: RefusalSummary) -> None:
        """One ERROR record for a window's summarised frames (the intake's ``reject``)."""
        if self._receiver is None:
            return
        text = summary.text(peer.address, self._threshold, self._window)
        log.warn("MLLP source {name}: {text}", name=self.name, text=text)
        stored = defer.maybeDeferred(self._receiver.reject, self.channel, summary.first_sample,
                                     peer_info(peer), text)
        stored.addErrback(lambda failure: log.failure(
            "MLLP source {name}: could not store a summary of refused frames", failure,
            name=self.name))

    def stats(self) -> dict[str, Any]:
        """Counters for status and metrics, as kept by the MLLP server factory."""
        factory = self._factory
        refused = factory.admission.refused if factory.admission is not None else {}
        return {"connections_open": factory.connections_open,
                "frames_received": factory.frames_received,
                "bytes_discarded": factory.bytes_discarded,
                "oversized_frames": factory.oversized_frames,
                "unreadable_summarised": self.unreadable_summarised,
                "connections_refused": dict(refused)}


def peer_info(peer: Peer) -> PeerInfo:
    """The engine's description of a peer, from the MLLP layer's own (same fields)."""
    return PeerInfo(peer.transport, peer.address, peer.client_certificate)


def _admission(name: str, values: Mapping[str, Any]) -> Admission:
    """The connection policy the options describe; ValueError naming a bad entry."""
    try:
        networks = parse_networks(values["allow_from"] or ())
    except ValueError as error:
        raise ValueError(f"{label(SPEC, name)}: allow_from: {error}") from None
    subjects = [str(subject) for subject in values["tls_allow_subjects"] or ()]
    if subjects and values["tls_cert"] is None:
        raise ValueError(f"{label(SPEC, name)}: tls_allow_subjects needs TLS (tls_cert, "
                         "tls_key, tls_ca and tls_require_client_cert)")
    if subjects and not values["tls_require_client_cert"]:
        raise ValueError(f"{label(SPEC, name)}: tls_allow_subjects needs "
                         "tls_require_client_cert: true, so that subjects are verified")
    return Admission(max_connections=values["max_connections"],
                     max_per_peer=values["max_connections_per_peer"],
                     networks=networks, subjects=subjects)


def _tls_options(name: str, values: Mapping[str, Any]) -> Any:
    """Server TLS options when a certificate is configured, else None (plain MLLP)."""
    cert, key, ca = values["tls_cert"], values["tls_key"], values["tls_ca"]
    if (cert is None) != (key is None):
        raise ValueError(f"{label(SPEC, name)}: tls_cert and tls_key go together")
    if cert is None:
        if ca is not None or values["tls_require_client_cert"]:
            raise ValueError(f"{label(SPEC, name)}: tls_ca and tls_require_client_cert "
                             "need tls_cert and tls_key")
        return None
    if values["tls_require_client_cert"] and ca is None:
        raise ValueError(f"{label(SPEC, name)}: tls_require_client_cert needs tls_ca "
                         "to verify client certificates")
    try:
        return server_tls_options(cert, key, ca, values["tls_require_client_cert"])
    except (OSError, ValueError, SSL.Error, crypto.Error) as error:
        raise ValueError(f"{label(SPEC, name)}: cannot load TLS files: {error}") from error


def _fire_once(waiter: defer.Deferred) -> None:
    if not waiter.called:
        waiter.callback(None)


def _next_turn(reactor: Any) -> defer.Deferred:
    """A Deferred firing on the reactor's next iteration."""
    turn: defer.Deferred = defer.Deferred()
    reactor.callLater(0, turn.callback, None)
    return turn
