"""
What ``aiguillage xds`` does on the wire: ITI-18, ITI-43 and ITI-41 exchanges with a
configured registry (:class:`engine.config.registries.RegistryConfig`) through the Twisted
XDS.b client (:class:`xds.client.transactions.XDSClient` over
:class:`xds.client.http.HTTPSender`), as coroutines the commands run with ``react``.

Every way an exchange can fail becomes an :class:`XDSCommandError` with the exit code and a
sentence naming the registry and what went wrong: unreachable (connection refused, timeout,
TLS), a SOAP fault (its code and reason), a RegistryResponse in Failure (each error code and
context), a document whose hash or size differs from its metadata.

test-case-name: tests.xds.test_xds_cli
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer

from engine.cli.common import EXIT_CONFIG, EXIT_FAILED, EXIT_UNREACHABLE
from engine.config.registries import RegistryConfig
from xds.client.http import HTTPSender, XDSTransportError
from xds.client.queries import find_documents, get_documents, read_found_documents
from xds.client.transactions import XDSClient
from xds.metadata.model import DocumentEntry, Submission
from xds.metadata.vocabulary import STATUS_APPROVED, STATUS_DEPRECATED
from xds.soap.envelope import SOAPFault
from xds.soap.response import RegistryResponse
from xds.soap.retrieve import DocumentReference

STATUSES = {"approved": [STATUS_APPROVED], "deprecated": [STATUS_DEPRECATED],
            "all": [STATUS_APPROVED, STATUS_DEPRECATED]}
LOINC = "2.16.840.1.113883.6.1"  # the scheme of French typeCodes, when --type gives none


class XDSCommandError(Exception):
    """An exchange that failed: ``exit_code`` and the sentence to print."""

    def __init__(self, exit_code: int, text: str, response: RegistryResponse | None = None):
        super().__init__(text)
        self.exit_code = exit_code
        self.text = text
        self.response = response


@dataclass
class Retrieved:
    """A retrieved document: its content (``size``, ``sha1``, ``open()``, ``close()``), its
    metadata when the registry knew it, and what was checked."""

    unique_id: str
    content: Any
    entry: DocumentEntry | None
    checked: list[str] = field(default_factory=list)


def sender(reactor: Any, registry: RegistryConfig) -> HTTPSender:
    """The HTTP(S) sender for ``registry``: its CA and client certificate for HTTPS."""
    policy = None
    if registry.tls_ca or registry.tls_cert:
        from xds.tls import ClientTLSPolicy

        try:
            policy = ClientTLSPolicy(registry.tls_ca, registry.tls_cert, registry.tls_key)
        except (OSError, ValueError) as error:
            raise XDSCommandError(EXIT_CONFIG, f"registry {registry.name}: TLS files cannot be "
                                               f"used: {error}") from None
    # a command makes a call or two and exits: no connection worth keeping
    return HTTPSender(reactor, tls_policy=policy, timeout=registry.timeout,
                      max_response_bytes=registry.max_response_bytes, persistent=False)


def _url(registry: RegistryConfig, name: str, transaction: str) -> str:
    url = getattr(registry, name)
    if not url:
        raise XDSCommandError(EXIT_CONFIG, f"registry {registry.name} has no {name} "
                                           f"({transaction}) in engine.yaml")
    return url


async def _exchange(registry: RegistryConfig, what: str, call: defer.Deferred) -> Any:
    """``call``'s result, or XDSCommandError saying how it failed."""
    try:
        return await call
    except XDSTransportError as error:
        raise XDSCommandError(EXIT_UNREACHABLE, f"registry {registry.name}: {what} failed: "
                                                f"{error}") from None
    except SOAPFault as fault:
        sub = f" ({fault.subcode})" if fault.subcode else ""
        raise XDSCommandError(EXIT_FAILED, f"registry {registry.name}: {what} answered a SOAP "
                                           f"fault: {fault.code}{sub}: {fault.reason}") from None


def refused(registry: RegistryConfig, what: str, response: RegistryResponse) -> XDSCommandError:
    """The error for a RegistryResponse that is not Success, listing its errors."""
    status = response.status.rsplit(":", 1)[-1]
    lines = [f"registry {registry.name}: {what}: {status}"]
    lines += [f"  {error.error_code}: {error.code_context}"
              + (f" (at {error.location})" if error.location else "")
              for error in response.errors]
    return XDSCommandError(EXIT_FAILED, "\n".join(lines), response)


