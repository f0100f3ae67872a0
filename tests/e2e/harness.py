"""
What the end-to-end tests share: a recording MLLP peer, YAML written to a temp dir, the real
engine started on loopback, senders, and polling with the reactor.

Everything here is real: the configuration goes through :func:`engine.app.load_config`, the
engine listens on 127.0.0.1 port 0, senders are :class:`mllp.client.MLLPClient` instances and
the downstream system is an :class:`mllp.protocol.MLLPServerFactory` whose sink records what
it receives. Nothing is faked; the tests assert on what the peers saw and what was stored.

Trial checks that a test leaves no socket, timer or thread behind, so every helper that opens
something says how it is closed, and :class:`EngineCase` registers those cleanups itself.
"""
from __future__ import annotations

import json
import random
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import yaml
from twisted.internet import defer, endpoints, reactor as global_reactor, task, threads

from engine.app import Engine, load_config
from engine.store import queries
from mllp.ack import ACCEPT, ack_code, ack_mode_for, build_ack
from mllp.client import MLLPClient
from mllp.header import read_header
from mllp.protocol import MLLPServerFactory, MLLPServerProtocol
from tests.dbs import open_database

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLES = REPO_ROOT / "samples"
CHANNEL = "e2e"
SINK_DESTINATION = "sink"
POLL_INTERVAL = 0.2  # the engine's scan and lane poll period in these tests


# -- the downstream peer ---------------------------------------------------------------

class RecordingSink:
    """The sink of an MLLP server standing for a downstream system.

    Records every payload in arrival order and answers each with an ACK built from its MSH:
    by default the accept code of the message's mode (AA, or CA when MSH-15/16 are valued).
    :meth:`plan` scripts literal codes (``"AE"``, ``"AR"``...) for the next arrivals of one
    control id; an arrival with nothing planned gets the default again.

    A real peer is neither instant nor steady: :meth:`hold` keeps every answer back until
    :meth:`release`, so that work piles up upstream, and ``jitter`` delays each answer by a
    random 0 to ``jitter`` seconds (from a seeded generator), so that parallel connections
    drift apart as they do in production.
    """

    def __init__(self, clock: Any = global_reactor, *, seed: int = 0) -> None:
        self.arrivals: list[tuple[bytes, str]] = []  # (payload, MSA-1 answered)
        self.frame_errors: list[Exception] = []
        self.jitter = 0.0
        self._clock = clock
        self._random = random.Random(seed)
        self._planned: dict[str, list[str]] = {}
        self._held: list[tuple[defer.Deferred, bytes]] | None = None

    def hold(self) -> None:
        """Answer nothing until :meth:`release`."""
        if self._held is None:
            self._held = []

    def release(self) -> None:
        """Answer what is held, in arrival order, and answer as usual from now on."""
        held, self._held = self._held or [], None
        for answer, ack in held:
            answer.callback(ack)

    @property
    def waiting(self) -> int:
        """How many answers are held."""
        return len(self._held or ())

    def plan(self, control_id: str, *codes: str) -> None:
        """Answer the next arrivals of ``control_id`` with ``codes``, in turn."""
        self._planned.setdefault(control_id, []).extend(codes)

    def receive(self, payload: bytes, peer: Any) -> defer.Deferred:
        header = read_header(payload)
        planned = self._planned.get(header.control_id)
        code = planned.pop(0) if planned else ack_code(ACCEPT, ack_mode_for(header))
        self.arrivals.append((payload, code))
        ack = build_ack(header, code, text="" if code[1] == "A" else "scripted",
                        control_id=f"SINK{len(self.arrivals)}", timestamp="20260101000000")
        if self._held is not None:
            answer: defer.Deferred = defer.Deferred()
            self._held.append((answer, ack))
            return answer
        if self.jitter:
            return task.deferLater(self._clock, self._random.uniform(0, self.jitter),
                                   lambda: ack)
        return defer.succeed(ack)

    def frame_error(self, peer: Any, error: Exception, prefix: bytes) -> None:
        self.frame_errors.append(error)

    @property
    def received(self) -> list[bytes]:
        """Every payload, in arrival order, whatever it was answered."""
        return [payload for payload, _ in self.arrivals]

    @property
    def accepted(self) -> list[bytes]:
        """The payloads answered with an accept code (AA or CA), in arrival order."""
        return [payload for payload, code in self.arrivals if code in ("AA", "CA")]


