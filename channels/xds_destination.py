"""
The ``xds`` destination (IHE Document Source): each delivery becomes one ITI-41 Provide and
Register Document Set-b sent to a repository, the DMP or any XDS.b Document Recipient, and
the RegistryResponse is judged into the engine's vocabulary.

What it sends comes from the delivery's bytes (:mod:`xds.transforms.payload`): a CDA R2
document, whose header gives the DocumentEntry (:mod:`xds.cda.submission`) completed by the
``metadata`` settings; or a submission made by ``mdm-to-xds``/``cda-to-xds`` or received by an
``xds`` source, sent as it is. Anything else (an HL7 v2 message with no transform) is refused
for good, saying to name a transform.

The judgement: Success (warnings kept in the detail and the SENT journal line) is SENT, and so is a retry answered
only ``XDSDuplicateUniqueIdInRegistry`` (the registry's word for the same bytes already
registered: an earlier attempt was stored, its answer lost); a RegistryResponse Failure and
a SOAP Sender fault are permanent (ERROR at once, the error codes and texts kept), unless
every error is one of "busy" or "out of resources", which pass; a Receiver fault, a transport
error or a timeout is retried. The RegistryResponse (or the fault) is kept as the delivery's
response.

The options ``affinity_domain`` (the patientId in the identity index's domain) and ``dmp``
(signed for the DMP) are read by the engine, which gives this destination the two hooks
below instead (:mod:`engine.identity.xds`); built without them, it refuses those options.

Two hooks, each a callable or ``"module:function"`` in YAML, may return a Deferred:

- ``patient_id(patient_id, submission, context)``: the patient's identifier in the affinity
  domain for the CX the document gives (PID-3 / the CDA recordTarget id, used as given by
  default); the identity index plugs in here. It may raise
  :class:`engine.interfaces.DeliveryFailed` (unknown patient: permanent, or not).
- ``prepare_request(request, outgoing)``: the built :class:`xds.client.http.SOAPRequest`
  (envelope, MTOM parts, url) just before it is sent, and the :class:`OutgoingSubmission` it
  was built from (submission, documents, the delivery's context); returns the request to
  send, a prepared copy (WS-Security header with the signed VIHF, the XAdES signature of the
  submission set as one more document: ``xds.dmp.prepare.prepare_for_dmp`` takes and gives
  exactly that). It runs in a worker thread, since signing is blocking CPU work; a
  ``MetadataError`` it raises (``DMPPreparationError``) refuses the delivery for good with
  its error codes, a :class:`engine.interfaces.DeliveryFailed` is taken as it is.

test-case-name: tests.channels.test_xds_destination
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from twisted.internet import defer
from twisted.internet.threads import deferToThread

from channels.options import label, require_positive, resolve
from engine.interfaces import (
    ConnectorSpec, DeliveryContext, DeliveryFailed, DeliveryOutcome, OptionSpec)
from xds.cda.header import CDAError
from xds.cda.submission import submission_from_cda
from xds.client.http import HTTPSender, Sender, SOAPRequest, XDSTransportError
from xds.client.transactions import XDSClient
from xds.metadata import errors as codes
from xds.metadata.errors import MetadataError
from xds.metadata.model import Submission
from xds.safexml import to_bytes
from xds.soap.envelope import SOAPFault, fault_envelope
from xds.soap.response import RegistryResponse, describe_errors, registry_response
from xds.tls import ClientTLSPolicy
from xds.transforms.options import MetadataOptionsError, metadata_options
from xds.transforms.payload import PayloadError, read_payload

#: Registry errors that say "not now" rather than "not this": retried.
TRANSIENT_ERRORS = frozenset({"XDSRegistryBusy", "XDSRepositoryBusy",
                              codes.REGISTRY_OUT_OF_RESOURCES, codes.REPOSITORY_OUT_OF_RESOURCES})

SPEC = ConnectorSpec(
    role="destination", type_name="xds",
    help="Send each document as an IHE XDS.b ITI-41 Provide and Register (Document Source).",
    options=(
        OptionSpec("url", "str", required=True,
                   help="the ITI-41 endpoint, http:// or https://"),
        OptionSpec("mtom", "bool", default=True, help="documents as MTOM parts (else inline)"),
        OptionSpec("timeout", "duration", default=120, help="the whole exchange"),
        OptionSpec("connect_timeout", "duration", default=10),
        OptionSpec("tls_ca", "path", help="PEM CA bundle the server is checked against"),
        OptionSpec("tls_cert", "path", help="PEM client certificate, for mutual TLS"),
        OptionSpec("tls_key", "path", help="PEM private key of tls_cert"),
        OptionSpec("source_id", "str", help="the OID of this Document Source"),
        OptionSpec("metadata", "mapping", default={},
                   help="class-code, format-code, healthcare-facility-code, "
                        "practice-setting-code, confidentiality, ... for CDA documents"),
        OptionSpec("patient_id", "str",
                   help="module:function giving the affinity-domain patient id"),
        OptionSpec("prepare_request", "str",
                   help="module:function(request, outgoing) preparing each SOAP request "
                        "before it is sent (run in a thread)"),
        OptionSpec("affinity_domain", "str",
                   help="the identifier domain (engine.yaml identity: domains, namespace or "
                        "OID) of the patientId sent, looked up in the identity index"),
        OptionSpec("dmp", "mapping",
                   help="toward the DMP: the structure's certificate and key, practitioner, "
                        "value sets... (signed VIHF, XAdES, qualified INS as patientId)"),
    ))

#: Options the engine turns into the two hooks (engine/identity/xds.py) before building.
WIRED_BY_THE_ENGINE = ("affinity_domain", "dmp")


@dataclass(frozen=True)
class OutgoingSubmission:
    """What one ITI-41 was built from, for ``prepare_request`` to read."""

    submission: Submission
    documents: dict[str, bytes]
    context: DeliveryContext
    url: str
    mtom: bool


class _PreparingSender:
    """The client's :class:`xds.client.http.Sender` with ``prepare_request`` run (in a
    thread) on each request before the real sender sends it."""

    def __init__(self, sender: Sender, prepare: Callable, outgoing: OutgoingSubmission):
        self.sender, self.prepare, self.outgoing = sender, prepare, outgoing

    def send(self, request: SOAPRequest) -> defer.Deferred:
        prepared = deferToThread(self.prepare, request, self.outgoing)
        return prepared.addCallback(self.sender.send)


class XDSDestination:
    """Deliver each payload as one ITI-41 to ``url``."""

    def __init__(self, name: str, channel: str, lane: int, options: Mapping[str, Any],
                 reactor: Any):
        values = resolve(SPEC, name, options)
        require_positive(SPEC, name, values, "timeout", "connect_timeout")
        self.name, self.channel, self.lane = name, channel, lane
        self.url, self.mtom = values["url"], values["mtom"]
        self.settings = _settings(name, values)
        unwired = [option for option in WIRED_BY_THE_ENGINE if values[option] is not None]
        if unwired:
            raise ValueError(f"{label(SPEC, name)}: {', '.join(unwired)} must be turned into "
                             "hooks by the engine (engine.identity.xds) before the destination "
                             "is built")
        self.patient_id = _hook(name, values, "patient_id")
        self.prepare_request = _hook(name, values, "prepare_request")
        self._sender = HTTPSender(reactor, tls_policy=_tls_policy(name, values),
                                  timeout=values["timeout"],
                                  connect_timeout=values["connect_timeout"])
        self._client = XDSClient(self._sender, repository_url=self.url)

    def start(self) -> None:
        """Nothing to do: the first send opens the connection, kept for the next ones."""

    def stop(self) -> defer.Deferred:
        """Close the connections kept between sends; a Deferred firing once closed."""
        return self._sender.close()

    def send(self, payload: bytes, context: DeliveryContext) -> defer.Deferred:
        """Send ``payload`` as one ITI-41; Deferred[DeliveryOutcome] or DeliveryFailed."""
        return defer.ensureDeferred(self._send(payload, context))

    async def _send(self, payload: bytes, context: DeliveryContext) -> DeliveryOutcome:
        submission, documents = await deferToThread(self._submission, payload)
        if self.patient_id is not None:
            submission = await self._in_affinity_domain(submission, context)
        client = self._client
        if self.prepare_request is not None:
            outgoing = OutgoingSubmission(submission, documents, context, self.url, self.mtom)
            client = XDSClient(_PreparingSender(self._sender, self.prepare_request, outgoing),
                               repository_url=self.url)
        try:
            response = await client.provide_and_register(submission, documents,
                                                         mtom=self.mtom)
        except MetadataError as refused:  # prepare_request's (the DMP rules), for good
            raise DeliveryFailed(f"not sent to {self.url}: "
                                 f"{describe_errors(refused.errors)}", retryable=False) from None
        except SOAPFault as fault:
            raise DeliveryFailed(f"{self.url} answered a SOAP {fault.code} fault: "
                                 f"{fault.reason}", retryable=fault.code == "Receiver",
                                 response=to_bytes(fault_envelope(fault))) from None
        except XDSTransportError as error:
            text = str(error) if self.url in str(error) else f"{self.url}: {error}"
            raise DeliveryFailed(text, retryable=True) from None
        return self._judge(response, context)

    def _submission(self, payload: bytes) -> tuple[Submission, dict[str, bytes]]:
        """What to send for ``payload`` (runs in a thread: parses XML); refused for good
        when it is neither a CDA nor a submission."""
        try:
            read = read_payload(payload)
            if read.submission is not None:
                return read.submission, read.documents
            made = submission_from_cda(read.cda, self.settings)
        except (PayloadError, CDAError, MetadataError) as error:
            raise DeliveryFailed(f"cannot send to {self.url}: {error}", retryable=False) from None
        return made.submission, made.documents

    async def _in_affinity_domain(self, submission: Submission,
                                  context: DeliveryContext) -> Submission:
        """``submission`` with each patientId replaced by what the ``patient_id`` hook says."""
        found: dict[str, str] = {}
        for entry in [*submission.submission_sets, *submission.documents, *submission.folders]:
            if entry.patient_id and entry.patient_id not in found:
                found[entry.patient_id] = await defer.maybeDeferred(
                    self.patient_id, entry.patient_id, submission, context)

        def moved(entries: list) -> list:
            return [replace(e, patient_id=found.get(e.patient_id, e.patient_id)) for e in entries]

        return replace(submission, submission_sets=moved(submission.submission_sets),
                       documents=moved(submission.documents), folders=moved(submission.folders))

    def _judge(self, response: RegistryResponse, context: DeliveryContext) -> DeliveryOutcome:
        answer = to_bytes(registry_response(response.errors, response.status))
        errors = [error for error in response.errors if error.is_error]
        if context.attempt > 1 and errors and all(
                error.error_code == codes.DUPLICATE_UNIQUE_ID_IN_REGISTRY for error in errors):
            # An earlier attempt was stored but its answer lost (a timeout): the registry
            # says so with this code when the bytes are the same (else XDSNonIdenticalHash).
            detail = f"already registered by an earlier attempt: {describe_errors(errors)}"
            return DeliveryOutcome(response=answer, detail=detail, note=detail)
        if response.succeeded and not errors:
            warnings = describe_errors(response.errors)
            detail = (response.status.rsplit(":", 1)[-1]
                      + (f" (warnings: {warnings})" if warnings else ""))
            return DeliveryOutcome(response=answer, detail=detail,
                                   note=detail if warnings else None)
        transient = bool(errors) and all(error.error_code in TRANSIENT_ERRORS
                                         for error in errors)
        status = response.status.rsplit(":", 1)[-1] or "no status"
        raise DeliveryFailed(f"{self.url} answered {status}: "
                             f"{describe_errors(response.errors) or 'no error given'}",
                             retryable=transient, response=answer)


def _settings(name: str, values: Mapping[str, Any]) -> Any:
    try:
        return metadata_options(values["metadata"] or {}, source_id=values["source_id"] or "",
                                require_source_id=False)
    except MetadataOptionsError as error:
        raise ValueError(f"{label(SPEC, name)}: metadata: {error}") from None


def _hook(name: str, values: Mapping[str, Any], option: str) -> Callable | None:
    """The callable an option names (``package.module:function``), or the callable given."""
    value = values[option]
    if value is None or callable(value):
        return value
    module_name, _, attribute = str(value).partition(":")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as error:
        raise ValueError(f"{label(SPEC, name)}: {option} {value!r} cannot be loaded: "
                         f"{error} (write it as package.module:function)") from None
    if not callable(found):
        raise ValueError(f"{label(SPEC, name)}: {option} {value!r} is not callable")
    return found


def _tls_policy(name: str, values: Mapping[str, Any]) -> Any:
    """Client TLS for an https URL; TLS files with an http URL are a mistake, refused."""
    scheme = urlsplit(values["url"]).scheme
    if scheme not in ("http", "https"):
        raise ValueError(f"{label(SPEC, name)}: url must start with http:// or https://, "
                         f"got {values['url']!r}")
    files = [option for option in ("tls_ca", "tls_cert", "tls_key") if values[option]]
    if scheme == "http":
        if files:
            raise ValueError(f"{label(SPEC, name)}: {', '.join(files)} set but the url is "
                             "http://; use https:// to use them")
        return None
    try:
        return ClientTLSPolicy(values["tls_ca"], values["tls_cert"], values["tls_key"])
    except (OSError, ValueError) as error:
        raise ValueError(f"{label(SPEC, name)}: cannot load TLS files: {error}") from error