def type_code(text: str) -> str:
    """A ``--type`` as the stored query matches it: ``code^^scheme`` (LOINC by default)."""
    return text if "^^" in text else f"{text}^^{LOINC}"


async def query(reactor: Any, registry: RegistryConfig, patient: str, types: list[str],
                status: str = "approved") -> tuple[RegistryResponse, list[DocumentEntry]]:
    """ITI-18 FindDocuments: the patient's documents (LeafClass)."""
    client = XDSClient(sender(reactor, registry),
                       registry_url=_url(registry, "query_url", "ITI-18"))
    request = find_documents(patient, STATUSES[status], [type_code(t) for t in types])
    answer = await _exchange(registry, "ITI-18 FindDocuments", client.stored_query(request))
    response, documents = read_found_documents(answer)
    if not response.succeeded:
        raise refused(registry, "ITI-18 FindDocuments", response)
    return response, documents


async def retrieve(reactor: Any, registry: RegistryConfig, unique_id: str,
                   repository: str | None = None) -> Retrieved:
    """ITI-43 of one document; its metadata first (ITI-18 GetDocuments) when the registry has
    a query_url, so that its hash and size are checked."""
    http = sender(reactor, registry)
    entry = None
    if registry.query_url:
        client = XDSClient(http, registry_url=registry.query_url)
        answer = await _exchange(registry, "ITI-18 GetDocuments",
                                 client.stored_query(get_documents([unique_id])))
        response, documents = read_found_documents(answer)
        if not response.succeeded:
            raise refused(registry, "ITI-18 GetDocuments", response)
        entry = next((d for d in documents if d.unique_id == unique_id), None)
    repository = repository or (entry and entry.repository_unique_id) \
        or registry.repository_unique_id
    if not repository:
        raise XDSCommandError(EXIT_CONFIG, f"registry {registry.name}: which repository holds "
                                           f"{unique_id}? give --repository (or "
                                           "repository_unique_id in engine.yaml)")
    client = XDSClient(http, repository_url=_url(registry, "retrieve_url", "ITI-43"))
    response, contents = await _exchange(registry, "ITI-43 Retrieve", client.retrieve(
        [DocumentReference(repository, unique_id)]))
    content = contents.get(unique_id)
    if not response.succeeded or content is None:
        _close(contents.values())
        raise refused(registry, f"ITI-43 Retrieve of {unique_id}", response)
    _close(c for key, c in contents.items() if key != unique_id)
    return _checked(registry, Retrieved(unique_id, content, entry))


def _checked(registry: RegistryConfig, found: Retrieved) -> Retrieved:
    entry, content = found.entry, found.content
    if entry is None:
        return found
    problems = []
    if entry.size and entry.size.strip() != str(content.size):
        problems.append(f"size {content.size} bytes, the registry says {entry.size}")
    if entry.hash and entry.hash.strip().lower() != content.sha1:
        problems.append(f"SHA-1 {content.sha1}, the registry says {entry.hash}")
    if problems:
        _close([content])
        raise XDSCommandError(EXIT_FAILED, f"registry {registry.name}: document "
                                           f"{found.unique_id} refused: " + "; ".join(problems))
    found.checked = [f"size {content.size}"] * bool(entry.size) + \
        [f"SHA-1 {content.sha1}"] * bool(entry.hash)
    return found


def _close(contents: Any) -> None:
    for content in contents:
        close = getattr(content, "close", None)
        if close is not None:
            close()


async def submit(reactor: Any, registry: RegistryConfig, submissions: list[tuple[
        Submission, dict[str, bytes]]]) -> list[RegistryResponse]:
    """ITI-41 of each submission (one per XDM submission set, one for a CDA), in order;
    stops at the first refused one."""
    client = XDSClient(sender(reactor, registry),
                       repository_url=_url(registry, "submit_url", "ITI-41"))
    answers = []
    for number, (submission, documents) in enumerate(submissions, start=1):
        what = "ITI-41 Provide and Register" + (f" ({number}/{len(submissions)})"
                                                if len(submissions) > 1 else "")
        response = await _exchange(registry, what,
                                   client.provide_and_register(submission, documents))
        if not response.succeeded:
            raise refused(registry, what, response)
        answers.append(response)
    return answers