class _TrackedProtocol(MLLPServerProtocol):
    def connectionMade(self) -> None:
        super().connectionMade()
        self.factory.open_protocols.add(self)

    def connectionLost(self, reason: Any = None) -> None:
        super().connectionLost(reason)
        self.factory.open_protocols.discard(self)


class SinkFactory(MLLPServerFactory):
    """An MLLP server factory that knows its open connections, so that they can be closed."""

    protocol = _TrackedProtocol

    def __init__(self, sink: RecordingSink, clock: Any):
        super().__init__(sink, idle_timeout=None, clock=clock)
        self.open_protocols: set[_TrackedProtocol] = set()


def start_sink(reactor: Any, sink: RecordingSink | None = None,
               port: int = 0) -> tuple[SinkFactory, Any]:
    """Listen with a :class:`RecordingSink` on 127.0.0.1; (factory, listening port).

    ``factory.sink`` is the sink. Close with :func:`stop_sink`.
    """
    factory = SinkFactory(sink or RecordingSink(reactor), reactor)
    listening = reactor.listenTCP(port, factory, interface="127.0.0.1")
    return factory, listening


@defer.inlineCallbacks
def stop_sink(factory: SinkFactory, listening: Any, reactor: Any = global_reactor) -> Any:
    """Stop listening, drop every connection, and wait until they are gone."""
    yield defer.maybeDeferred(listening.stopListening)
    for protocol in list(factory.open_protocols):
        protocol.transport.loseConnection()
    yield wait_until(lambda: not factory.open_protocols, 10, "the sink's connections close",
                     reactor=reactor)


class PortReservation:
    """A loopback port held bound but not listening: connecting to it is refused.

    This is a downstream system that is down, at an address known in advance, so that the
    configuration can name it and a sink can listen there later without another socket (an
    outgoing connection's ephemeral port, say) taking the port meanwhile. Both sockets set
    SO_REUSEADDR, which Linux allows while neither listens.
    """

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]

    def close(self) -> None:
        self._socket.close()


# -- configuration -----------------------------------------------------------------------

def write_config(directory: str | Path, store_url: str, sink_port: int | None, *,
                 lanes: int = 1, order_by: str = "destination", ack_mode: str = "after-commit",
                 retry: dict | None = None, source: dict | None = None,
                 sink_options: dict | None = None,
                 extra_destinations: Sequence[dict] = (),
                 decisions: dict | None = None) -> str:
    """Write ``engine.yaml`` and ``channels/e2e.yaml`` under ``directory``; the first's path.

    The channel listens on 127.0.0.1 port 0 (plus ``source`` options) and delivers to an
    MLLP destination ``sink`` at ``sink_port`` (none when ``sink_port`` is None), then to
    each of ``extra_destinations`` (mappings as written in YAML). ``decisions``: engine.yaml's
    section of that name (``{"processes": 0}``: slow plans decided in threads).
    """
    directory = Path(directory)
    (directory / "channels").mkdir(parents=True, exist_ok=True)
    engine_yaml = {"node": "e2e", "store": {"url": store_url}, "channels": ["channels/*.yaml"],
                   "log_level": "warning"}
    if decisions is not None:
        engine_yaml["decisions"] = decisions
    destinations = []
    if sink_port is not None:
        destinations.append({
            "name": SINK_DESTINATION, "type": "mllp", "host": "127.0.0.1", "port": sink_port,
            "connect_timeout": "2s", "ack_timeout": "10s", **(sink_options or {}),
            "retry": retry or {"max_attempts": 10, "initial_delay": "200ms", "max_delay": "1s"},
            "ordering": {"key": order_by, "lanes": lanes}})
    destinations.extend(extra_destinations)
    channel_yaml = {"name": CHANNEL, "description": "end-to-end test channel",
                    "source": {"type": "mllp", "host": "127.0.0.1", "port": 0, **(source or {})},
                    "response": {"mode": ack_mode}, "destinations": destinations}
    (directory / "engine.yaml").write_text(yaml.safe_dump(engine_yaml, sort_keys=False))
    (directory / "channels" / f"{CHANNEL}.yaml").write_text(
        yaml.safe_dump(channel_yaml, sort_keys=False))
    return str(directory / "engine.yaml")


