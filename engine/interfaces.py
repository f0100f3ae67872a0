"""
The seams between the engine and what plugs into it.

Connectors (``channels/``) adapt a transport to these interfaces; the engine only ever talks
to them through what is declared here, so that a fake in ``tests/fakes.py`` can stand in for
a real connector and be checked against the same protocol.

test-case-name: tests.channels.test_fakes
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

# Option kinds understood by the configuration loader (engine/config/loader.py).
OPTION_KINDS = frozenset(
    {"str", "int", "float", "bool", "port", "duration", "size", "path", "mapping", "list"}
)


@dataclass(frozen=True)
class OptionSpec:
    """One option a connector accepts in channel YAML.

    ``kind`` is one of :data:`OPTION_KINDS`: ``duration`` accepts seconds or ``"500ms"``,
    ``"5s"``, ``"2m"``, ``"1h"`` and is loaded as float seconds; ``size`` accepts bytes or
    ``"64KiB"``, ``"16MiB"`` and is loaded as int bytes; ``path`` is resolved against the
    directory of the YAML file that names it.
    """

    name: str
    kind: str
    required: bool = False
    default: Any = None
    help: str = ""
    choices: tuple = ()


@dataclass(frozen=True)
class ConnectorSpec:
    """What a connector type declares about itself: its role, name and options."""

    role: str  # "source" or "destination"
    type_name: str  # the ``type:`` value in channel YAML
    options: tuple[OptionSpec, ...] = ()
    help: str = ""


@dataclass(frozen=True)
class PeerInfo:
    """Where an inbound message came from, as stored with it."""

    transport: str  # "mllp", "mllp+tls", "file", ...
    address: str  # "127.0.0.1:53122", a file path, ...
    client_certificate: str | None = None  # subject of a verified TLS client certificate


@dataclass(frozen=True)
class DeliveryOutcome:
    """What a destination answered for one delivery."""

    response: bytes | None = None  # the peer's raw answer (an ACK, a file path, ...)
    detail: str = ""
    # what the journal should say of this success (a registry's warnings); None: a plain
    # success, whose SENT line the delivery's row implies
    note: str | None = None


class DeliveryFailed(Exception):
    """A destination could not deliver; ``retryable`` says whether trying again may help.

    A negative acknowledgement (AE) is usually retryable, a rejection (AR) is not: the engine
    parks a non-retryable failure in ERROR at once instead of burning its retry budget.
    """

    def __init__(self, reason: str, *, retryable: bool = True, response: bytes | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.response = response


@runtime_checkable
class Destination(Protocol):
    """A place messages are delivered to: an MLLP peer, a directory, an XDS repository...

    ``send`` returns a Deferred firing with a :class:`DeliveryOutcome`, or failing with
    :class:`DeliveryFailed` (any other exception counts as a retryable failure).
    The engine never calls ``send`` again on the same lane before the previous call finished,
    which is how order is kept.
    """

    name: str

    def start(self) -> Any:  # Deferred[None] or None
        ...

    def stop(self) -> Any:  # Deferred[None] or None
        ...

    def send(self, payload: bytes, context: "DeliveryContext") -> Any:  # Deferred[DeliveryOutcome]
        ...


@runtime_checkable
class BatchDestination(Protocol):
    """A destination that can also deliver several payloads of one lane in one go.

    Optional: the engine uses ``send_batch`` when a destination has it, for the deliveries
    at the head of a lane that are due now. It returns a Deferred firing with one outcome per
    payload *attempted*, in order: a :class:`DeliveryOutcome`, or a failure (an exception
    instance, :class:`DeliveryFailed` or other, judged as ``send``'s). The list stops at the
    first failure: the payloads after it were not attempted and stay queued, in order. The
    ``file`` destination writes a batch of files and flushes them and their directory once.
    """

    def send_batch(self, payloads: Sequence[bytes],
                   contexts: Sequence["DeliveryContext"]) -> Any:  # Deferred[list]
        ...


@dataclass(frozen=True)
class DeliveryContext:
    """What a destination may know about the delivery besides the payload."""

    channel: str
    message_id: int
    delivery_id: int
    control_id: str | None
    message_type: str | None
    attempt: int
    charset: str | None = None
    # Where the message came from, as stored ("mllp://127.0.0.1:53122"): the application ACK
    # of an enhanced-mode message goes back on that connection while it is open.
    peer: str | None = None


class Receiver(Protocol):
    """What a source hands inbound bytes to (implemented by the engine)."""

    def receive(self, channel: str, payload: bytes, peer: PeerInfo) -> Any:
        """Persist ``payload`` and return a Deferred firing with the acknowledgement bytes."""

    def receive_then(self, channel: str, payload: bytes, peer: PeerInfo,
                     reply: Callable[[Any], None]) -> None:
        """:meth:`receive` without a Deferred: call ``reply`` once with the acknowledgement
        bytes (or a Failure), on the reactor thread (the MLLP source's way)."""

    def reject(self, channel: str, payload: bytes, peer: PeerInfo, error: str) -> Any:
        """Store input that could not even be framed (oversized, broken); Deferred firing
        with the record (``message_id``), or with None."""


@dataclass(frozen=True)
class InboundDocument:
    """What a source of documents that are not HL7 v2 (an XDS.b Document Recipient) hands
    to the engine: the bytes to store and what describes them, since there is no MSH.

    ``error`` set: the source refused the input (invalid metadata...); it is stored in ERROR
    with that text, so that nothing sent is lost. ``patient`` orders deliveries by patient.
    """

    payload: bytes
    message_type: str
    control_id: str | None = None
    sender: str | None = None
    patient: str = ""
    error: str | None = None


class DocumentReceiver(Protocol):
    """What a source of documents hands them to (implemented by the engine's intake)."""

    def receive_document(self, channel: str, document: InboundDocument, peer: PeerInfo) -> Any:
        """Commit ``document`` as a message of ``channel``; a Deferred firing with the
        store's ``IngestResult`` once committed (its ``status``: TRANSFORMED, ERROR,
        DUPLICATE), or failing when it could not be: then nothing is stored."""


@runtime_checkable
class Source(Protocol):
    """Something that receives messages and hands them to a :class:`Receiver`."""

    name: str

    def start(self) -> Any:  # Deferred[None]: listening
        ...

    def stop(self) -> Any:  # Deferred[None]: stopped accepting and drained
        ...


@dataclass
class ConnectorConfig:
    """A source or destination as loaded from YAML: its type and validated options."""

    type_name: str
    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    file: str = ""
    line: int = 0


SourceFactory = Any  # callable(config: ConnectorConfig, channel: str, receiver: Receiver, reactor) -> Source
DestinationFactory = Any  # callable(config: ConnectorConfig, channel: str, reactor) -> Destination

__all__: Sequence[str] = [
    "OPTION_KINDS",
    "OptionSpec",
    "ConnectorSpec",
    "PeerInfo",
    "DeliveryOutcome",
    "DeliveryFailed",
    "Destination",
    "BatchDestination",
    "DeliveryContext",
    "Receiver",
    "InboundDocument",
    "DocumentReceiver",
    "Source",
    "ConnectorConfig",
]


@runtime_checkable
class ConsentLookup(Protocol):
    """Whether a patient opposed sharing: read from the store, so called only off the reactor
    thread (a slow plan's decision, :mod:`engine.flow.decider`); see
    :class:`engine.consent.lookup.StoreConsentLookup`."""

    def opposition(self, identifiers: Sequence[tuple[str, str]], scope: str) -> Any:
        """The open opposition (an :class:`engine.store.consent.Opposition`) of the patient
        holding any of ``identifiers`` (domain OID, value) in ``scope``, or None."""
