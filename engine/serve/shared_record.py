"""
The shared record served by a running engine: the built-in XDS.b registry and
repository (:mod:`xds.registry`) behind the endpoints of :mod:`xds.server`,
on the listener engine.yaml's ``shared_record:`` section describes.

``<path>/repository`` takes ITI-41 (Provide and Register, stored here, the
repository and the registry in one) and ITI-43 (Retrieve); ``<path>/registry``
takes ITI-42 (Register, for repositories feeding this registry) and ITI-18
(Registry Stored Query). Every transaction runs in threads of the shared
record's own, on the store's database (:class:`xds.registry.threads.RegistryThreads`
through :class:`xds.registry.handler.StoreRegistryHandler`): one writer
committing the ITI-41/ITI-42 submissions waiting as one group, each answered
after that commit, and reader threads for ITI-18/ITI-43; the store's own
threads stay free for the intake and the delivery lanes. Reading, checking and
answering a request run in threads of their own (:mod:`xds.server.resource`).

A request the shared record refuses (over the size limit, unreadable, hostile XML,
metadata errors, a submission the registry turns down) is answered with its fault or
Failure response and stored (before that answer; a body over the size limit is
answered at once, as it arrives, and stored just after) as a message in ERROR of the
pseudo-channel ``shared_record`` (:data:`engine.config.shared_record.REFUSALS_CHANNEL`):
its body (or the first bytes of one too large, with its size), the reason with its
error codes, the peer and the time; ``aiguillage messages list --channel shared_record
--status ERROR`` and ``messages show`` show them.

The engine starts it after the store, and stops it first: no new connection,
the requests being answered finish (a bounded while), every connection is
closed, the submissions queued are committed, and only then do the store's
threads stop. It runs in the intake process that holds the admin port (the
main one), never in ``--workers`` or ``--listeners`` children nor in a
``--role delivery`` process.

test-case-name: tests.e2e.test_shared_record
"""
from __future__ import annotations

import logging
import time
from typing import Any

from twisted.internet import defer, task
from twisted.protocols.policies import WrappingFactory
from twisted.web import resource

from engine import status as st
from engine.config.shared_record import REFUSALS_CHANNEL, SharedRecordConfig
from engine.serve.adminauth import is_loopback
from engine.store.records import InboundRecord
from xds.registry.handler import StoreRegistryHandler
from xds.registry.threads import RegistryThreads
from xds.server.decoding import ServerLimits
from xds.server.resource import REGISTRY_ACTIONS, REPOSITORY_ACTIONS, XDSResource, XDSSite
from xds.soap.mtom import MTOMLimits
from xds.tls import server_endpoint, server_options

log = logging.getLogger(__name__)

IDLE_TIMEOUT = 60.0  # seconds an idle client connection is kept
REFUSAL_BYTES = 1024 * 1024  # of a refused request, the bytes stored (and its size said)
MAX_STORED_ERROR = 4000
REFUSED_TYPE = "XDS.b"  # the message type of a stored refusal
DRAIN_SECONDS = 10.0  # at stop, how long requests being answered may take to finish


def limits(config: SharedRecordConfig) -> ServerLimits:
    """What one request may hold: a body of *max_request_bytes* (its XML, inline base64
    included, as much), documents of *max_document_bytes* each."""
    return ServerLimits(
        max_body_bytes=config.max_request_bytes, max_xml_bytes=config.max_request_bytes,
        max_inline_bytes=config.max_document_bytes,
        mtom=MTOMLimits(max_root_bytes=config.max_request_bytes,
                        max_part_bytes=config.max_document_bytes,
                        max_total_bytes=config.max_request_bytes))


def tls_options(config: SharedRecordConfig) -> Any:
    """The listener's TLS options from its PEM files (read now), or None without TLS;
    ValueError or OSError when a file does not hold what it should."""
    tls = config.tls
    if tls is None:
        return None
    try:
        return server_options(tls.certificate, tls.key, tls.ca, tls.require_client_certificate)
    except OSError:
        raise
    except Exception as error:  # OpenSSL's errors say little: name the files
        raise ValueError(f"shared_record.tls: cannot load certificate {tls.certificate} with"
                         f" key {tls.key}{f' and ca {tls.ca}' if tls.ca else ''}: {error}")


def check(config: SharedRecordConfig | None) -> list[str]:
    """Problems only building the listener finds (TLS files), as ``file:line: text``."""
    if config is None:
        return []
    try:
        tls_options(config)
    except (OSError, ValueError) as error:
        return [f"{config.file}:{config.line}: shared_record: {error}"]
    return []


def site_root(handler: Any, config: SharedRecordConfig,
              refusals: Any = None) -> resource.Resource:
    """The resource tree: ``<path>/repository`` and ``<path>/registry``; each refused
    request handed to *refusals* (a :class:`xds.server.handler.RefusalRecorder`)."""
    root = parent = resource.Resource()
    for segment in [s for s in config.path.split("/") if s]:
        child = resource.Resource()
        parent.putChild(segment.encode("ascii"), child)
        parent = child
    bounds = limits(config)
    for name, actions in ((b"repository", REPOSITORY_ACTIONS),
                          (b"registry", REGISTRY_ACTIONS)):
        parent.putChild(name, XDSResource(handler, actions, bounds, refusals=refusals,
                                          refusal_bytes=REFUSAL_BYTES))
    return root


