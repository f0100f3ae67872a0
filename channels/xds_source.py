"""
The ``xds`` source (IHE Document Recipient): a hospital's Document Source pushes ITI-41
Provide and Register Document Set-b over HTTP(S), and each submission becomes a message of
the channel, routed to its destinations like any other (to an ``xds`` destination: the
hospital → Aiguillage → the shared record).

The endpoint is :class:`xds.server.resource.XDSResource` (bounded bodies, MTOM or inline,
reading and validation in threads); this connector is its handler. A valid submission is
stored as its ITI-41 body with every document inline (:mod:`xds.transforms.payload`, message
type ``ITI-41``, control id the SubmissionSet uniqueId, sender its sourceId): readable with
``aiguillage messages show``, replayable, and what an ``xds`` destination sends as it is.
The RegistryResponse Success goes back only once that message is committed (persist before
acknowledge); a store failure is a SOAP Receiver fault, so the Document Source sends again,
and a resent submission is recognised as a DUPLICATE and answered Success again. A
submission the endpoint refuses (metadata errors, hash or size that do not match, an
unreadable request) is answered with the standard error codes and its body stored in ERROR
with them.

test-case-name: tests.channels.test_xds_source
"""
from __future__ import annotations

from typing import Any, Mapping

from twisted.internet import defer
from twisted.internet.threads import deferToThread
from twisted.logger import Logger

from channels.options import label, require_positive, resolve
from engine.interfaces import ConnectorSpec, DocumentReceiver, InboundDocument, OptionSpec, PeerInfo
from mllp.shared_port import listen_shared
from xds.metadata.vocabulary import RESPONSE_SUCCESS
from xds.server.decoding import ServerLimits
from xds.server.handler import ProvideAndRegister
from xds.server.resource import RECIPIENT_ACTIONS, XDSResource, XDSSite
from xds.soap.envelope import SOAPFault
from xds.soap.response import RegistryResponse
from xds.tls import server_endpoint, server_options
from xds.transforms.payload import submission_payload

MESSAGE_TYPE = "ITI-41"
log = Logger()

SPEC = ConnectorSpec(
    role="source", type_name="xds",
    help="Receive IHE XDS.b ITI-41 Provide and Register submissions over HTTP(S) "
         "(Document Recipient).",
    options=(
        OptionSpec("host", "str", default="127.0.0.1", help="address to listen on"),
        OptionSpec("port", "port", required=True, help="0 picks a free port"),
        OptionSpec("path", "str", default="/xds/recipient",
                   help="the endpoint's path (any other path is 404)"),
        OptionSpec("max_body_size", "size", default=256 * 1024 * 1024,
                   help="largest request accepted, refused as it arrives"),
        OptionSpec("idle_timeout", "duration", default=60),
        OptionSpec("tls_cert", "path", help="PEM certificate (and chain): enables HTTPS"),
        OptionSpec("tls_key", "path", help="PEM private key of tls_cert"),
        OptionSpec("tls_ca", "path", help="PEM CA bundle: client certificates required"),
    ))