# -- the engine --------------------------------------------------------------------------

@defer.inlineCallbacks
def start_engine(config_path: str, reactor: Any = global_reactor) -> Any:
    """Load ``config_path`` and start an :class:`Engine`; Deferred[Engine], listening.

    The caller stops it (``addCleanup(engine.stop)``); if starting fails, it is stopped here.
    """
    engine = Engine(load_config(config_path), reactor, poll_interval=POLL_INTERVAL)
    try:
        yield engine.start()
    except BaseException:
        yield engine.stop()
        raise
    return engine


# -- senders -----------------------------------------------------------------------------

@defer.inlineCallbacks
def send_over(port: int, payloads: Iterable[bytes], connections: int = 1, *,
              assign: Callable[[int, bytes], int] | None = None,
              on_ack: Callable[[int, bytes, bytes], None] | None = None,
              ack_timeout: float = 30, reactor: Any = global_reactor) -> Any:
    """Send ``payloads`` to 127.0.0.1:``port`` over ``connections`` MLLP connections.

    Payload ``i`` goes on connection ``assign(i, payload)`` (default ``i % connections``);
    each connection sends its share in order, one message at a time, each after the previous
    one's ACK, as real senders do. ``on_ack(connection, payload, ack)`` is called the moment
    an ACK arrives, before the reactor runs anything else. Deferred[list of
    (connection, payload, ack bytes)] in the order the ACKs arrived; the connections are
    closed before it fires. Fails with the first send's error if any send fails.
    """
    shares: list[list[bytes]] = [[] for _ in range(connections)]
    for index, payload in enumerate(payloads):
        shares[assign(index, payload) if assign else index % connections].append(payload)
    clients = [MLLPClient.for_address(reactor, "127.0.0.1", port, connect_timeout=5,
                                      ack_timeout=ack_timeout) for _ in range(connections)]
    results: list[tuple[int, bytes, bytes]] = []

    def acked(ack: bytes, connection: int, payload: bytes) -> None:
        results.append((connection, payload, ack))
        if on_ack is not None:
            on_ack(connection, payload, ack)

    sends = []
    for connection, (client, share) in enumerate(zip(clients, shares)):
        for payload in share:  # the client writes each after the previous one's ACK
            sends.append(client.send(payload).addCallback(acked, connection, payload))
    try:
        yield defer.gatherResults(sends, consumeErrors=True)
    except defer.FirstError as error:
        error.subFailure.raiseException()
    finally:
        yield defer.gatherResults([client.close() for client in clients])
    return results


# -- waiting and reading -----------------------------------------------------------------

@defer.inlineCallbacks
def wait_until(predicate: Callable[[], Any], timeout: float, what: str = "the condition holds",
               *, interval: float = 0.05, reactor: Any = global_reactor) -> Any:
    """Poll ``predicate`` (a bool, or a Deferred of one) until true; fail after ``timeout`` s."""
    deadline = reactor.seconds() + timeout
    while True:
        if (yield defer.maybeDeferred(predicate)):
            return
        if reactor.seconds() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting until {what}")
        yield task.deferLater(reactor, interval, lambda: None)


@defer.inlineCallbacks
def wait_while_progressing(measure: Callable[[], int], target: int, stall: float,
                           what: str = "the count reaches its target", *,
                           interval: float = 0.05, reactor: Any = global_reactor) -> Any:
    """Poll ``measure()`` until it reaches ``target``; fail once it has not grown for
    ``stall`` seconds. A loaded machine slows a big run down without stopping it: a fixed
    deadline fails such a run, while a stall is the defect this wait exists to catch."""
    best = measure()
    last_growth = reactor.seconds()
    while best < target:
        yield task.deferLater(reactor, interval, lambda: None)
        now_at = measure()
        if now_at > best:
            best, last_growth = now_at, reactor.seconds()
        elif reactor.seconds() - last_growth >= stall:
            raise AssertionError(
                f"stalled at {best} of {target} for {stall} s waiting until {what}")


