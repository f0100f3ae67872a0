"""
The documents of an ITI-41 request checked against their DocumentEntries
(ITI TF-2 §3.41.4.1.3): every entry has its bytes, every document its entry,
and a hash or size the sender put in the metadata matches the bytes.

A document is anything with ``size`` and ``sha1`` (hexadecimal), so that an
MTOM attachment whose digest was computed while it streamed in, and an
inline base64 document, are checked the same way without reading them again.

test-case-name: tests.xds.test_validation
"""
from __future__ import annotations

from typing import Mapping, Protocol

from xds.metadata import errors as codes
from xds.metadata.errors import RegistryError
from xds.metadata.model import Submission


class DocumentContent(Protocol):
    """What the checks need to know of a document's bytes."""

    size: int

    @property
    def sha1(self) -> str:
        """Hexadecimal SHA-1 of the bytes."""


def check_documents(submission: Submission,
                    documents: Mapping[str, DocumentContent]) -> list[RegistryError]:
    """Missing documents, documents without metadata, and hash or size mismatches.

    *documents* maps ``xds:Document/@id`` to the received bytes; it matches
    ``ExtrinsicObject/@id``. A mismatch is ``XDSRepositoryMetadataError``
    because the repository is where the bytes and the metadata meet.
    """
    findings = []
    entries = {entry.entry_uuid: entry for entry in submission.documents}
    for entry_uuid, entry in entries.items():
        content = documents.get(entry_uuid)
        if content is None:
            findings.append(RegistryError(
                codes.MISSING_DOCUMENT,
                f"DocumentEntry {entry_uuid!r} (uniqueId {entry.unique_id!r}) has no Document",
                entry_uuid))
            continue
        if entry.hash and entry.hash.lower() != content.sha1:
            findings.append(RegistryError(
                codes.REPOSITORY_METADATA_ERROR,
                f"DocumentEntry {entry_uuid!r}: hash {entry.hash} does not match the document's"
                f" SHA-1 {content.sha1}", entry_uuid))
        if entry.size and entry.size != str(content.size):
            findings.append(RegistryError(
                codes.REPOSITORY_METADATA_ERROR,
                f"DocumentEntry {entry_uuid!r}: size {entry.size} does not match the document's"
                f" {content.size} octets", entry_uuid))
    for document_id in documents.keys() - entries.keys():
        findings.append(RegistryError(
            codes.MISSING_DOCUMENT_METADATA,
            f"Document {document_id!r} has no DocumentEntry with that id", document_id))
    return findings