class XDSSource:
    """Serve ITI-41 at ``path`` on ``host:port``, each submission handed to the receiver.

    :attr:`reuse_port`: the port is shared with the node's other listener processes
    (``aiguillage run --listeners M``, ``SO_REUSEPORT``), as the MLLP source's is.
    """

    reuse_port = False

    def __init__(self, name: str, channel: str, options: Mapping[str, Any],
                 receiver: DocumentReceiver | None, reactor: Any):
        values = resolve(SPEC, name, options)
        require_positive(SPEC, name, values, "max_body_size", "idle_timeout")
        self.name, self.channel = name, channel
        self.host, self.port = values["host"], values["port"]
        self.path = "/" + values["path"].strip("/")
        self._receiver = receiver
        self._reactor = reactor
        self._tls = _tls_options(name, values)
        self._transport = "https" if self._tls is not None else "http"
        self.received = self.refused = 0
        limits = ServerLimits(max_body_bytes=values["max_body_size"])
        self._site = XDSSite(_at_path(self.path, XDSResource(
            self, RECIPIENT_ACTIONS, limits, refusals=self._store_refused)),
            max_body_bytes=values["max_body_size"], timeout=values["idle_timeout"])
        self._listening: Any = None

    def start(self) -> defer.Deferred:
        """Listen; the Deferred fires once bound, with :attr:`port` set to the real port."""
        if self.reuse_port:
            return defer.maybeDeferred(listen_shared, self._reactor, self.host, self.port,
                                       self._site, self._tls).addCallback(self._bound)
        endpoint = server_endpoint(self._reactor, self.port, self.host, self._tls)
        return endpoint.listen(self._site).addCallback(self._bound)

    def _bound(self, listening: Any) -> None:
        self._listening = listening
        self.port = listening.getHost().port
        log.info("XDS.b source {name} of channel {channel} listening on {url}", name=self.name,
                 channel=self.channel, url=f"{self._transport}://{self.host}:{self.port}"
                                           f"{self.path}")

    def stop(self) -> defer.Deferred:
        """Stop accepting connections; requests under way finish on theirs."""
        listening, self._listening = self._listening, None
        if listening is None:
            return defer.succeed(None)
        return defer.maybeDeferred(listening.stopListening)

    def stats(self) -> dict[str, int]:
        return {"submissions_received": self.received, "submissions_refused": self.refused}

    # -- XDSHandler ----------------------------------------------------------------------

    @defer.inlineCallbacks
    def provide_and_register(self, request: ProvideAndRegister):
        """Store the submission as a message, then answer Success (returns a Deferred);
        a failed commit is a Receiver fault, so that the sender tries again."""
        document = yield deferToThread(_stored_form, request)
        try:
            yield self._receiver.receive_document(self.channel, document, self._peer(request.peer))
        except Exception as error:
            log.error("XDS.b source {name}: submission {id} not stored: {error}",
                      name=self.name, id=document.control_id, error=error)
            raise SOAPFault("Receiver", "the submission could not be stored; send it again "
                                        "later") from None
        self.received += 1
        return RegistryResponse(RESPONSE_SUCCESS, list(request.warnings))

    def register(self, submission: Any, message: Any) -> defer.Deferred:
        return defer.fail(SOAPFault("Sender", "a Document Recipient serves ITI-41 only"))

    stored_query = retrieve = register

    def _store_refused(self, content_type: str, body: bytes, reason: str,
                       peer: str) -> defer.Deferred:
        """Keep a refused request's body in ERROR with why (the endpoint's refusal hook)."""
        self.refused += 1
        stored = content_type.encode("latin-1", "replace") + b"\r\n\r\n" + body \
            if "multipart" in content_type.lower() else body
        document = InboundDocument(stored, MESSAGE_TYPE, error=f"refused: {reason}")
        return self._receiver.receive_document(self.channel, document, self._peer(peer))

    def _peer(self, address: str) -> PeerInfo:
        return PeerInfo(self._transport, address)


def _stored_form(request: ProvideAndRegister) -> InboundDocument:
    """The message a submission is stored as (runs in a thread: reads the documents)."""
    submission = request.submission
    documents = {key: document.read_bytes() for key, document in request.documents.items()}
    submission_set = submission.submission_set
    return InboundDocument(
        submission_payload(submission, documents), MESSAGE_TYPE,
        control_id=submission_set.unique_id if submission_set else None,
        sender=submission_set.source_id if submission_set else None,
        patient=submission_set.patient_id if submission_set else "")


def _at_path(path: str, endpoint: Any) -> Any:
    """A resource tree serving ``endpoint`` at ``path`` only."""
    from twisted.web import resource

    root = resource.Resource()
    node = root
    steps = [step.encode() for step in path.strip("/").split("/") if step]
    for step in steps[:-1]:
        child = resource.Resource()
        node.putChild(step, child)
        node = child
    node.putChild(steps[-1] if steps else b"", endpoint)
    return root


def _tls_options(name: str, values: Mapping[str, Any]) -> Any:
    if values["tls_cert"] is None and values["tls_key"] is None:
        if values["tls_ca"] is not None:
            raise ValueError(f"{label(SPEC, name)}: tls_ca needs tls_cert and tls_key")
        return None
    if values["tls_cert"] is None or values["tls_key"] is None:
        raise ValueError(f"{label(SPEC, name)}: tls_cert and tls_key go together")
    try:
        return server_options(values["tls_cert"], values["tls_key"], values["tls_ca"],
                              require_client_cert=values["tls_ca"] is not None)
    except (OSError, ValueError) as error:
        raise ValueError(f"{label(SPEC, name)}: cannot load TLS files: {error}") from error