def status_cli(config_path: str) -> defer.Deferred:
    """Run ``aiguillage status --json`` in a subprocess (in a thread); Deferred[dict]."""
    def run() -> dict:
        done = subprocess.run(
            [sys.executable, "-m", "engine.cli.main", "status", "--json", "--config", config_path],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise AssertionError(f"aiguillage status exited {done.returncode}: {done.stderr}")
        return json.loads(done.stdout)

    return threads.deferToThread(run)


def counts(engine: Engine) -> defer.Deferred:
    """Deferred[queries.status_counts()] of the engine's store, read in its read threads."""
    return engine.store.read(queries.status_counts)


def channel_counts(report: dict, channel: str = CHANNEL) -> dict:
    """The counts of ``report`` for a channel, without its destinations and rates."""
    entry = report.get(channel, {})
    return {key: entry.get(key) for key in ("received", "sent", "queued", "errored")}


def destination_counts(report: dict, destination: str = SINK_DESTINATION,
                       channel: str = CHANNEL) -> dict:
    """The counts of ``report`` for one destination of ``channel``."""
    entry = report.get(channel, {}).get("destinations", {}).get(destination, {})
    return {key: entry.get(key) for key in ("received", "sent", "queued", "errored")}


def msh10(payload: bytes) -> str:
    """MSH-10 of a payload, read as the engine reads it."""
    return read_header(payload).control_id


def expected_accept(payload: bytes) -> str:
    """The accept code a message asks for: CA when its MSH-15/16 are valued, else AA."""
    return ack_code(ACCEPT, ack_mode_for(read_header(payload)))


def as_original_mode(payload: bytes) -> bytes:
    """A generated message with MSH-15 and MSH-16 emptied, so that it is ACKed AA, not CA."""
    msh, rest = payload.split(b"\r", 1)
    fields = msh.split(b"|")
    fields[14] = fields[15] = b""
    return b"|".join(fields) + b"\r" + rest


def stored_messages(engine: Engine, **filters: Any) -> defer.Deferred:
    """Deferred[queries.list_messages(**filters)], oldest first (the query gives newest)."""
    filters.setdefault("limit", 100_000)
    return engine.store.read(queries.list_messages, **filters).addCallback(
        lambda rows: rows[::-1])


# -- the test-case base ------------------------------------------------------------------

class EngineCase:
    """Mixin for trial test cases: a database of ``backend``, a temp dir, and helpers that
    register their own cleanups (engine stopped, sockets closed, database dropped).

    Subclass it with ``backend = "sqlite"`` or ``"postgresql"`` and trial's TestCase.
    """

    backend = "sqlite"

    def setUp(self) -> None:
        self.store_url = open_database(self, self.backend)
        temporary = tempfile.TemporaryDirectory(prefix="aiguillage-e2e-")
        self.addCleanup(temporary.cleanup)
        self.directory = Path(temporary.name)

    def sink(self, port: int = 0) -> tuple[RecordingSink, int]:
        """A listening :class:`RecordingSink`, closed after the test; (sink, port)."""
        factory, listening = start_sink(global_reactor, port=port)
        self.addCleanup(stop_sink, factory, listening)
        return factory.sink, listening.getHost().port

    @defer.inlineCallbacks
    def raw_connection(self, port: int) -> Any:
        """A bare TCP connection to ``port`` (a :class:`RawMLLPClient`: bytes as they come),
        closed after the test."""
        from tests.channels.fakes import RawMLLPClient

        endpoint = endpoints.TCP4ClientEndpoint(global_reactor, "127.0.0.1", port)
        raw = yield endpoints.connectProtocol(endpoint, RawMLLPClient())
        self.addCleanup(lambda: raw.closed)
        self.addCleanup(raw.transport.loseConnection)
        return raw

    def reserved_port(self) -> int:
        """A port where nothing listens yet (see :class:`PortReservation`)."""
        reservation = PortReservation()
        self.addCleanup(reservation.close)
        return reservation.port

    def config(self, sink_port: int | None, **options: Any) -> str:
        """:func:`write_config` into this test's temp dir, on this test's database."""
        return write_config(self.directory, self.store_url, sink_port, **options)

    @defer.inlineCallbacks
    def engine(self, config_path: str) -> Any:
        """A started engine, stopped after the test; Deferred[(engine, source port)]."""
        engine = yield start_engine(config_path)
        self.addCleanup(engine.stop)
        port = engine.source_port(CHANNEL)
        self.assertNotIn(port, (None, 0))
        return engine, port