def refused_record(content_type: str, body: bytes, reason: str, peer: str,
                   transport: str, now: float) -> InboundRecord:
    """The message a refused request is stored as: ERROR on the pseudo-channel, its body
    (MTOM with its Content-Type line first, so that it can be read again) and reason."""
    stored = content_type.encode("latin-1", "replace") + b"\r\n\r\n" + body \
        if "multipart" in content_type.lower() else body
    return InboundRecord(channel=REFUSALS_CHANNEL, received_at=now,
                         peer=f"{transport}://{peer}"[:255], raw=stored, status=st.ERROR,
                         message_type=REFUSED_TYPE, error=f"refused: {reason}"[:MAX_STORED_ERROR],
                         dedupe=False)


class SharedRecordService:
    """The shared record's listener over the engine's store; :meth:`start`, :meth:`stop`."""

    def __init__(self, config: SharedRecordConfig, store: Any, reactor: Any, *,
                 registry: Any = None):
        """*registry* runs the registry's transactions (``start``, ``stop``, ``read`` and
        ``write``): by default :class:`RegistryThreads` over *store*'s database."""
        self.config = config
        self._reactor = reactor
        self.threads = registry if registry is not None else RegistryThreads(store.engine,
                                                                             reactor)
        self.handler = StoreRegistryHandler(self.threads, config.repository_unique_id,
                                            max_results=config.max_results)
        self._store = store
        self.refused = 0
        site = XDSSite(site_root(self.handler, config, self._store_refused),
                       max_body_bytes=config.max_request_bytes, timeout=IDLE_TIMEOUT,
                       refusals=self._store_refused, refusal_bytes=REFUSAL_BYTES)
        self._factory = WrappingFactory(site)  # knows its connections, to close them at stop
        self.listening: Any = None
        self.drain_seconds = DRAIN_SECONDS

    def _store_refused(self, content_type: str, body: bytes, reason: str,
                       peer: str) -> defer.Deferred:
        """Store a refused request (the endpoints' refusal hook); Deferred once committed."""
        self.refused += 1
        transport = "https" if self.config.tls is not None else "http"
        return self._store.ingest(refused_record(content_type, body, reason, peer, transport,
                                                 time.time()))

    @property
    def port(self) -> int | None:
        """The port listened on (useful with port 0); None when not listening."""
        return None if self.listening is None else self.listening.getHost().port

    @property
    def base_url(self) -> str:
        """``http(s)://host:port<path>``, the endpoints' common prefix."""
        scheme = "https" if self.config.tls is not None else "http"
        return f"{scheme}://{self.config.host}:{self.port}{self.config.path}"

    def start(self) -> defer.Deferred:
        """Listen; Deferred firing once listening (failing if the port is taken)."""
        tls = tls_options(self.config)
        if tls is None and not is_loopback(self.config.host):
            log.warning("shared record: %s is reachable from other machines over plain HTTP;"
                        " configure shared_record.tls (IHE ATNA asks for mutual TLS)",
                        self.config.host)
        endpoint = server_endpoint(self._reactor, self.config.port, self.config.host, tls)
        d = endpoint.listen(self._factory)

        def listening(port: Any) -> None:
            self.threads.start()  # before the reactor reads any request from the port
            self.listening = port
            log.info("shared record: XDS.b endpoints %s/repository (ITI-41, ITI-43) and"
                     " %s/registry (ITI-42, ITI-18)", self.base_url, self.base_url)

        def refused(failure: Any) -> None:
            raise RuntimeError(f"shared record: cannot listen on {self.config.host}:"
                               f"{self.config.port}: {failure.getErrorMessage()}")

        return d.addCallbacks(listening, refused)

    @defer.inlineCallbacks
    def stop(self) -> Any:
        """Stop listening; let the requests being answered finish (for *drain_seconds* at
        most), close every connection; Deferred firing once they are closed.

        A request still arriving (its body incomplete) is cut; one whose body was read is
        answered first, so that a client whose submission was committed is told so."""
        if self.listening is not None:
            port, self.listening = self.listening, None
            yield defer.maybeDeferred(port.stopListening)
        deadline = self._reactor.seconds() + self.drain_seconds
        while True:
            answering = [c for c in list(self._factory.protocols) if _answering(c)]
            for connection in list(self._factory.protocols):
                if connection not in answering:
                    connection.transport.loseConnection()
            if not answering or self._reactor.seconds() >= deadline:
                break
            yield task.deferLater(self._reactor, _POLL, lambda: None)
        for connection in answering:
            log.warning("shared record: a request was still being answered after %.0f s;"
                        " its connection is closed", self.drain_seconds)
            connection.transport.loseConnection()
        while self._factory.protocols and self._reactor.seconds() < deadline + 1:
            yield task.deferLater(self._reactor, _POLL, lambda: None)
        yield self.threads.stop()


_POLL = 0.05
_NOT_READ = b"(no method yet)"  # twisted.web's Request.method until its body is read


def _answering(connection: Any) -> bool:
    """Whether a connection holds a request whose body was read and whose answer is not
    finished (the handler or the answer's writing is under way)."""
    channel = connection.wrappedProtocol  # twisted.web's HTTPChannel, maybe behind a proxy
    channel = getattr(channel, "_channel", channel)
    requests = getattr(channel, "requests", None) or []
    return any(getattr(request, "method", _NOT_READ) != _NOT_READ and not request.finished
               for request in requests)
